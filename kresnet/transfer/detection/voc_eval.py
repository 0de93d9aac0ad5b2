"""Pascal VOC average precision: the VOC2007 11-point metric (the paper's) and the VOC2010+ area metric.

Equals py-faster-rcnn's `voc_eval` (the code GluonCV's `VOC07MApMetric` and
Detectron follow), which produced the published VOC07 numbers: detections of
a class, listed image by image, are ranked by score and each is matched to
the ground-truth box of highest IoU. Tied scores keep their list order, as
the devkit's MATLAB `sort` (VOCevaldet.m) does; py-faster-rcnn's
`np.argsort(-score)` is not stable, and NumPy's SIMD sorts order ties
differently from CPU to CPU, which changed the mAP of tied detections. A detection whose best match is a `difficult` box counts neither as true
nor as false positive, difficult boxes do not count towards recall, and a
second hit on a matched box is a false positive. The one deliberate
difference: a hit is IoU >= 0.5 (the devkit's and GluonCV's rule) where
py-faster-rcnn has > 0.5; they differ only for an IoU of exactly 0.5.
Boxes are continuous coordinates, so IoU has no "+1" (the readers shift VOC's
1-based corners instead, which gives the same widths).
"""

import numpy as np


def average_precision(recall, precision, use_07_metric):
    """AP of one precision/recall curve.

    Args:
        recall: float array, non-decreasing, one entry per ranked detection.
        precision: float array, same length.
        use_07_metric: bool. True: VOC2007's 11 points, the maximum precision
            at `recall >= t` for `t in np.arange(0., 1.1, 0.1)`, each added as
            `p / 11.` (py-faster-rcnn's and GluonCV's code, bit for bit: three
            of those thresholds lie just above 0.3, 0.6 and 0.7, so a recall of
            exactly 0.3, 0.6 or 0.7 does not reach them). False: area under
            the monotone precision envelope (VOC2010+).
    """
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    if use_07_metric:
        ap = 0.0
        for threshold in np.arange(0.0, 1.1, 0.1):
            reached = recall >= threshold
            ap += (np.max(precision[reached]) if np.sum(reached) else 0.0) / 11.0
        return float(ap)
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.where(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def box_iou_numpy(boxes, others):
    """Pairwise IoU of xyxy boxes, (N, 4) x (M, 4) -> (N, M).

    Args:
        boxes: float array (N, 4).
        others: float array (M, 4).
    """
    boxes, others = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(others, np.float64).reshape(-1, 4)
    top_left = np.maximum(boxes[:, None, :2], others[None, :, :2])
    bottom_right = np.minimum(boxes[:, None, 2:], others[None, :, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=-1)
    other_area = np.prod(others[:, 2:] - others[:, :2], axis=-1)
    union = area[:, None] + other_area[None, :] - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1e-12), 0.0)


def precision_recall(detections, ground_truths, class_index, iou_threshold=0.5):
    """Ranked precision and recall of one class, with the VOC matching rules.

    Args:
        detections: list (per image) of dicts with `boxes` (N, 4), `scores` (N,), `labels` (N,).
        ground_truths: list (per image, same order) of dicts with `boxes`, `labels`, `difficult`.
        class_index: int.
        iou_threshold: float. Minimum IoU of a hit.

    Returns:
        (recall, precision, num_positives): arrays over the ranked detections
        that count (difficult matches dropped), and the number of non-difficult boxes.
    """
    scores, images, boxes = [], [], []
    for image, detection in enumerate(detections):
        keep = np.asarray(detection["labels"]) == class_index
        scores.append(np.asarray(detection["scores"], np.float64)[keep])
        boxes.append(np.asarray(detection["boxes"], np.float64).reshape(-1, 4)[keep])
        images.append(np.full(int(keep.sum()), image))
    scores, images, boxes = np.concatenate(scores), np.concatenate(images), np.concatenate(boxes)
    class_truths = []
    num_positives = 0
    for truth in ground_truths:
        keep = np.asarray(truth["labels"]) == class_index
        difficult = np.asarray(truth["difficult"], bool)[keep]
        class_truths.append((np.asarray(truth["boxes"], np.float64).reshape(-1, 4)[keep], difficult,
                             np.zeros(int(keep.sum()), bool)))
        num_positives += int((~difficult).sum())
    order = np.argsort(-scores, kind="stable")  # the devkit's ranking: ties in list order, on every CPU
    hits = []
    for detection in order:
        truth_boxes, difficult, matched = class_truths[images[detection]]
        if len(truth_boxes) == 0:
            hits.append(0.0)
            continue
        overlaps = box_iou_numpy(boxes[detection], truth_boxes)[0]
        best = int(np.argmax(overlaps))
        if overlaps[best] < iou_threshold:
            hits.append(0.0)
        elif difficult[best]:
            continue  # neither true nor false positive
        elif matched[best]:
            hits.append(0.0)  # duplicate detection
        else:
            matched[best] = True
            hits.append(1.0)
    hits = np.asarray(hits, np.float64)
    true_positives = np.cumsum(hits)
    false_positives = np.cumsum(1.0 - hits)
    recall = true_positives / max(num_positives, 1)
    precision = true_positives / np.maximum(true_positives + false_positives, np.finfo(np.float64).eps)
    return recall, precision, num_positives


def evaluate_voc(detections, ground_truths, class_names, iou_threshold=0.5):
    """Per-class and mean AP by both VOC metrics.

    Classes without a non-difficult ground-truth box get AP None and are left
    out of the means.

    Args:
        detections: list (per image) of dicts with `boxes`, `scores`, `labels`.
        ground_truths: list (per image) of dicts with `boxes`, `labels`, `difficult`.
        class_names: list of str.
        iou_threshold: float.

    Returns:
        dict with `map_voc07`, `map_area` and `per_class` {name: {"ap_voc07", "ap_area", "num_positives"}}.
    """
    if len(detections) != len(ground_truths):
        raise ValueError(f"{len(detections)} detection entries for {len(ground_truths)} images")
    per_class = {}
    for index, name in enumerate(class_names):
        recall, precision, num_positives = precision_recall(detections, ground_truths, index, iou_threshold)
        if num_positives == 0:
            per_class[name] = {"ap_voc07": None, "ap_area": None, "num_positives": 0}
            continue
        per_class[name] = {
            "ap_voc07": average_precision(recall, precision, use_07_metric=True),
            "ap_area": average_precision(recall, precision, use_07_metric=False),
            "num_positives": num_positives,
        }
    scored = [entry for entry in per_class.values() if entry["num_positives"]]
    return {
        "map_voc07": float(np.mean([e["ap_voc07"] for e in scored])) if scored else 0.0,
        "map_area": float(np.mean([e["ap_area"] for e in scored])) if scored else 0.0,
        "per_class": per_class,
    }
