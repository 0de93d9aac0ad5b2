"""The segmentation driver: wires recipe, data, FCN and evaluation into the shared run engine.

The run folder is `kresnet.runs`' plus classes.json; metrics.json holds pixAcc, mIoU and
per-class IoU on the val split, in percent.
"""

import sys


from kresnet.console import say
from kresnet.runs.seeding import seed_run
from kresnet.data.skips import SkipCounter, skip_report, skipped_images_callback
from kresnet.errors import UserError
from kresnet.runs.fit import epoch_steps, fit_run
from kresnet.runs.folder import CLASSES, FINAL_WEIGHTS, RunFolder
from kresnet.runs.report import core_metrics, run_header
from kresnet.tricks.optimizer import build_optimizer
from kresnet.tricks.low_precision import set_precision
from kresnet.tricks.schedules import scaled_learning_rate
from kresnet.transfer.segmentation import pipeline
from kresnet.transfer.segmentation.datasets import load_samples
from kresnet.transfer.segmentation.evaluation import evaluate
from kresnet.transfer.segmentation.fcn import build_fcn, compile_losses
from kresnet.transfer.segmentation.schedule import segmentation_schedule


def build_segmenter(model_config, num_classes, log=None):
    """The FCN of the recipe's `[model]` table, its backbone loaded from `backbone_weights` if set.

    Args:
        model_config: the recipe's `Model` table.
        num_classes: int. Segmentation classes.
        log: callable or None. Told which weights the backbone starts from.
    """
    from kresnet.transfer.backbone import build_backbone

    backbone = build_backbone(
        model_config.backbone,
        model_config.backbone_weights,
        log=log,
        output_stride=model_config.output_stride,
        stage_depths=model_config.stage_depths,
        stage_widths=model_config.stage_widths,
    )
    return build_fcn(backbone, num_classes, aux=model_config.aux, dropout=model_config.dropout)


def compile_segmenter(model, config, steps_per_epoch):
    """Compile with the recipe's SGD (coupled L2), schedule and the ignore-label losses."""
    base_lr = scaled_learning_rate(config.optimizer.lr_per_256, config.train.batch_size)
    schedule = segmentation_schedule(
        config.schedule.kind,
        base_lr,
        steps_per_epoch,
        config.train.epochs,
        config.schedule.warmup_epochs,
        config.schedule.power,
    )
    losses, weights = compile_losses(model, config.model.aux_weight)
    model.compile(optimizer=build_optimizer(config.optimizer, schedule), loss=losses, loss_weights=weights)


def train_segmentation(config, run_dir, log=say, extra_callbacks=(), fault=None):
    """Train (or resume) the recipe into `run_dir` and evaluate it; returns the metrics dict (a finished run's stored ones).

    Args:
        config: a `SegmentationRecipe`.
        run_dir: str or path. The run folder.
        log: callable for progress lines.
        extra_callbacks: more Keras callbacks, after the run folder's own (tests interrupt runs with them).
        fault: the run folder's fault hook (tests simulate kills and full disks with it).
    """
    with RunFolder(run_dir, fault=fault) as run:
        run.claim(config)
        completed = run.completed_metrics(f"kresnet transfer evaluate --checkpoint {run / FINAL_WEIGHTS}", log)
        if completed is not None:
            return completed
        seed_run(config.train.seed)
        set_precision(config.train.precision)
        train_samples, val_samples = load_samples(config.data, "train"), load_samples(config.data, "val")
        run.write_json(CLASSES, train_samples.class_names)
        steps_per_epoch = epoch_steps(len(train_samples), config.train.batch_size, config.train.steps_per_epoch)
        model = build_segmenter(config.model, train_samples.num_classes, log=log)
        compile_segmenter(model, config, steps_per_epoch)
        train_skips = SkipCounter()  # unreadable training images, reported per epoch and in metrics.json
        dataset = pipeline.train_dataset(
            train_samples,
            config.train.batch_size,
            config.train.crop_size,
            config.train.base_size,
            config.train.scale_range,
            seed=config.train.seed,
            targets=tuple(model.output),
            skip_counter=train_skips,
        )
        where = f"{config.data.source} {config.data.root}".strip()
        log(run_header("segmentation", f"{config.model.backbone} FCN", f"{where}, "
                       f"{len(train_samples)} images, {train_samples.num_classes} classes", config.train.epochs,
                       steps_per_epoch, config.train.batch_size, run.path))
        run.unfinish()
        try:
            fit = fit_run(run, model, dataset, epochs=config.train.epochs, steps_per_epoch=steps_per_epoch,
                          verbose=1 if sys.stdout.isatty() else 2, extra_callbacks=[*extra_callbacks, skipped_images_callback({"train": train_skips}, log)], log=log)
        except UserError:
            raise
        except Exception as error:  # tf.data wraps a bad mask's UserError in its own error type.
            pipeline.reraise_user_error(error)
        run.save_weights(model, FINAL_WEIGHTS)
        metrics = {**evaluate_segmenter(model, config, val_samples, log),
                   **core_metrics("segmentation", fit, config.train.epochs, config.meta)}
        metrics["skipped_images"]["train"] = train_skips.count
        run.finish(metrics)
    return metrics


def evaluate_segmenter(model, config, samples, log=say):
    """Score `model` on `samples` with the recipe's `[eval]` table; a JSON-ready dict (percent, as the paper)."""
    skips = SkipCounter()
    dataset = pipeline.eval_dataset(samples, config.eval.size, config.eval.batch_size, skip_counter=skips)
    log(f"evaluating on {len(samples)} images (size {config.eval.size}, scales {config.eval.scales}, flip {config.eval.flip})")
    try:
        matrix = evaluate(model, dataset, samples.num_classes, config.eval.scales, config.eval.flip, len(samples))
    except Exception as error:
        pipeline.reraise_user_error(error)
    if skip_report({"eval": skips.count}):
        log(skip_report({"eval": skips.count}))
    summary = matrix.summary(samples.class_names, config.eval.mean_iou)
    metrics = {
        "pixel_accuracy": 100 * summary["pixel_accuracy"],
        "mean_iou": 100 * summary["mean_iou"],
        "mean_iou_convention": summary["mean_iou_convention"],
        "class_iou": {name: None if iou is None else 100 * iou for name, iou in summary["class_iou"].items()},
        "pixels": summary["pixels"],
    }
    metrics.update(
        {
            "images": len(samples) - skips.count,  # the images scored
            "skipped_images": {"eval": skips.count},
            "eval_size": config.eval.size,
            "scales": list(config.eval.scales),
            "flip": config.eval.flip,
        }
    )
    return metrics
