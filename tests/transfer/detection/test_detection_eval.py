"""VOC AP (11-point and area) on hand-built cases; the pycocotools wrapper on a hand-checked case."""

import numpy as np
import pytest

from kresnet.transfer.detection.coco_eval import evaluate_coco
from kresnet.transfer.detection.dataset import DetectionDataset, make_record
from kresnet.transfer.detection.voc_eval import average_precision, evaluate_voc

# Four separate ground-truth boxes of class 0 in one image.
TRUTH_BOXES = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]], np.float32)
MISS = [100, 100, 110, 110]


def _truth(boxes, labels, difficult=None):
    return {"boxes": np.asarray(boxes, np.float32), "labels": np.asarray(labels),
            "difficult": np.zeros(len(labels), bool) if difficult is None else np.asarray(difficult)}


def _detections(boxes, scores, labels):
    return {"boxes": np.asarray(boxes, np.float32), "scores": np.asarray(scores), "labels": np.asarray(labels)}


def test_perfect_detections_give_one():
    truths = [_truth(TRUTH_BOXES, [0, 1, 0, 1]), _truth(TRUTH_BOXES[:1], [1])]
    detections = [_detections(TRUTH_BOXES, [0.9, 0.8, 0.7, 0.6], [0, 1, 0, 1]),
                  _detections(TRUTH_BOXES[:1], [0.5], [1])]
    result = evaluate_voc(detections, truths, ["a", "b"])
    assert result["map_voc07"] == pytest.approx(1.0) and result["map_area"] == pytest.approx(1.0)
    assert result["per_class"]["b"]["num_positives"] == 3


def test_known_precision_recall_curve():
    # Ranked hits 1, 0, 1, 0, 1 against 4 positives:
    # recall .25 .25 .5 .5 .75, precision 1 .5 .667 .5 .6.
    detections = [_detections([TRUTH_BOXES[0], MISS, TRUTH_BOXES[1], MISS, TRUTH_BOXES[2]],
                              [0.9, 0.8, 0.7, 0.6, 0.5], [0] * 5)]
    result = evaluate_voc(detections, [_truth(TRUTH_BOXES, [0] * 4)], ["a"])
    # 11-point: t = 0..0.2 -> 1; t = 0.3..0.5 -> 2/3; t = 0.6, 0.7 -> 0.6; t = 0.8..1 -> 0.
    assert result["map_voc07"] == pytest.approx((3 * 1 + 3 * 2 / 3 + 2 * 0.6) / 11)
    # Area under the envelope: .25 * 1 + .25 * 2/3 + .25 * .6.
    assert result["map_area"] == pytest.approx(0.25 + 0.25 * 2 / 3 + 0.25 * 0.6)


def test_average_precision_direct():
    assert average_precision([0.5, 1.0], [1.0, 1.0], True) == pytest.approx(1.0)
    assert average_precision([0.5, 0.5], [1.0, 0.5], False) == pytest.approx(0.5)
    assert average_precision([0.5], [1.0], True) == pytest.approx(6 / 11)


