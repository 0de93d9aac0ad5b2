"""A multi-host job that lost a process: the others stop at once, with one line saying how to resume.

When a process of a JAX job dies, the collective the others are in fails ("Gloo all-reduce failed:
... Connection reset by peer"). Raising that error would end in JAX's own exit, which waits at a
shutdown barrier for the lost process until its heartbeat times out and then aborts from C++: a
minute, a traceback and a stack dump. The run folder (`RunFolder.__exit__`) hands every error that
ends a run to `exit_if_a_process_was_lost`.
"""

import os
import pathlib
import re
import shlex
import sys

from kresnet.console import say
from kresnet.runs.distribution import job_position

# EX_TEMPFAIL: the job failed, not the run; starting all processes again resumes it.
LOST_PROCESS_EXIT_STATUS = 75
# How a collective reports a process that is gone (gloo on CPUs, NCCL on GPUs), or JAX's coordination service does.
_LOST_PROCESS = re.compile(
    r"(Gloo|NCCL)\b.*(failed|error)|Connection reset|Connection closed|Socket closed|heartbeat|coordination service", re.IGNORECASE
)


def exit_if_a_process_was_lost(error, run_path):
    """End this process at once, with one line, when `error` is a collective that failed because another
    process of the multi-host job is gone; return otherwise (outside a job, or for any other error).

    Process 0 also hosts JAX's coordination service: when it is the one lost, JAX's client may stop the
    others first (within about a second), with its own message ("Terminating process because the JAX
    distributed service detected fatal errors").

    Args:
        error: the exception that ended the run.
        run_path: the run folder, whose checkpoints a restarted job resumes from.
    """
    index, count = job_position()
    if count == 1 or not _lost_process(error):
        return
    others = [str(i) for i in range(count) if i != index]
    lost = f"process {others[0]}" if len(others) == 1 else f"one of processes {', '.join(others)}"
    cause = re.sub(r"\s*\[external/[^\]]*\]", "", str(error).strip().splitlines()[0])
    say(f"error: lost {lost} of the {count}-process job ({cause}); this is process {index}. Start all {count} "
        f"processes again to resume from {pathlib.Path(run_path) / 'checkpoints'}: {_command_line()}", err=True)
    sys.stdout.flush()
    os._exit(LOST_PROCESS_EXIT_STATUS)


def _lost_process(error):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if _LOST_PROCESS.search(str(error)):
            return True
        error = error.__cause__ or error.__context__
    return False


def _command_line():
    """This process's command as typed: `kresnet ...` for the CLI (also when started as `python -m kresnet.cli`)."""
    program, arguments = pathlib.Path(sys.argv[0]), sys.argv[1:]
    if program.name == "kresnet" or program.parts[-2:] == ("kresnet", "cli.py"):
        return shlex.join(["kresnet", *arguments])
    return shlex.join([pathlib.Path(sys.executable).name, *sys.argv])
