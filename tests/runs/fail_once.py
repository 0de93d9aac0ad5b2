"""`kresnet ARGS...` that fails once, as the run is about to write a chosen file: killed, or its disk full.

    python tests/runs/fail_once.py MARKER FILE_NAME kill|full-disk kresnet-arguments...

When the run starts writing `FILE_NAME` (e.g. `state-000000006.weights.h5`, the checkpoint after
step 6) and `MARKER` does not exist yet, it creates `MARKER`, then either sends itself SIGKILL (a
real kill: no cleanup, no exception handler runs) or fails the write as a full disk does (ENOSPC),
at an exact place of the run, so a test knows where the run stopped. The same command again runs
`kresnet` as a user reruns it: it resumes.
"""

import errno
import os
import pathlib
import signal
import sys

import kresnet.atomic_files


def main():
    marker, name, action, *arguments = sys.argv[1:]
    marker = pathlib.Path(marker)
    write_atomically = kresnet.atomic_files.write_atomically

    def failing(path, write, fault=None):
        if pathlib.Path(path).name == name and not marker.exists():
            marker.write_text(action)
            if action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)

            def full_disk(phase, scratch):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(scratch))

            return write_atomically(path, write, full_disk)
        return write_atomically(path, write, fault)

    kresnet.atomic_files.write_atomically = failing
    from kresnet.cli import main as kresnet_main

    kresnet_main(arguments)


if __name__ == "__main__":
    main()
