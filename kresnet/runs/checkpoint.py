"""Checkpoints that resume exactly (weights and optimizer state) and are never poisoned.

`model.save_weights` of a compiled Keras 3 model stores the optimizer variables
(momentum buffers, step counter, loss scale) too, so loading it back restores
the optimizer bit for bit; the learning rate follows from the step counter.
Each save writes a new weights file (through a temporary name), then replaces
`state.json`, which names it: a kill at any moment leaves a consistent pair.
Before any save, the loss (the epoch's mean so far), every weight (BatchNorm moving statistics
included) and the optimizer state are checked finite: a diverged state is never written. The
checks run at checkpoints only, not after every batch: a per-batch check would copy the loss
to the host each step and serialise the training loop on an accelerator.
"""

import json
import math
import pathlib

import keras
import numpy as np

from kresnet.errors import UserError
from kresnet.atomic_files import save_weights_atomically, write_text_atomically

STATE_FILE = "state.json"


class TrainingDiverged(UserError):
    """The loss or the weights became NaN or infinite; the last good checkpoint is kept."""


class RunCheckpoint(keras.callbacks.Callback):
    """Saves the training state at epoch ends (`StepCheckpoint`: also every `every_steps` steps); never a non-finite state.

    Args:
        directory: folder for the state files (created on demand).
        steps_per_epoch: optimizer steps per full epoch.
        every_steps: also save every this many steps inside an epoch (0: epoch ends only).
        export_model: optional model (the student, the bare classifier) whose weights are also
            written to `export_path` at each epoch end, for `kresnet evaluate`.
        export_path: where those weights go.
        writer: bool. False in the processes of a multi-process job that do not write files.
        fault: optional `(phase, path)` hook of the atomic writer (tests simulate kills with it).
    """

    def __init__(self, directory, steps_per_epoch, every_steps=0, export_model=None, export_path=None, writer=True,
                 fault=None):
        super().__init__()
        self.writer = writer
        self.directory = pathlib.Path(directory)
        self.steps_per_epoch = int(steps_per_epoch)
        self.every_steps = int(every_steps)
        self.export_model = export_model
        self.export_path = export_path
        self.fault = fault
        self.step_offset = 0  # Steps of the current epoch done before this `fit` call (partial epoch on resume).
        self.diverged = None  # (epoch, step, what) of the first non-finite loss or weight.
        self.saved = None  # (epoch, step) of the last saved state.
        self.backends = [keras.backend.backend()]  # every backend this run trained on, in order
        self._epoch = 0

    def read_state(self):
        """The saved state dict, or None when there is no checkpoint yet."""
        path = self.directory / STATE_FILE
        if not path.is_file():
            return None
        return json.loads(path.read_text())

    def restore(self, model):
        """Load the last state into the compiled `model`; returns (epoch, step in epoch) to resume at.

        Args:
            model: the compiled training model, built (it has variables).
        """
        state = self.read_state()
        if state is None:
            return 0, 0
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.directory / state["weights"])
        iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        if iterations != state["iterations"]:
            raise UserError(f"{self.directory}: checkpoint holds optimizer step {iterations}, state says {state['iterations']}")
        self.saved = (state["epoch"], state["step"])
        backends = list(state.get("backends", []))
        self.backends = backends + [b for b in self.backends if b not in backends]
        return state["epoch"], state["step"]

    def raise_if_diverged(self):
        """After `fit`: a `TrainingDiverged` naming where and what, and the checkpoint kept, if it diverged."""
        if self.diverged is None:
            return
        epoch, step, what = self.diverged
        kept = ("no checkpoint yet" if self.saved is None
                else f"last good checkpoint (epoch {self.saved[0]}, step {self.saved[1]}) kept in {self.directory}")
        raise TrainingDiverged(
            f"{what} became NaN/inf by epoch {epoch + 1}, step {step}; training stopped, {kept}; "
            "lower optimizer.lr_per_256, add warmup or use float32 / mixed_bfloat16"
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.step_offset = 0
        if self.diverged is not None:
            return
        if not self._loss_is_finite(epoch, self.steps_per_epoch, logs):
            return
        if not self._save(epoch + 1, 0):
            return
        if self.export_model is not None:
            save_weights_atomically(self.export_model, self.export_path, self.fault, writer=self.writer)

    def _loss_is_finite(self, epoch, step, logs):
        """False (and stop) when the mean loss so far is NaN/inf: one NaN batch makes the mean NaN."""
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._stop(epoch, step, "loss")
            return False
        return True

    def _stop(self, epoch, step, what):
        if self.diverged is None:
            self.diverged = (epoch, step, what)
        self.model.stop_training = True

    def _save(self, epoch, step):
        """Write the state after `step` steps of epoch `epoch`; False (and stop) when it is not finite."""
        bad = first_non_finite(list(self.model.weights) + list(self.model.optimizer.variables))
        if bad is not None:
            # Keras counts the finished epoch's steps: report the step the state belongs to.
            self._stop(epoch - 1 if step == 0 else epoch, step or self.steps_per_epoch, f"weight {bad}")
            return False
        self.saved = (epoch, step)
        iterations = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        # Named by the batches trained, not the optimizer's counter: under float16 loss scaling an
        # overflowing batch applies no update, and two saves with one counter would rewrite the file
        # that state.json still names.
        name = f"state-{epoch * self.steps_per_epoch + step:09d}.weights.h5"
        if self.writer:
            self.directory.mkdir(parents=True, exist_ok=True)
        # Every process serialises (a collective on a multi-host JAX job); only the writer writes.
        save_weights_atomically(self.model, self.directory / name, self.fault, writer=self.writer)
        if not self.writer:
            return True
        state = {"epoch": epoch, "step": step, "iterations": iterations, "weights": name, "backends": self.backends}
        write_text_atomically(self.directory / STATE_FILE, json.dumps(state), self.fault)
        for old in self.directory.glob("state-*.weights.h5"):
            if old.name != name:
                old.unlink()
        return True


def first_non_finite(variables):
    """The path of the first floating-point variable holding a NaN or infinity, or None."""
    for variable in variables:
        if "float" not in str(variable.dtype):
            continue
        if not np.isfinite(keras.ops.convert_to_numpy(variable)).all():
            return getattr(variable, "path", variable.name)
    return None


class StepCheckpoint(RunCheckpoint):
    """A `RunCheckpoint` that also saves every `every_steps` steps inside an epoch.

    Kept apart from `RunCheckpoint` because a callback with a batch hook makes Keras run every
    batch's callbacks synchronously (a device-to-host copy of the logs each batch): runs without
    step checkpoints do without it. Under `steps_per_execution` N, Keras calls the hook once per
    N steps with the last step's index, so `every_steps` must be a multiple of N (`fit_run` checks).
    """

    def on_train_batch_end(self, batch, logs=None):
        step = self.step_offset + batch + 1
        if self.every_steps and step % self.every_steps == 0 and step < self.steps_per_epoch:
            if self._loss_is_finite(self._epoch, step, logs):
                self._save(self._epoch, step)
