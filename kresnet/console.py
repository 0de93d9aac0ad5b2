"""Messages for the user, each on a line of its own, also while a Keras progress bar is drawn.

Keras draws a training progress bar by rewriting one console line that it ends only when the
epoch ends; a plain `print` from a callback (an epoch's count of skipped images, a failed save)
lands on the end of that bar. The run engine's progress bar (`kresnet.runs.fit.ProgressBar`)
records here whether its line is open, and `say` ends that line before printing. The next
update of the bar draws it afresh below the message.
"""

import sys

_progress_line_open = False


def say(message, err=False):
    """Print `message` as a line of its own, after ending a progress bar's open line.

    Args:
        message: str. One line (or a few, for a list of problems).
        err: bool. Print to stderr instead of stdout.
    """
    end_progress_line()
    print(message, file=sys.stderr if err else sys.stdout, flush=True)


def end_progress_line():
    """End a progress bar's open line, if one is open (before an error message, say)."""
    global _progress_line_open
    if _progress_line_open:
        sys.stdout.write("\n")
        sys.stdout.flush()
        _progress_line_open = False


def progress_line_open(is_open):
    """Record whether a progress bar has drawn a line on stdout that it has not ended yet.

    Args:
        is_open: bool.
    """
    global _progress_line_open
    _progress_line_open = bool(is_open)
