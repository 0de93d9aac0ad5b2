"""Checkpoints that resume exactly (weights and optimizer state) and are never poisoned.

`model.save_weights` of a compiled Keras 3 model stores the optimizer variables
(momentum buffers, step counter, loss scale) too, so loading it back restores
the optimizer bit for bit; the learning rate follows from the step counter.
Each save writes a new weights file (through a temporary name), then replaces
`state.json`, which names it: a kill at any moment leaves a consistent pair. The
previous state's file is kept too (named under "previous"), so a newest file
damaged after the fact (a full disk, a copy cut short) still leaves one to resume from.
Before any save, the loss (the epoch's mean so far), every weight (BatchNorm moving statistics
included) and the optimizer state are checked finite: a diverged state is never written. The
checks run at checkpoints only, not after every batch: a per-batch check would copy the loss
to the host each step and serialise the training loop on an accelerator.

`state.json` also records the model state that `save_weights` leaves out: the states of the
random-number generators (dropout's, `keras.random.SeedGenerator`), restored with the weights,
and, for a save inside an epoch, the running sums of the epoch's loss and metrics
(`model.metrics_variables`), put back as the resumed partial epoch begins, so that its
history row averages the whole epoch. A resumed run then draws the dropout masks and writes
the history row of a run never killed.
"""

import json
import math
import pathlib

import keras
import numpy as np

from kresnet.errors import UserError
from kresnet.atomic_files import save_weights_atomically, write_text_atomically
from kresnet.models.finite_weights import first_non_finite

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
        self._resumed_metrics = None  # running sums of the partly done epoch a resume starts in
        self._current = None  # the state saved last (restored or written), without its "previous"

    def read_state(self):
        """The saved state dict, or None when there is no checkpoint yet; one line when `state.json` is damaged."""
        path = self.directory / STATE_FILE
        if not path.is_file():
            return None
        what_to_do = f"it names the checkpoint to resume: delete {self.directory} to start the run again"
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UserError(f"{path}: damaged, not JSON ({error}); {what_to_do}") from None
        missing = [key for key in ("epoch", "step", "iterations", "weights") if key not in state] \
            if isinstance(state, dict) else ["all keys"]
        if missing:
            raise UserError(f"{path}: damaged, no {', '.join(missing)}; {what_to_do}")
        return state

    def restore(self, model, log=print):
        """Load the last state into the compiled `model`; returns (epoch, step in epoch) to resume at.

        A damaged newest checkpoint file is a one-line error that offers the previous one when it is
        intact; once the damaged file is deleted, the run resumes from the previous one (resume is
        exact, so only time is lost).

        Args:
            model: the compiled training model, built (it has variables).
            log: callable for the line saying that the previous checkpoint is used.
        """
        state = self.read_state()
        if state is None:
            return 0, 0
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        previous = state.get("previous")
        path = self.directory / state["weights"]
        if not path.is_file() and previous is not None and (self.directory / previous["weights"]).is_file():
            log(f"{path} is missing: resuming from the previous checkpoint ({describe_position(previous['epoch'], previous['step'])})")
            state, path, previous = {**previous, "backends": state.get("backends", [])}, self.directory / previous["weights"], None
        self._load(model, path, previous)
        restore_variable_state(random_state_variables(model), state.get("random_state", []))
        iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        if iterations != state["iterations"]:
            raise UserError(f"{path}: holds optimizer step {iterations}, {self.directory / STATE_FILE} says "
                            f"{state['iterations']}; delete {self.directory} to start the run again")
        self.saved = (state["epoch"], state["step"])
        self._resumed_metrics = state.get("metrics") if state["step"] else None
        self._current = state
        backends = list(state.get("backends", []))
        self.backends = backends + [b for b in self.backends if b not in backends]
        return state["epoch"], state["step"]

    def _load(self, model, path, previous):
        """`model.load_weights(path)`, or one line naming the file, offering the previous checkpoint if intact."""
        if not path.is_file():
            reason = f"missing (named by {self.directory / STATE_FILE})"
        else:
            try:
                model.load_weights(path)
                return
            except OSError as error:  # truncated, empty or not HDF5
                reason = f"damaged ({str(error).splitlines()[0]})"
            except ValueError as error:
                reason = f"does not fit this run's model ({str(error).strip().splitlines()[0]})"
        if previous is not None and readable_h5(self.directory / previous["weights"]):
            where = describe_position(previous["epoch"], previous["step"])
            raise UserError(f"{path}: {reason}; the previous checkpoint ({where}) is intact: delete {path} "
                            "and rerun to resume from it")
        raise UserError(f"{path}: {reason}; no intact checkpoint is left: delete {self.directory} to start the run again")

    def raise_if_diverged(self):
        """After `fit`: a `TrainingDiverged` naming where and what, and the checkpoint kept, if it diverged."""
        if self.diverged is None:
            return
        epoch, step, what = self.diverged
        kept = ("no checkpoint yet" if self.saved is None
                else f"last good checkpoint ({describe_position(*self.saved)}) kept in {self.directory}")
        raise TrainingDiverged(
            f"{what} became NaN/inf by epoch {epoch + 1}, step {step}; training stopped, {kept}; "
            "lower optimizer.lr_per_256, add warmup or use float32 / mixed_bfloat16"
        )

    @property
    def resumes_metrics(self):
        """Whether the next epoch begins a resumed partial epoch whose running sums are to be restored."""
        return self._resumed_metrics is not None and self.step_offset > 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.resumes_metrics:
            # Keras has just reset the metrics; on JAX the first batch reads them from the variables.
            restore_variable_state(self.model.metrics_variables, self._resumed_metrics)
        self._resumed_metrics = None

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
        state = {"epoch": epoch, "step": step, "iterations": iterations, "weights": name,
                 "random_state": variable_state(random_state_variables(self.model))}
        if step:
            state["metrics"] = variable_state(self.model.metrics_variables)
        # The previous state stays, one level deep: a damaged newest file still leaves one to resume from.
        previous = {key: value for key, value in (self._current or {}).items() if key not in ("previous", "backends")}
        write_text_atomically(self.directory / STATE_FILE,
                              json.dumps({**state, "backends": self.backends, "previous": previous or None}), self.fault)
        self._current = state
        for old in self.directory.glob("state-*.weights.h5"):
            if old.name not in (name, previous.get("weights")):
                old.unlink()
        return True


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


