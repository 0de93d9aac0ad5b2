"""`kresnet transfer detect`: train a detector from a recipe into a run folder, resumably, then evaluate it.

The run folder is `kresnet.runs`' (recipe, history, logs, checkpoints, model.weights.h5,
metrics.json, finished), plus classes.json; running a finished run again returns its stored metrics.
"""


from kresnet.console import say
from kresnet.runs.seeding import seed_run
from kresnet.runs.fit import epoch_steps, fit_run
from kresnet.runs.folder import CLASSES, FINAL_WEIGHTS, RunFolder
from kresnet.runs.report import core_metrics, run_header
from kresnet.transfer.detection.runner import build_detector, build_variables, evaluate_detector, load_splits


def train_detector(config, run_dir, log=say, verbose="auto", extra_callbacks=(), fault=None):
    """Train (or resume), evaluate, and return the metrics dict (a finished run's stored ones).

    Args:
        config: `DetectionRecipe`.
        run_dir: path of the run folder.
        log: callable for one-line progress messages.
        verbose: Keras `fit` verbosity.
        extra_callbacks: more Keras callbacks, after the run folder's own (tests interrupt runs with them).
        fault: the run folder's fault hook (tests simulate kills and full disks with it).
    """
    from kresnet.data.skips import SkipCounter, skipped_images_callback
    from kresnet.tricks.optimizer import build_optimizer
    from kresnet.tricks.schedules import build_schedule, scaled_learning_rate
    from kresnet.transfer.detection.pipeline import make_dataset

    with RunFolder(run_dir, fault=fault) as run:
        run.claim(config)
        completed = run.completed_metrics(f"kresnet transfer evaluate --checkpoint {run / FINAL_WEIGHTS}", log)
        if completed is not None:
            return completed
        seed_run(config.train.seed)
        train, test = load_splits(config, progress=log)
        run.write_json(CLASSES, train.class_names)
        model = build_detector(config, len(train.class_names), log=log)
        build_variables(model, config)  # restoring a checkpoint needs a built model; evaluation reuses the compiled predict
        fit = None
        train_skips = None
        if run.finished:  # finished, but metrics.json was removed: measure the saved detector again
            log(f"{run.path}: training already finished, evaluating {run / FINAL_WEIGHTS}")
            model.load_weights(run / FINAL_WEIGHTS)
        else:
            steps = epoch_steps(len(train), config.train.batch_size, config.train.steps_per_epoch)
            base_lr = scaled_learning_rate(config.optimizer.lr_per_256, config.train.batch_size)
            s = config.schedule
            schedule = build_schedule(s.kind, base_lr, steps, config.train.epochs, s.warmup_epochs, s.step_epochs,
                                      s.step_factor)
            model.compile(optimizer=build_optimizer(config.optimizer, schedule))
            train_skips = SkipCounter()  # unreadable training images: reported per epoch, kept in metrics.json
            data = make_dataset(train.records, config.train.batch_size, config.data.short_side, config.data.max_side,
                                config.data.max_boxes, training=True, flip=config.data.flip, seed=config.train.seed,
                                repeat=True, skip_counter=train_skips)
            dataset = f"{config.data.source} {config.data.root or ''}".strip()
            log(run_header("detection", config.model.backbone, f"{dataset}, {len(train)} images, "
                           f"{len(train.class_names)} classes", config.train.epochs, steps, config.train.batch_size,
                           run.path))
            fit = fit_run(run, model, data, epochs=config.train.epochs, steps_per_epoch=steps, verbose=verbose,
                          extra_callbacks=[*extra_callbacks, skipped_images_callback({"train": train_skips}, log)], log=log)
            run.save_weights(model, FINAL_WEIGHTS)
        log(f"evaluating on {len(test)} images")
        metrics = {**evaluate_detector(model, config, test),
                   **core_metrics("detection", fit, config.train.epochs, config.meta)}
        if train_skips is not None:
            metrics["skipped_images"]["train"] = train_skips.count
        run.finish(metrics)
    return metrics
