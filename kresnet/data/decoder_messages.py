"""Keeping libjpeg's own complaints about unreadable images, and native libraries' log lines, off the console.

TensorFlow's JPEG decoder lets libjpeg print its message ("Improper call to JPEG
library in state 201", "Input file read error", ...) straight to file descriptor 2
before the decode fails. The pipeline already skips and counts such images and
says so in one line per epoch, so the bare library line only alarms. Python's
`sys.stderr` cannot catch it; `hide_decoder_messages` routes descriptor 2
through a pipe and passes on everything except those lines.

The same filter hides the C++ log lines of TensorFlow, XLA and absl at INFO and
WARNING level ("I0000 00:00:1796109472.562246   23003 port.cc:153] oneDNN custom
operations are on..."): TensorFlow writes some before it reads
`TF_CPP_MIN_LOG_LEVEL`, so the variable alone does not silence them. Errors
(`E...`, `F...`) always pass; `show_native_logs` (the CLI's `--verbose`) lets
everything through.
"""

import atexit
import os
import re
import sys
import threading

# libjpeg's error and warning texts (jerror.h) that a corrupt or truncated file triggers.
DECODER_MESSAGE = re.compile(
    rb"^(Improper call to JPEG library in state \d+|Input file read error|Premature end of JPEG file|"
    rb"Corrupt JPEG data: .*|Invalid JPEG file structure: .*|Not a JPEG file: .*|Bogus .*|"
    rb"JPEG datastream contains no image|Unsupported marker type .*|Empty input file|"
    rb"(Quantization|Huffman) table 0x[0-9a-f]+ was not defined)\r?$"
)
# absl's log line prefix (severity, MMDD, time or 00:00:<epoch seconds>, thread, file:line]) at INFO or WARNING,
# and the header line absl writes before it is initialised.
NATIVE_LOG_LINE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR|"
    rb"[IW]\d{4} [\d:.]+ +\d+ [^\s\]]+:\d+\] .*)\r?$"
)
_NATIVE_LOG_START = re.compile(rb"^(WARNING: All log|[IW]\d{4} \d\d:)")
_installed = []
_native_logs_shown = []


def show_native_logs():
    """Let TensorFlow's, XLA's and absl's INFO and WARNING lines through the filter from now on."""
    _native_logs_shown.append(True)


def _hidden(line):
    return bool(DECODER_MESSAGE.match(line) or (not _native_logs_shown and NATIVE_LOG_LINE.match(line)))


def hide_decoder_messages():
    """Filter libjpeg's lines and native INFO/WARNING log lines out of this process's standard error, once.

    Everything else passes unchanged.

    The filter lives until the process exits (then the pipe is drained, so a
    final traceback still appears). Call it from a command's entry point.
    """
    if _installed:
        return
    sys.stderr.flush()
    console = os.dup(2)
    read_end, write_end = os.pipe()
    pipe = os.fstat(write_end).st_ino
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_pass_on, args=(read_end, console), daemon=True, name="stderr-filter")
    pump.start()
    _installed.append((console, pump, pipe))
    atexit.register(_drain)


def restore_stderr():
    """Stop filtering: standard error goes straight to the console again, once the filter has passed on
    what it holds. For processes that native code may end at any moment (JAX's distributed runtime
    aborts a process of a broken multi-host job): its last message would die in the pipe with it."""
    if _installed:
        _drain()


def _pass_on(read_end, console):
    pending = b""
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if not _hidden(line))
        if pending and not _hidden(pending) and (_native_logs_shown or not _NATIVE_LOG_START.match(pending)):
            kept, pending = kept + pending, b""  # a prompt or progress text without newline: show it now
        if kept:
            os.write(console, kept)
    if pending:
        os.write(console, pending)
    os.close(read_end)


def _drain():
    console, pump, pipe = _installed[0]
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    if os.fstat(2).st_ino == pipe:  # not already replaced by someone else (a test harness's capture)
        os.dup2(console, 2)  # closes the pipe's last write end: the pump reads to the end and stops
    pump.join(timeout=5)
