"""The one fit routine of every task: `model.fit` with the run folder's callbacks, resumed exactly.

The task brings a compiled model, its training stream and (optionally) validation and a
`MixupSchedule`; this restores the last checkpoint, trims `history.csv` to it, says where it
resumes, and runs the remaining epochs in one `fit` call (two after a mid-epoch resume: the
rest of that epoch, then the others), so epochs count continuously, mixup-off included.

Resume is exact: the training stream is a function of the optimizer step it starts at (the task's
`train(first_step)`, built on `kresnet.data.order`), and the running means of a partly done epoch
(loss and metrics) are restored with the checkpoint, so a killed and resumed run writes the same
weights and the same history.csv as one never killed.
"""

import dataclasses
import time

import keras

from kresnet.console import progress_line_open, say
from kresnet.runs.folder import CHECKPOINTS, FINAL_WEIGHTS, HISTORY, LOGS
from kresnet.runs.checkpoint import RunCheckpoint, StepCheckpoint, build_metric_variables
from kresnet.runs.distribution import same_on_every_process
from kresnet.runs.history import HistoryCSV, trim_history
from kresnet.runs.tensorboard_log import ScalarEventLog


@dataclasses.dataclass
class Segment:
    """One `fit` call: epochs [start, end), `steps` per epoch, `offset` steps of epoch `start` already done."""

    start: int
    end: int
    steps: int
    offset: int = 0


def plan_segments(epochs, steps_per_epoch, start_epoch=0, start_step=0):
    """The remaining training as `fit` calls: the rest of a partly done epoch after a mid-epoch
    resume (Keras counts whole epochs), then every other epoch in one call.

    Args:
        epochs: total epochs.
        steps_per_epoch: steps per epoch.
        start_epoch: first unfinished epoch.
        start_step: steps of `start_epoch` already done.
    """
    segments = []
    epoch = start_epoch
    if start_step and epoch < epochs:
        segments.append(Segment(epoch, epoch + 1, steps_per_epoch - start_step, start_step))
        epoch += 1
    if epoch < epochs:
        segments.append(Segment(epoch, epochs, steps_per_epoch))
    return segments