def test_difficult_is_neither_true_nor_false_positive():
    truth = _truth(np.concatenate([TRUTH_BOXES[:2], [[80, 0, 90, 10]]]), [0, 0, 0], [False, False, True])
    base = [TRUTH_BOXES[0], MISS, TRUTH_BOXES[1]]
    without = evaluate_voc([_detections(base, [0.9, 0.8, 0.7], [0] * 3)], [truth], ["a"])
    # The same detections plus a top-scoring hit on the difficult box: nothing changes.
    with_difficult_hit = evaluate_voc([_detections([[80, 0, 90, 10]] + base, [0.95, 0.9, 0.8, 0.7], [0] * 4)],
                                      [truth], ["a"])
    assert with_difficult_hit["map_area"] == pytest.approx(without["map_area"])
    assert with_difficult_hit["map_voc07"] == pytest.approx(without["map_voc07"])
    # Recall counts 2 positives, not 3: hits 1, 0, 1 -> area .5 * 1 + .5 * 2/3.
    assert without["map_area"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert without["per_class"]["a"]["num_positives"] == 2


def test_duplicates_are_false_positives_and_empty_classes_are_left_out():
    truths = [_truth(TRUTH_BOXES[:1], [0], [False]), _truth(TRUTH_BOXES[1:2], [1], [True])]
    detections = [_detections([TRUTH_BOXES[0], TRUTH_BOXES[0]], [0.9, 0.95], [0, 0]), _detections([], [], [])]
    result = evaluate_voc(detections, truths, ["a", "b"])
    assert result["per_class"]["b"]["ap_voc07"] is None
    assert result["map_area"] == pytest.approx(1.0)  # the duplicate comes after recall 1
    # A duplicate ranked between two hits: hits 1, 0, 1 over 2 positives -> area .5 + .5 * 2/3.
    truths = [_truth(TRUTH_BOXES[:2], [0, 0])]
    detections = [_detections([TRUTH_BOXES[0], TRUTH_BOXES[0] + 1, TRUTH_BOXES[1]], [0.9, 0.8, 0.7], [0, 0, 0])]
    assert evaluate_voc(detections, truths, ["a"])["map_area"] == pytest.approx(0.5 + 0.5 * 2 / 3)


def _coco_dataset():
    # Non-contiguous COCO ids 5 and 9; boxes of 40x40 (medium) so every area range is hand-checkable.
    records = [make_record(0, "a.jpg", 200, 200, [[0, 0, 40, 40], [100, 100, 140, 140]], [0, 0], [False, False]),
               make_record(1, "b.jpg", 200, 200, [[10, 10, 50, 50], [60, 60, 160, 160]], [1, 0], [False, True])]
    return DetectionDataset(records=records, class_names=["cat", "dog"], category_ids=[5, 9])


def test_coco_map_perfect_and_half_recall():
    dataset = _coco_dataset()
    perfect = [_detections(r.boxes[~r.difficult], [0.9] * int((~r.difficult).sum()), r.labels[~r.difficult])
               for r in dataset.records]
    stats = evaluate_coco(perfect, dataset)
    assert stats["ap"] == pytest.approx(1.0) and stats["ap50"] == pytest.approx(1.0)
    # Class "cat" finds one of its two boxes: precision 1 up to recall 0.5, so 51 of the
    # 101 recall points have precision 1 -> 51/101; "dog" stays perfect. A hit on the
    # crowd box (iscrowd) is ignored, not a false positive.
    half = [_detections([[0, 0, 40, 40]], [0.9], [0]),
            _detections([[10, 10, 50, 50], [60, 60, 160, 160]], [0.9, 0.95], [1, 0])]
    stats = evaluate_coco(half, dataset)
    assert stats["ap"] == pytest.approx((51 / 101 + 1.0) / 2)
    assert stats["ar100"] == pytest.approx((0.5 + 1.0) / 2)


def test_coco_map_equals_pycocotools_on_the_original_json(testdata):
    # The reader's records scored by `evaluate_coco` against pycocotools run directly on the
    # sample's own JSON (original image and category ids, mask areas for the size ranges).
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from kresnet.transfer.detection.coco import read_coco
    from kresnet.transfer.detection.coco_eval import COCO_STAT_NAMES

    root = testdata / "coco"
    dataset = read_coco(root / "instances.json", root / "images")
    rng = np.random.default_rng(0)
    detections, results = [], []
    for record in dataset.records:
        boxes = record.boxes + rng.normal(0, 4, record.boxes.shape).astype(np.float32)
        labels = record.labels.copy()
        labels[::5] = (labels[::5] + 1) % len(dataset.class_names)  # some wrong classes
        scores = rng.uniform(size=len(boxes))
        detections.append(_detections(boxes, scores, labels))
        results += [{"image_id": record.image_id, "category_id": dataset.category_ids[label],
                     "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])], "score": float(score)}
                    for b, score, label in zip(boxes, scores, labels)]
    ours = evaluate_coco(detections, dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(root / "instances.json"))
        reference = COCOeval(truth, truth.loadRes(results), "bbox")
        reference.evaluate()
        reference.accumulate()
        reference.summarize()
    expected = {name: max(float(value), 0.0) for name, value in zip(COCO_STAT_NAMES, reference.stats)}
    assert 0.2 < expected["ap"] < 0.9 and expected["ap_small"] > 0  # a case where every range is exercised
    assert ours == pytest.approx(expected, abs=1e-9)
