"""`kresnet transfer detect`: train a detector from a recipe into a run folder, resumably, then evaluate it.

Run folder: recipe.toml (resolved), classes.json, history.csv, backup/ (full
state at each epoch end, removed when training ends; a rerun resumes from it),
checkpoints/last.weights.h5, model.weights.h5 (final detector), metrics.json.
"""

import math

import keras

from kresnet.recipe import claim_run_folder
from kresnet.training.checkpoint import TrainingDiverged
from kresnet.training.history import HistoryCSV, TrimHistoryOnResume
from transfer.detection.runner import (build_detector, build_variables, evaluate_detector, load_splits,
                                      write_json)
from transfer.finite_backup import FiniteBackupAndRestore
from transfer.run_folder import CLASSES_FILE


def train_detector(config, run_dir, log=print, verbose="auto", extra_callbacks=()):
    """Train (or resume, or skip if finished) and evaluate; returns the metrics dict.

    Args:
        config: `DetectionRecipe`.
        run_dir: path of the run folder.
        log: callable for one-line progress messages.
        verbose: Keras `fit` verbosity.
        extra_callbacks: more Keras callbacks, after the run folder's own (tests interrupt runs with them).
    """
    from kresnet.data.skips import SkipCounter, skipped_images_callback
    from kresnet.training.optimizer import NesterovL2SGD
    from kresnet.training.schedules import build_schedule, scaled_learning_rate
    from transfer.detection.pipeline import make_dataset

    run = claim_run_folder(run_dir, config)
    keras.utils.set_random_seed(config.train.seed)
    train, test = load_splits(config, progress=log)
    write_json(train.class_names, run / CLASSES_FILE)
    log(f"{len(train)} training images, {len(test)} test images, {len(train.class_names)} classes")
    model = build_detector(config, len(train.class_names))
    build_variables(model, config)  # BackupAndRestore needs a built model; evaluation reuses the compiled predict
    final = run / "model.weights.h5"
    train_skips = None
    if final.is_file():
        log(f"{final} exists: training already finished, evaluating it")
        model.load_weights(final)
    else:
        steps = config.train.steps_per_epoch or max(1, len(train) // config.train.batch_size)
        base_lr = scaled_learning_rate(config.optimizer.lr_per_256, config.train.batch_size)
        schedule = build_schedule(config.schedule.kind, base_lr, steps, config.train.epochs,
                                  config.schedule.warmup_epochs, config.schedule.step_epochs, config.schedule.step_factor)
        optimizer = NesterovL2SGD(learning_rate=schedule, momentum=config.optimizer.momentum,
                                  nesterov=config.optimizer.nesterov, l2=config.optimizer.weight_decay,
                                  no_bias_decay=config.optimizer.no_bias_decay)
        model.compile(optimizer=optimizer)
        train_skips = SkipCounter()  # unreadable training images: reported per epoch, kept in metrics.json
        data = make_dataset(train.records, config.train.batch_size, config.data.short_side, config.data.max_side,
                            config.data.max_boxes, training=True, flip=config.data.flip, seed=config.train.seed,
                            repeat=True, skip_counter=train_skips)
        (run / "checkpoints").mkdir(exist_ok=True)
        # Loggers before the backup: see kresnet/training/history.py.
        callbacks = [
            HistoryCSV(run / "history.csv", first_epoch_number=0),
            keras.callbacks.ModelCheckpoint(str(run / "checkpoints" / "last.weights.h5"), save_weights_only=True),
            FiniteBackupAndRestore(str(run / "backup")),
            TrimHistoryOnResume(run / "history.csv", first_epoch_number=0),
            keras.callbacks.TerminateOnNaN(),
            *extra_callbacks,
            skipped_images_callback({"train": train_skips}, log),
        ]
        log(f"training {config.train.epochs} epochs x {steps} steps, lr {base_lr:g}, {keras.config.dtype_policy().name}")
        history = model.fit(data, epochs=config.train.epochs, steps_per_epoch=steps, callbacks=callbacks,
                            verbose=verbose)
        losses = history.history.get("loss", [])
        if losses and not math.isfinite(losses[-1]):
            raise TrainingDiverged(
                f"training diverged (loss {losses[-1]}); the last good state (end of the last finite epoch) is in "
                f"{run / 'backup'}; lower optimizer.lr_per_256 or add warmup, then rerun to resume"
            )
        model.save_weights(final)
    log(f"evaluating on {len(test)} images")
    metrics = evaluate_detector(model, config, test)
    metrics["epochs"] = config.train.epochs
    if train_skips is not None:
        metrics["skipped_images"]["train"] = train_skips.count
    write_json(metrics, run / "metrics.json")
    return metrics
