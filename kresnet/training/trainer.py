"""The training driver: wires recipe, data, model, callbacks and the resume plan; nothing else.

Run folder: recipe.toml (resolved), history.csv, logs/ (TensorBoard),
checkpoints/ (full state, resumable), model.weights.h5 (the classifier after the
last finished epoch) and metrics.json at the end.
"""

import dataclasses
import json
import pathlib
import time

import keras

from kresnet.recipe import claim_run_folder
from kresnet.training.build import build_training_model
from kresnet.training.checkpoint import RunCheckpoint, TrainingDiverged
from kresnet.training.distribution import is_primary_process, same_on_every_process, save_weights, setup_distribution
from kresnet.training.history import HistoryCSV, trim_history
from kresnet.training.tensorboard_log import ScalarEventLog


@dataclasses.dataclass
class Segment:
    """One `fit` call: epochs [start, end), `steps` per epoch, mixup or not, `offset` steps already done."""

    start: int
    end: int
    steps: int
    mixup: bool
    offset: int = 0


def plan_segments(epochs, steps_per_epoch, mixup_epochs, start_epoch=0, start_step=0):
    """Split the remaining training into `fit` calls: a partial epoch after a mid-epoch resume,
    then the mixup epochs, then the final epochs without mixup.

    Args:
        epochs: total epochs.
        steps_per_epoch: steps per epoch.
        mixup_epochs: the first this many epochs use mixup (0: none).
        start_epoch: first unfinished epoch.
        start_step: steps of `start_epoch` already done.
    """
    segments = []
    epoch = start_epoch
    if start_step and epoch < epochs:
        segments.append(Segment(epoch, epoch + 1, steps_per_epoch - start_step, epoch < mixup_epochs, start_step))
        epoch += 1
    if epoch < mixup_epochs:
        segments.append(Segment(epoch, mixup_epochs, steps_per_epoch, True))
        epoch = mixup_epochs
    if epoch < epochs:
        segments.append(Segment(epoch, epochs, steps_per_epoch, False))
    return segments


def train(config, out_dir, data=None, verbose="auto", extra_callbacks=()):
    """Train (or resume) the recipe into `out_dir`; returns the final metrics dict.

    Args:
        config: a `ClassificationRecipe`.
        out_dir: the run folder; rerunning on the same folder resumes.
        data: a `TrainingData`; built from the recipe by default.
        verbose: Keras verbosity (progress bar by default).
        extra_callbacks: more Keras callbacks (tests use them to interrupt a run).
    """
    run = pathlib.Path(out_dir)
    plan = setup_distribution(config.distribution.strategy, config.distribution.multi_host)
    # Multi-host: only process 0 writes the run folder (after joining the job, so it knows its index).
    writer = is_primary_process()
    if writer:
        claim_run_folder(run, config)
    plan.check_batch(config.train.batch_size)
    keras.utils.set_random_seed(config.train.seed)
    if data is None:
        from kresnet.training.data import build_training_data

        data = build_training_data(config)
    with plan.scope:
        model, classifier = build_training_model(config, data.steps_per_epoch)
    checkpoint = RunCheckpoint(
        run / "checkpoints", data.steps_per_epoch, config.train.checkpoint_every_steps, classifier, run / "model.weights.h5",
        writer=writer,
    )
    start_epoch, start_step = checkpoint.restore(model)
    same_on_every_process((start_epoch, start_step), f"the resume point in {run / 'checkpoints'} (is --out shared?)")
    if writer:
        trim_history(run / "history.csv", start_epoch)
    # The checkpoint comes after the loggers: a state that counts an epoch as done is only ever
    # written after that epoch's history row, so a kill between the two loses no row.
    callbacks = [
        *([HistoryCSV(run / "history.csv", first_epoch_number=0)] if writer else []),
        ScalarEventLog(run / "logs", writer=writer),
        checkpoint,
        *extra_callbacks,
    ]
    if start_epoch or start_step:
        print(f"resuming {run} at epoch {start_epoch + 1}, step {start_step} of {data.steps_per_epoch}")
    mixup_epochs = config.train.epochs - config.tricks.mixup_off_epochs if data.train_mixup is not None else 0
    started = time.time()
    for segment in plan_segments(config.train.epochs, data.steps_per_epoch, mixup_epochs, start_epoch, start_step):
        checkpoint.step_offset = segment.offset
        model.fit(
            data.train_mixup if segment.mixup else data.train,
            initial_epoch=segment.start,
            epochs=segment.end,
            steps_per_epoch=segment.steps,
            validation_data=data.val,
            validation_steps=data.validation_steps,
            callbacks=callbacks,
            verbose=verbose,
        )
        if checkpoint.diverged is not None:
            epoch, step = checkpoint.diverged
            kept = "no checkpoint yet" if checkpoint.saved is None else f"last good checkpoint (epoch {checkpoint.saved[0]}, step {checkpoint.saved[1]}) kept in {checkpoint.directory}"
            raise TrainingDiverged(
                f"loss became NaN/inf at epoch {epoch + 1}, step {step}; training stopped, {kept}; "
                "lower optimizer.lr_per_256, add warmup or use float32 / mixed_bfloat16"
            )
    results = model.evaluate(data.val, steps=data.validation_steps, verbose=0, return_dict=True)
    metrics = {
        "top1": float(results["top1"]) * 100,
        "top5": float(results["top5"]) * 100,
        "val_loss": float(results["loss"]),
        "epochs": config.train.epochs,
        "optimizer_steps": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        "backend": keras.backend.backend(),
        "precision": keras.config.dtype_policy().name,
        "train_seconds_this_session": round(time.time() - started, 1),
        "paper_table": config.meta.paper_table,
        "paper_row": config.meta.paper_row,
        "expected_top1": config.meta.expected_top1,
    }
    save_weights(classifier, run / "model.weights.h5", writer)
    if writer:
        (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
