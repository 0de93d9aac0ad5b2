"""What the detection commands share: data from a recipe, the detector, backbone weights, training, evaluation."""

import dataclasses
import pathlib

from kresnet.errors import UserError


def load_splits(config, progress=None):
    """(train, test) `DetectionDataset`s of a recipe; problems are reported (one line each), not fatal.

    Args:
        config: `DetectionRecipe`.
        progress: callable or None, told what is happening (one line).
    """
    data = config.data
    if data.source == "synthetic":
        from kresnet.transfer.detection.synthetic_voc import cached_synthetic_voc, synthetic_class_names
        from kresnet.transfer.detection.voc import read_voc

        if progress:
            progress("preparing the synthetic VOC scenes (cached after the first run)")
        devkit = cached_synthetic_voc(data.synthetic_classes, data.synthetic_image_size, data.synthetic_train_images,
                                      data.synthetic_test_images, data.synthetic_seed, data.synthetic_max_objects)
        names = synthetic_class_names(data.synthetic_classes)
        train, test = (read_voc(devkit, f"synthetic/{split}", names) for split in ("trainval", "test"))
    elif data.source == "voc":
        from kresnet.transfer.detection.voc import read_voc

        train, test = (read_voc(data.root, splits, data.class_names or None)
                       for splits in (data.train_splits, data.test_splits))
    else:
        from kresnet.transfer.detection.coco import read_coco

        root = pathlib.Path(data.root)
        names = data.class_names or None
        train = read_coco(root / data.coco_train_json, root / data.coco_train_images, skip_empty=True, class_names=names)
        test = read_coco(root / data.coco_test_json, root / data.coco_test_images, class_names=names)
    train.report_problems("train")
    test.report_problems("test")
    keys = ("coco_train_json", "coco_test_json") if data.source == "coco" else ("train_splits", "test_splits")
    for dataset, key in zip((train, test), keys):
        if not dataset.records:
            raise UserError(f"data.{key} {getattr(data, key)!r}: no usable images under {data.root} "
                            "(an empty split, or every image skipped)")
    return train, test


def build_detector(config, num_classes, load_backbone=True, log=None):
    """The recipe's `FasterRCNN`, its backbone initialised from `model.backbone_weights` when given.

    Args:
        config: `DetectionRecipe`.
        num_classes: int.
        load_backbone: bool. False when full detector weights are loaded next anyway.
        log: callable or None. Told which weights the backbone starts from.
    """
    from kresnet.transfer.backbone import build_backbone
    from kresnet.transfer.detection.config import detector_arguments
    from kresnet.transfer.detection.faster_rcnn import FasterRCNN
    from kresnet.transfer.detection.pipeline import padded_size

    side = padded_size(config.data.max_side)
    m = config.model
    weights = m.backbone_weights if load_backbone else ""
    backbone = build_backbone(m.backbone, weights, log=log, input_shape=[side, side, 3], stage_depths=m.stage_depths,
                              stage_widths=m.stage_widths, fused_batch_norm=m.fused_batch_norm)
    return FasterRCNN(backbone, num_classes, **detector_arguments(m), seed=config.train.seed)


def build_variables(model, config):
    """Create the detector's variables (a prediction on one blank batch) so weights can be loaded.

    Args:
        model: `FasterRCNN`.
        config: `DetectionRecipe`.
    """
    import numpy as np

    from kresnet.transfer.detection.pipeline import padded_size

    side = padded_size(config.data.max_side)
    size = config.eval.batch_size
    model.predict_on_batch({"images": np.zeros((size, side, side, 3), np.float32),
                            "image_sizes": np.full((size, 2), side, np.float32)})


def evaluate_detector(model, config, dataset, progress=None):
    """VOC07 11-point and area mAP (percent, per class too), plus COCO mAP for COCO data.

    The backend, precision and paper row go beside them from `kresnet.runs.report.evaluation_context`.

    Args:
        model: `FasterRCNN`.
        config: `DetectionRecipe`.
        dataset: `DetectionDataset` to score.
        progress: callable or None, called with images done.
    """
    from kresnet.transfer.detection.inference import detect_records, ground_truths
    from kresnet.transfer.detection.voc_eval import evaluate_voc

    from kresnet.data.skips import SkipCounter, skip_report

    skips = SkipCounter()
    detections = detect_records(model, dataset.records, config.eval.batch_size, config.data.short_side,
                                config.data.max_side, progress, skip_counter=skips)
    # Unreadable images are dropped, not scored as misses: the numbers are over the images seen.
    scored = dataclasses.replace(dataset, records=[r for r, d in zip(dataset.records, detections) if d is not None])
    detections = [d for d in detections if d is not None]
    if skip_report({"eval": skips.count}):
        print(skip_report({"eval": skips.count}))
    result = evaluate_voc(detections, ground_truths(scored.records), scored.class_names)
    metrics = {
        "map_voc07": 100 * result["map_voc07"],
        "map_area": 100 * result["map_area"],
        "images": len(scored.records),
        "skipped_images": {"eval": skips.count},
        "per_class_ap_voc07": {k: None if v["ap_voc07"] is None else 100 * v["ap_voc07"]
                               for k, v in result["per_class"].items()},
    }
    if config.data.source == "coco":
        from kresnet.transfer.detection.coco_eval import evaluate_coco

        metrics["coco"] = {k: None if v is None else 100 * v for k, v in evaluate_coco(detections, scored).items()}
    return metrics
