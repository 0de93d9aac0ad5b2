"""timm as a `bench model --vs` peer: its training step runs in a worker process that kresnet drives in turns.

The worker (`timm_worker.py`) imports only torch and timm, so timm may live in another
environment (`--timm-python PATH`); each step is one line on its stdin and one answer back,
so kresnet's rounds time it like its own models (the pipe adds well under a millisecond).
"""

import importlib.util
import os
import subprocess
import sys

from kresnet.errors import UserError

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "timm_worker.py")


def timm_python(path=None):
    """The Python that runs timm: `path`, or this one when it can import timm."""
    if path:
        if not os.access(path, os.X_OK):
            raise UserError(f"--timm-python expects an executable Python that has timm; got {path!r}")
        return path
    if importlib.util.find_spec("timm") is None:
        raise UserError("--vs timm needs timm importable here, or --timm-python PATH to a Python that has torch and timm")
    return sys.executable


class TimmPeer:
    """A timm model's training and inference steps, one per call, in a worker process."""

    def __init__(self, python, *, model="resnet50d", batch, size, num_classes, warmup):
        command = [python, WORKER, "--serve", "--model", model, "--batch", str(batch), "--size", str(size),
                   "--num-classes", str(num_classes), "--warmup", str(warmup)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._expect("ready")

    def _expect(self, word):
        answer = self._process.stdout.readline().strip()
        if answer != word:
            self.close()
            raise UserError(f"the timm worker failed (expected {word!r}, got {answer!r}; its error is above)")

    def _step(self, command):
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        self._expect("done")

    def train(self):
        self._step("train")

    def infer(self):
        self._step("infer")

    def close(self):
        if self._process.poll() is None:
            try:
                self._process.stdin.write("quit\n")
                self._process.stdin.flush()
            except BrokenPipeError:
                pass
        self._process.wait(timeout=60)
