"""The classification driver: wires recipe, data, model and evaluation into the shared run engine.

The run folder (layout, lock, checkpoints, resume) is `kresnet.runs`'; model.weights.h5
holds the classifier after each finished epoch, so `kresnet evaluate` works mid-run.
"""


from kresnet.runs.seeding import seed_run
from kresnet.runs.fit import fit_run
from kresnet.runs.folder import CLASSES, FINAL_WEIGHTS, RunFolder
from kresnet.runs.report import core_metrics, run_header
from kresnet.classification.build import build_training_model
from kresnet.runs.distribution import setup_distribution
from kresnet.tricks.mixup_schedule import MixupSchedule


def train(config, out_dir, data=None, verbose="auto", extra_callbacks=(), log=print, fault=None):
    """Train (or resume) the recipe into `out_dir`; returns the final metrics dict.

    Args:
        config: a `ClassificationRecipe`.
        out_dir: the run folder; rerunning on the same folder resumes.
        data: a `TrainingData`; built from the recipe by default.
        verbose: Keras verbosity (progress bar by default).
        extra_callbacks: more Keras callbacks (tests use them to interrupt a run).
        log: callable for one-line messages.
        fault: the run folder's fault hook (tests simulate kills and full disks with it).
    """
    if config.model.data_format == "channels_first":  # refused before the run folder or any data is made
        from kresnet.classification.build import check_channels_first_supported

        check_channels_first_supported()
    plan = setup_distribution(config.distribution.strategy, config.distribution.multi_host)
    plan.check_batch(config.train.batch_size)
    with RunFolder(out_dir, fault=fault) as run:
        run.claim(config)
        completed = run.completed_metrics(f"kresnet evaluate {run.path}", log)
        if completed is not None:
            return completed
        seed_run(config.train.seed)
        if data is None:
            from kresnet.classification.data import build_training_data

            data = build_training_data(config)
        with plan.scope:
            model, classifier = build_training_model(config, data.steps_per_epoch)
        where = config.data.root if config.data.source == "imagenet" else "synthetic data"
        log(run_header("classification", config.model.name, f"{where}, {data.num_classes} classes",
                       config.train.epochs, data.steps_per_epoch, config.train.batch_size, run.path))
        mixup = None
        if config.tricks.mixup_alpha > 0:
            mixup = MixupSchedule(config.tricks.mixup_alpha, config.train.epochs, data.steps_per_epoch,
                                  config.tricks.mixup_off_epochs, seed=config.train.seed + 2000)
        if data.skipped:  # unreadable-image counts, once per epoch
            from kresnet.data.skips import skipped_images_callback

            extra_callbacks = [*extra_callbacks, skipped_images_callback(data.skipped)]
        if data.class_names:  # what `kresnet predict` names the classes by
            run.write_json(CLASSES, list(data.class_names))
        run.unfinish()
        fit = fit_run(run, model, data.train, epochs=config.train.epochs, steps_per_epoch=data.steps_per_epoch,
                      every_steps=config.train.checkpoint_every_steps, mixup=mixup, validation=data.val, validation_steps=data.validation_steps,
                      export_model=classifier, verbose=verbose, extra_callbacks=extra_callbacks, log=log)
        results = model.evaluate(data.val, steps=data.validation_steps, verbose=0, return_dict=True)
        metrics = {
            "top1": float(results["top1"]) * 100,
            "top5": float(results["top5"]) * 100,
            "val_loss": float(results["loss"]),
            **core_metrics("classification", fit, config.train.epochs, config.meta),
        }
        if data.skipped:
            from kresnet.data.skips import skip_counts

            metrics["skipped_images"] = skip_counts(data.skipped)
        run.save_weights(classifier, FINAL_WEIGHTS)
        run.finish(metrics)
    return metrics
