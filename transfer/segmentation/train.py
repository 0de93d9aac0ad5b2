"""The segmentation training driver: wires recipe, data, FCN, optimizer, callbacks and evaluation.

Run folder: recipe.toml (resolved), classes.json, history.csv, checkpoints/ (weights,
optimizer state and epoch of the last finished epoch whose loss is finite; a rerun resumes
after it), model.weights.h5 (the segmenter after training) and metrics.json (pixAcc, mIoU,
per-class IoU on the val split).
"""

import json
import sys
import time

import keras

from kresnet.data.skips import SkipCounter, skip_report, skipped_images_callback
from kresnet.errors import UserError
from kresnet.recipe import claim_run_folder
from kresnet.training.checkpoint import TrainingDiverged
from kresnet.training.optimizer import NesterovL2SGD
from kresnet.training.precision import set_precision
from kresnet.training.schedules import scaled_learning_rate
from transfer.run_folder import CLASSES_FILE
from transfer.segmentation import pipeline
from transfer.segmentation.callbacks import training_callbacks
from transfer.segmentation.datasets import load_samples
from transfer.segmentation.evaluation import evaluate
from transfer.segmentation.fcn import build_fcn, compile_losses
from transfer.segmentation.schedule import segmentation_schedule


def build_segmenter(model_config, num_classes):
    """The FCN of the recipe's `[model]` table, its backbone loaded from `backbone_weights` if set.

    Args:
        model_config: the recipe's `Model` table.
        num_classes: int. Segmentation classes.
    """
    from transfer.backbone import build_backbone

    backbone = build_backbone(
        model_config.backbone,
        model_config.backbone_weights,
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
    optimizer = NesterovL2SGD(
        learning_rate=schedule,
        momentum=config.optimizer.momentum,
        nesterov=config.optimizer.nesterov,
        l2=config.optimizer.weight_decay,
        no_bias_decay=config.optimizer.no_bias_decay,
    )
    losses, weights = compile_losses(model, config.model.aux_weight)
    model.compile(optimizer=optimizer, loss=losses, loss_weights=weights)


def train_segmentation(config, run_dir, log=print, extra_callbacks=()):
    """Train (or resume, or only re-evaluate) the recipe into `run_dir`; returns the metrics dict.

    Args:
        config: a `SegmentationRecipe`.
        run_dir: str or path. The run folder.
        log: callable for progress lines.
        extra_callbacks: more Keras callbacks, after the run folder's own (tests interrupt runs with them).
    """
    run = claim_run_folder(run_dir, config)
    metrics_path = run / "metrics.json"
    if metrics_path.is_file():
        log(f"{run}: already complete; metrics in {metrics_path}")
        return json.loads(metrics_path.read_text())
    keras.utils.set_random_seed(config.train.seed)
    set_precision(config.train.precision)
    train_samples, val_samples = load_samples(config.data, "train"), load_samples(config.data, "val")
    (run / CLASSES_FILE).write_text(json.dumps(train_samples.class_names) + "\n", encoding="utf-8")
    steps_per_epoch = config.train.steps_per_epoch or max(1, len(train_samples) // config.train.batch_size)
    model = build_segmenter(config.model, train_samples.num_classes)
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
    log(
        f"training {config.model.backbone} FCN on {len(train_samples)} images, {train_samples.num_classes} classes, "
        f"{config.train.epochs} epochs x {steps_per_epoch} steps, backend {keras.backend.backend()}"
    )
    callbacks = [*training_callbacks(run, extra_callbacks), skipped_images_callback({"train": train_skips}, log)]
    start = time.time()
    try:
        history = model.fit(
            dataset,
            epochs=config.train.epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            verbose=1 if sys.stdout.isatty() else 2,
            shuffle=False,  # the tf.data stream shuffles itself
        )
    except Exception as error:  # tf.data wraps a bad mask's UserError in its own error type.
        pipeline.reraise_user_error(error)
    losses = history.history.get("loss", [])
    if losses and not all(map(_finite, losses)):
        raise TrainingDiverged(
            f"{run}: the loss became NaN or infinite in epoch {history.epoch[-1] + 1}; training stopped, "
            f"{run / 'checkpoints'} keeps the last finite epoch; lower optimizer.lr_per_256, add "
            "schedule.warmup_epochs or use float32, with a new --out"
        )
    model.save_weights(str(run / "model.weights.h5"))
    metrics = evaluate_segmenter(model, config, val_samples, log)
    metrics["skipped_images"]["train"] = train_skips.count
    metrics["train_seconds"] = round(time.time() - start, 1)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    log(f"pixAcc {100 * metrics['pixel_accuracy']:.2f}  mIoU {100 * metrics['mean_iou']:.2f}  ({metrics_path})")
    return metrics


def evaluate_segmenter(model, config, samples, log=print):
    """Score `model` on `samples` with the recipe's `[eval]` table; a JSON-ready dict."""
    skips = SkipCounter()
    dataset = pipeline.eval_dataset(samples, config.eval.size, config.eval.batch_size, skip_counter=skips)
    log(f"evaluating on {len(samples)} images (size {config.eval.size}, scales {config.eval.scales}, flip {config.eval.flip})")
    try:
        matrix = evaluate(model, dataset, samples.num_classes, config.eval.scales, config.eval.flip, len(samples))
    except Exception as error:
        pipeline.reraise_user_error(error)
    if skip_report({"eval": skips.count}):
        log(skip_report({"eval": skips.count}))
    metrics = matrix.summary(samples.class_names, config.eval.mean_iou)
    metrics.update(
        {
            "num_images": len(samples) - skips.count,  # the images scored
            "skipped_images": {"eval": skips.count},
            "eval_size": config.eval.size,
            "scales": list(config.eval.scales),
            "flip": config.eval.flip,
            "backend": keras.backend.backend(),
            "expected_pixel_accuracy": config.meta.expected_pixel_accuracy,
            "expected_mean_iou": config.meta.expected_mean_iou,
        }
    )
    return metrics


def _finite(value):
    return value == value and abs(value) != float("inf")
