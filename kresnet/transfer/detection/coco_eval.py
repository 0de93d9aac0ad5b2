"""COCO box mAP through pycocotools, for COCO-format data (and for any `DetectionDataset`).

For data read from a COCO JSON the numbers equal pycocotools run on that
file with its annotations numbered 1..N: the ground truth is the file's own
entries (original image ids, unclipped boxes, its areas), so tied scores rank
across images as there, and -1 ("no ground truth in this area range") stays
-1, reported as None. The renumbering matters for labelme exports, whose
annotation ids start at 0: pycocotools takes a match with id 0 for no match
and would score perfect detections 0.5.
"""

import contextlib
import io

import numpy as np

COCO_STAT_NAMES = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large",
                   "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large")


def coco_ground_truth(dataset):
    """COCO-format dict to score against: the source JSON's entries for COCO data, else built from the records.

    Built from records (VOC data): images numbered in order, iscrowd = the
    record's `difficult`, `area` the record's when it has one, else the box area.

    Args:
        dataset: `DetectionDataset`.
    """
    if dataset.coco_truth is not None:
        return dataset.coco_truth
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
        dict {name: float or None} for the twelve `COCO_STAT_NAMES`; None
        where pycocotools gives -1 (no ground truth in that area range).
    """
    from pycocotools.cocoeval import COCOeval

    if len(detections) != len(dataset.records):
        raise ValueError(f"{len(detections)} detection entries for {len(dataset.records)} images")
    category_ids = dataset.category_ids or list(range(1, len(dataset.class_names) + 1))
    truth_dict = coco_ground_truth(dataset)
    image_ids = [record.image_id for record in dataset.records] if dataset.coco_truth is not None \
        else list(range(len(dataset.records)))
    results = []
    for image_id, detection in zip(image_ids, detections):
        for box, score, label in zip(np.asarray(detection["boxes"]).reshape(-1, 4),
                                     detection["scores"], detection["labels"]):
            results.append({"image_id": image_id, "category_id": int(category_ids[int(label)]),
                            "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                            "score": float(score)})
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth = _index(truth_dict)
        # loadRes cannot take an empty list; an empty result set scores 0 as it should.
        found = truth.loadRes(results) if results else _index({**truth_dict, "annotations": []})
        evaluation = COCOeval(truth, found, "bbox")
        evaluation.params.imgIds = sorted(image_ids)  # the scored images (all of the file's when none was skipped)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {name: None if value < 0 else float(value) for name, value in zip(COCO_STAT_NAMES, evaluation.stats)}


def _index(dataset_dict):
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset_dict
    coco.createIndex()
    return coco
