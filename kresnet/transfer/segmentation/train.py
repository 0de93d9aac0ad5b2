"""The segmentation task on the run engine: FCN from a recipe, scored with pixAcc and mIoU.

The run folder is `kresnet.runs`' plus classes.json; metrics.json holds pixAcc, mIoU and
per-class IoU on the val split, in percent.
"""

import sys

from kresnet.data.skips import SkipCounter, skip_report
from kresnet.errors import reraise_as_user_error
from kresnet.runs.fit import epoch_steps
from kresnet.runs.folder import CLASSES, FINAL_WEIGHTS
from kresnet.console import say
from kresnet.runs.task import TaskRun, run_task
from kresnet.transfer.segmentation import pipeline
from kresnet.transfer.segmentation.datasets import load_samples
from kresnet.transfer.segmentation.evaluation import evaluate
from kresnet.transfer.segmentation.fcn import build_fcn, compile_losses


def build_segmenter(model_config, num_classes, log=None, seed=0):
    """The FCN of the recipe's `[model]` table, its backbone loaded from `backbone_weights` if set.

    Args:
        model_config: the recipe's `Model` table.
        num_classes: int. Segmentation classes.
        log: callable or None. Told which weights the backbone starts from.
        seed: int. Seed of the heads' dropout masks (the recipe's `train.seed` when training).
    """
    from kresnet.transfer.backbone import build_backbone

    backbone = build_backbone(
        model_config.backbone,
        model_config.backbone_weights,
        log=log,
        output_stride=model_config.output_stride,
        stage_depths=model_config.stage_depths,
        stage_widths=model_config.stage_widths,
        fused_batch_norm=model_config.fused_batch_norm,
    )
    return build_fcn(
        backbone, num_classes, aux=model_config.aux, dropout=model_config.dropout, seed=seed,
        fused_batch_norm=model_config.fused_batch_norm,
    )


def compile_segmenter(model, optimizer, aux_weight):
    """Compile with `optimizer` and the ignore-label losses (the auxiliary head's weighted by `aux_weight`)."""
    losses, weights = compile_losses(model, aux_weight)
    model.compile(optimizer=optimizer, loss=losses, loss_weights=weights)


class SegmentationTask:
    """Semantic segmentation from a `SegmentationRecipe`: pixAcc and mIoU on the val split."""

    name = "segmentation"

    def evaluate_command(self, run):
        return f"kresnet transfer evaluate --checkpoint {run / FINAL_WEIGHTS}"

    def prepare(self, config, run, log):
        train_samples, val_samples = load_samples(config.data, "train"), load_samples(config.data, "val")
        run.write_json(CLASSES, train_samples.class_names)
        steps_per_epoch = epoch_steps(len(train_samples), config.train.batch_size, config.train.steps_per_epoch)
        model = build_segmenter(config.model, train_samples.num_classes, log=log, seed=config.train.seed)
        train_skips = SkipCounter()

        def stream(first_step):
            return pipeline.train_dataset(train_samples, config.train.batch_size, config.train.crop_size,
                                          config.train.base_size, config.train.scale_range, seed=config.train.seed,
                                          targets=tuple(model.output), skip_counter=train_skips, first_batch=first_step)

        where = f"{config.data.source} {config.data.root}".strip()
        return TaskRun(model, stream, steps_per_epoch, model_name=f"{config.model.backbone} FCN",
                       dataset=f"{where}, {len(train_samples)} images, {train_samples.num_classes} classes",
                       skipped={"train": train_skips}, state={"val": val_samples})

    def compile(self, job, optimizer, config):
        compile_segmenter(job.model, optimizer, config.model.aux_weight)

    def evaluate(self, job, config, log):
        return evaluate_segmenter(job.model, config, job.state["val"], log)


def train_segmentation(config, run_dir, log=say, extra_callbacks=(), fault=None):
    """Train (or resume) the recipe into `run_dir` and evaluate it; returns the metrics dict (a finished run's stored ones).

    Args:
        config: a `SegmentationRecipe`.
        run_dir: str or path. The run folder.
        log: callable for progress lines.
        extra_callbacks: more Keras callbacks, after the run folder's own (tests interrupt runs with them).
        fault: the run folder's fault hook (tests simulate kills and full disks with it).
    """
    return run_task(SegmentationTask(), config, run_dir, log=log, verbose=1 if sys.stdout.isatty() else 2,
                    extra_callbacks=extra_callbacks, fault=fault)


def evaluate_segmenter(model, config, samples, log=say):
    """Score `model` on `samples` with the recipe's `[eval]` table; a JSON-ready dict (percent, as the paper)."""
    skips = SkipCounter()
    dataset = pipeline.eval_dataset(samples, config.eval.size, config.eval.batch_size, skip_counter=skips)
    log(f"evaluating on {len(samples)} images (size {config.eval.size}, scales {config.eval.scales}, flip {config.eval.flip})")
    try:
        matrix = evaluate(model, dataset, samples.num_classes, config.eval.scales, config.eval.flip, len(samples))
    except Exception as error:
        reraise_as_user_error(error)
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