def epoch_steps(images, global_batch, steps_per_epoch=0):
    """Optimizer steps per epoch: the recipe's `train.steps_per_epoch`, else full batches of the training set.

    A global batch larger than the training set is a one-line error here, before any model
    is built (it would otherwise run out of memory without a message).

    Args:
        images: training images, or None when the dataset does not state its size.
        global_batch: the recipe's `train.batch_size`.
        steps_per_epoch: the recipe's `train.steps_per_epoch` (0: one pass over the data).
    """
    from kresnet.errors import UserError

    if images is not None and global_batch > images:
        raise UserError(f"train.batch_size: the global batch ({global_batch}) is larger than the {images} training "
                        "images; lower it or use more data")
    if steps_per_epoch:
        return steps_per_epoch
    if images is None:
        raise UserError("train.steps_per_epoch: the training set does not state its size; set it")
    return max(1, images // global_batch)


@dataclasses.dataclass
class FitResult:
    """What `fit_run` did: seconds spent training in this process, the backends the run used, optimizer steps."""

    train_seconds: float
    backends: list
    optimizer_steps: int


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the learning rate after each epoch to the logs, so history.csv and TensorBoard show the schedule."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def set_steps_per_execution(model, steps, steps_per_epoch, every_steps=0, log=say):
    """Let the compiled `model` run `steps` optimizer steps per compiled call (`train.steps_per_execution`).

    Keras' `compile` stores the number as the model's `steps_per_execution`, which each backend
    reads when `fit` builds its train function; setting it here, after the task compiled, keeps
    the recipe key in the engine. Keras runs whole executions: an epoch of 5 steps at 2 per
    execution would train 6, and a step checkpoint is only reached at an execution's end, so
    both must be multiples. The PyTorch backend of Keras runs one step per call: 1 there.

    Args:
        model: the compiled training model, before its first `fit`.
        steps: the recipe's `train.steps_per_execution`.
        steps_per_epoch: optimizer steps per epoch.
        every_steps: the step-checkpoint interval (0: none).
        log: callable for one-line messages.
    """
    from kresnet.errors import UserError

    if steps > 1 and keras.backend.backend() == "torch":
        log(f"train.steps_per_execution={steps}: Keras' PyTorch backend runs one step per call; using 1")
        steps = 1
    if steps_per_epoch % steps:
        raise UserError(f"train.steps_per_execution: expected a divisor of the {steps_per_epoch} steps per epoch, "
                        f"got {steps}")
    if every_steps % steps:
        raise UserError(f"train.checkpoint_every_steps: expected a multiple of train.steps_per_execution ({steps}), "
                        f"got {every_steps}")
    model.steps_per_execution = steps


class ProgressBar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, telling `kresnet.console` while its line is open, so that messages from
    the other callbacks (skipped images, save errors) start a line of their own."""

    # As Keras' own progress bar: its batch updates may run off the training thread, so its
    # presence does not make Keras copy every batch's logs to the host on the training thread.
    async_safe = True

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        progress_line_open(False)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        progress_line_open(self.verbose == 1)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        progress_line_open(False)


def fit_run(run, model, train, *, epochs, steps_per_epoch, every_steps=0, steps_per_execution=1, mixup=None,
            validation=None, validation_steps=None, export_model=None, verbose="auto", extra_callbacks=(), log=say):
    """Train the compiled `model` into the claimed `run` folder (resuming its checkpoint); returns a `FitResult`.

    Args:
        run: a claimed `RunFolder`.
        model: the compiled training model, built.
        train: callable(first_step) -> the endless training stream from that optimizer step of the run on
            (a run resumed at step S gets the batches an unkilled run trains on from step S).
        epochs: total epochs of the run.
        steps_per_epoch: optimizer steps per epoch.
        every_steps: also checkpoint every this many steps inside an epoch (0: epoch ends only).
        steps_per_execution: optimizer steps per compiled call (see `set_steps_per_execution`).
        mixup: a `kresnet.tricks.MixupSchedule` for this run's epochs and steps, or None: mixes the
            batches of its first epochs, switching off at the exact batch.
        validation: optional validation stream, with `validation_steps`.
        validation_steps: steps of `validation` (None: until it ends).
        export_model: a model whose weights are written to `model.weights.h5` at each epoch end
            (the bare classifier of a training wrapper), or None.
        verbose: Keras `fit` verbosity.
        extra_callbacks: more Keras callbacks, after the run folder's own (tests interrupt runs with them).
        log: callable for one-line messages.
    """
    set_steps_per_execution(model, steps_per_execution, steps_per_epoch, every_steps, log)
    checkpoint = (StepCheckpoint if every_steps else RunCheckpoint)(run / CHECKPOINTS, steps_per_epoch, every_steps, export_model, run / FINAL_WEIGHTS,
                               writer=run.writer, fault=run.fault)
    start_epoch, start_step = checkpoint.restore(model, log)
    same_on_every_process((start_epoch, start_step), f"the resume point in {run / CHECKPOINTS} (is --out shared?)")
    if run.writer:
        trim_history(run / HISTORY, start_epoch)
    if start_epoch >= epochs:
        log(f"resuming {run.path} after its last epoch ({epochs}): training is done, writing its final files")
    elif start_epoch or start_step:
        log(f"resuming {run.path} at epoch {start_epoch + 1}, step {start_step} of {steps_per_epoch}")
    # The checkpoint comes after the loggers: a state that counts an epoch as done is only ever
    # written after that epoch's history row, so a kill between the two loses no row.
    loggers = [LearningRateLogger()]
    if run.writer:
        loggers += [HistoryCSV(run / HISTORY), ScalarEventLog(run / LOGS)]
    # The bar comes last, as Keras puts its own: its epoch line shows what the others added to the logs.
    callbacks = [*loggers, checkpoint, *extra_callbacks, ProgressBar()]
    started = time.time()
    for segment in plan_segments(epochs, steps_per_epoch, start_epoch, start_step):
        checkpoint.step_offset = segment.offset
        # Each `fit` call starts the stream anew, at the run's step there.
        first_step = segment.start * steps_per_epoch + segment.offset
        stream = train(first_step)
        if mixup is not None:
            stream = mixup.apply(stream, initial_step=first_step).prefetch(-1)
        if checkpoint.resumes_metrics:
            build_metric_variables(model, stream)
        model.fit(
            stream,
            initial_epoch=segment.start,
            epochs=segment.end,
            steps_per_epoch=segment.steps,
            validation_data=validation,
            validation_steps=validation_steps,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the tf.data streams shuffle themselves
        )
        checkpoint.raise_if_diverged()
    return FitResult(round(time.time() - started, 1), list(checkpoint.backends),
                     int(keras.ops.convert_to_numpy(model.optimizer.iterations)))
