"""COCO box mAP through pycocotools, for COCO-format data (and for any `DetectionDataset`)."""

import contextlib
import io

import numpy as np

COCO_STAT_NAMES = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large",
                   "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large")


def coco_ground_truth(dataset):
    """COCO-format dict of a dataset's boxes (iscrowd = the record's `difficult`).

    `area` is the record's COCO annotation area when it has one (so the
    small/medium/large ranges match pycocotools on the original JSON), else the box area.

    Args:
        dataset: `DetectionDataset`.
    """
    category_ids = dataset.category_ids or list(range(1, len(dataset.class_names) + 1))
    images, annotations = [], []
    for number, record in enumerate(dataset.records):
        images.append({"id": number, "width": record.width, "height": record.height,
                       "file_name": str(record.image_path)})
        areas = record.areas if record.areas is not None else [None] * len(record.boxes)
        for box, label, crowd, area in zip(record.boxes, record.labels, record.difficult, areas):
            width, height = float(box[2] - box[0]), float(box[3] - box[1])
            annotations.append({"id": len(annotations) + 1, "image_id": number,
                                "category_id": int(category_ids[label]),
                                "bbox": [float(box[0]), float(box[1]), width, height],
                                "area": width * height if area is None else float(area),
                                "iscrowd": int(crowd)})
    categories = [{"id": int(i), "name": name} for i, name in zip(category_ids, dataset.class_names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def evaluate_coco(detections, dataset):
    """COCO box AP/AR (IoU 0.5:0.95, 101-point interpolation) of per-image detections.

    Args:
        detections: list (one per record of `dataset`, same order) of dicts
            with `boxes` (N, 4) xyxy pixels, `scores` (N,), `labels` (N,) class indices.
        dataset: `DetectionDataset` the detections belong to.

    Returns:
        dict {name: float} for the twelve `COCO_STAT_NAMES`.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(detections) != len(dataset.records):
        raise ValueError(f"{len(detections)} detection entries for {len(dataset.records)} images")
    category_ids = dataset.category_ids or list(range(1, len(dataset.class_names) + 1))
    results = []
    for number, detection in enumerate(detections):
        for box, score, label in zip(np.asarray(detection["boxes"]).reshape(-1, 4),
                                     detection["scores"], detection["labels"]):
            results.append({"image_id": number, "category_id": int(category_ids[int(label)]),
                            "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                            "score": float(score)})
    if not results:
        return {name: 0.0 for name in COCO_STAT_NAMES}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth = COCO()
        truth.dataset = coco_ground_truth(dataset)
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    # pycocotools reports -1 where a category/area range has no ground truth.
    return {name: float(max(value, 0.0)) for name, value in zip(COCO_STAT_NAMES, evaluation.stats)}
