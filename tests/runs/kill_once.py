"""`kresnet ARGS...` that kills itself with SIGKILL once, as the run is about to write a chosen file.

    python tests/runs/kill_once.py MARKER FILE_NAME kresnet-arguments...

When the run starts writing `FILE_NAME` (e.g. `state-000000006.weights.h5`, the checkpoint after
step 6) and `MARKER` does not exist yet, it creates `MARKER` and sends itself SIGKILL: a real kill
(no cleanup, no exception handler runs) at an exact place of the run, so a test knows where the
run stopped. The same command again runs `kresnet` as a user reruns it: it resumes.
"""

import os
import pathlib
import signal
import sys

import kresnet.atomic_files
from kresnet.atomic_files import temporary_name


def main():
    marker, name, *arguments = sys.argv[1:]
    marker = pathlib.Path(marker)
    write_atomically = kresnet.atomic_files.write_atomically

    def killing(path, write, fault=None):
        if pathlib.Path(path).name == name and not marker.exists():
            marker.write_text(str(temporary_name(path)))
            os.kill(os.getpid(), signal.SIGKILL)
        return write_atomically(path, write, fault)

    kresnet.atomic_files.write_atomically = killing
    from kresnet.cli import main as kresnet_main

    kresnet_main(arguments)


if __name__ == "__main__":
    main()