def readable_h5(path):
    """Whether `path` opens as an HDF5 file (a checkpoint that a kill or a damaged disk did not cut short)."""
    import h5py

    try:
        with h5py.File(path, "r"):
            return True
    except OSError:
        return False


def describe_position(epoch, step):
    """A checkpoint's place as the console counts it: `state.json`'s (finished epochs, steps into the next)."""
    return f"end of epoch {epoch}" if step == 0 else f"epoch {epoch + 1}, step {step}"


def random_state_variables(model):
    """The states of the model's random-number generators (`keras.random.SeedGenerator`: dropout's),
    which `save_weights` leaves out; Keras names each `seed_generator_state`."""
    return [variable for variable in model.non_trainable_variables if variable.name == "seed_generator_state"]


def variable_state(variables):
    """[[path, value], ...] of `variables`, exact in JSON: float32 and integer values round-trip
    through Python floats and ints."""
    return [[variable.path, np.asarray(keras.ops.convert_to_numpy(variable)).tolist()] for variable in variables]


def restore_variable_state(variables, state):
    """Assign the values of `variable_state` to `variables` (in order, where the paths agree)."""
    for variable, (path, value) in zip(variables, state or []):
        if variable.path == path:
            variable.assign(np.asarray(value, dtype=variable.dtype).reshape(variable.shape))


def build_metric_variables(model, stream):
    """Create the compiled metrics' and per-output loss trackers' variables before `fit`, so that a
    resumed partial epoch can put its running sums back into them: TensorFlow otherwise creates them
    only when it traces the first step (JAX and PyTorch create them as `fit` starts, through the same
    Keras routine, which builds only what is not built yet)."""
    model._symbolic_build(data_batch=stream.element_spec)
