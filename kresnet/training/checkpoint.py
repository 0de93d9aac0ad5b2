"""Checkpoints that resume exactly (weights and optimizer state) and stop on a non-finite loss.

`model.save_weights` of a compiled Keras 3 model stores the optimizer variables
(momentum buffers, step counter, loss scale) too, so loading it back restores
the optimizer bit for bit; the learning rate follows from the step counter.
The state file names the weights file it belongs to and is replaced
atomically after that file is complete; every save writes a new file, so a
kill at any moment leaves a consistent pair behind.
"""

import json
import math
import os
import pathlib

import keras

from kresnet.errors import UserError
from kresnet.training.distribution import save_weights

STATE_FILE = "state.json"


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class RunCheckpoint(keras.callbacks.Callback):
    """Saves the training state at epoch ends and every `every_steps` steps; never after a bad loss.

    Args:
        directory: folder for the state files (created on demand).
        steps_per_epoch: optimizer steps per full epoch.
        every_steps: also save every this many steps inside an epoch (0: epoch ends only).
        export_model: optional model (the student) whose weights are also written to
            `export_path` at each epoch end, for `kresnet evaluate`.
        export_path: where those weights go.
        writer: bool. False in the processes of a multi-host job that only read the checkpoints.
    """

    def __init__(self, directory, steps_per_epoch, every_steps=0, export_model=None, export_path=None, writer=True):
        super().__init__()
        self.writer = writer
        self.directory = pathlib.Path(directory)
        self.steps_per_epoch = int(steps_per_epoch)
        self.every_steps = int(every_steps)
        self.export_model = export_model
        self.export_path = export_path
        self.step_offset = 0  # Steps of the current epoch done before this `fit` call (partial epoch on resume).
        self.diverged = None  # (epoch, step) of the first non-finite loss.
        self.saved = None  # (epoch, step) of the last saved state.
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
        return state["epoch"], state["step"]

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            if self.diverged is None:
                self.diverged = (self._epoch, self.step_offset + batch + 1)
            self.model.stop_training = True
            return
        step = self.step_offset + batch + 1
        if self.every_steps and step % self.every_steps == 0 and step < self.steps_per_epoch:
            self._save(self._epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        self.step_offset = 0
        if self.diverged is not None:
            return
        self._save(epoch + 1, 0)
        if self.export_model is not None:
            path = pathlib.Path(self.export_path)
            scratch = path.with_name("partial-" + path.name)
            save_weights(self.export_model, scratch, self.writer)
            if self.writer:
                os.replace(scratch, path)

    def _save(self, epoch, step):
        self.saved = (epoch, step)
        iterations = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        # Named by the batches trained, not the optimizer's counter: under float16 loss scaling an
        # overflowing batch applies no update, and two saves with one counter would rewrite the file
        # that state.json still names.
        name = f"state-{epoch * self.steps_per_epoch + step:09d}.weights.h5"
        if self.writer:
            self.directory.mkdir(parents=True, exist_ok=True)
        save_weights(self.model, self.directory / name, self.writer)
        if not self.writer:
            return
        state = {"epoch": epoch, "step": step, "iterations": iterations, "weights": name}
        scratch = self.directory / (STATE_FILE + ".partial")
        scratch.write_text(json.dumps(state))
        os.replace(scratch, self.directory / STATE_FILE)
        for old in self.directory.glob("state-*.weights.h5"):
            if old.name != name:
                old.unlink()
