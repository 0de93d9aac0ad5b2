"""Keeping libjpeg's own complaints about unreadable images off the console.

TensorFlow's JPEG decoder lets libjpeg print its message ("Improper call to JPEG
library in state 201", "Input file read error", ...) straight to file descriptor 2
before the decode fails. The pipeline already skips and counts such images and
says so in one line per epoch, so the bare library line only alarms. Python's
`sys.stderr` cannot catch it; `hide_decoder_messages` routes descriptor 2
through a pipe and passes on everything except those lines.
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
_installed = []


def hide_decoder_messages():
    """Filter libjpeg's lines out of this process's standard error, once; everything else passes unchanged.

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


def _pass_on(read_end, console):
    pending = b""
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if not DECODER_MESSAGE.match(line))
        if pending and not DECODER_MESSAGE.match(pending):
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
