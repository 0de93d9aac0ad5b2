"""One process per run folder: an exclusive `flock` on `<run>/.lock`, which holds the owner's PID.

The kernel drops a `flock` when its process dies, however it dies, so a lock file left by a
killed run is simply taken over; a live owner's PID is named in the error.
"""

import fcntl
import os
import pathlib

from kresnet.errors import UserError


class RunLock:
    """An exclusive lock on a run folder, held until `release` (or the process ends).

    Args:
        path: the lock file (created if missing).
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self._fd = None

    def acquire(self):
        """Take the lock, or raise a `UserError` naming the PID of the process that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        self._lock_or_refuse(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def check_free(self):
        """Refuse (one line naming the holder) when another process holds the lock; take nothing.

        Commands call it before building any data or model, so a second process on a busy run
        folder stops at once; `acquire` still decides, when the run claims the folder.
        """
        if not self.path.is_file():
            return
        fd = os.open(self.path, os.O_RDONLY)
        self._lock_or_refuse(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def _lock_or_refuse(self, fd):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise UserError(
                f"{self.path.parent}: run folder in use by process {holder} (lock {self.path}); "
                "wait for it to end or choose another --out"
            ) from None

    def release(self):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self):
        return self._fd is not None
