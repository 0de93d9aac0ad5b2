"""COCO AP equals pycocotools run on the user's own JSON (annotations numbered from 1), boxes unclipped, -1 as None."""

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from kresnet.transfer.detection.coco import read_coco
from kresnet.transfer.detection.coco_eval import COCO_STAT_NAMES, evaluate_coco


def _write_coco(tmp_path, rng):
    """A JSON with unsorted image ids, annotation ids from 0 and boxes sticking out of the image."""
    image_ids = [int(i) for i in rng.permutation([7, 3, 11, 5, 2])]  # JSON order is not id order
    images, annotations = [], []
    (tmp_path / "images").mkdir(exist_ok=True)
    for image_id in image_ids:
        name = f"im{image_id}.jpg"
        (tmp_path / "images" / name).write_bytes(b"not decoded by the reader")
        images.append({"id": image_id, "file_name": name, "width": 100, "height": 80})
        for _ in range(int(rng.integers(1, 4))):
            x, y = rng.uniform(-20, 90), rng.uniform(-20, 70)  # may start left of / above the image
            w, h = rng.uniform(35, 50), rng.uniform(35, 50)  # and may end past it; all "medium"
            annotations.append({"id": len(annotations), "image_id": image_id, "category_id": int(rng.choice([4, 9])),
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    content = {"images": images, "annotations": annotations,
               "categories": [{"id": 9, "name": "dog"}, {"id": 4, "name": "cat"}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(content))
    return path, content


def _pycocotools_on_file(path, results):
    """pycocotools on the file with its annotations numbered 1..N (it takes a match with id 0 for no match)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    content = json.loads(path.read_text())
    content["annotations"] = [{**a, "id": n} for n, a in enumerate(content["annotations"], 1)]
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = content
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {name: None if value < 0 else float(value) for name, value in zip(COCO_STAT_NAMES, evaluation.stats)}


@pytest.mark.parametrize("seed", range(8))
def test_coco_ap_equals_pycocotools_on_the_file(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path, content = _write_coco(tmp_path, rng)
    dataset = read_coco(path, tmp_path / "images")
    class_of = {category_id: index for index, category_id in enumerate(dataset.category_ids)}
    by_image = {}
    for annotation in content["annotations"]:
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    detections, results = [], []
    for record in dataset.records:
        boxes, scores, labels = [], [], []
        for annotation in by_image[record.image_id]:
            x, y, w, h = np.asarray(annotation["bbox"]) + rng.normal(0, 3, 4)
            category = annotation["category_id"] if rng.random() < 0.85 else int(rng.choice([4, 9]))
            boxes.append([x, y, x + w, y + h])
            scores.append(float(rng.choice([0.3, 0.6, 0.9])))  # ties across images
            labels.append(class_of[category])
            results.append({"image_id": record.image_id, "category_id": category, "bbox": [x, y, w, h],
                            "score": scores[-1]})
        detections.append({"boxes": np.asarray(boxes), "scores": np.asarray(scores), "labels": np.asarray(labels)})
    ours = evaluate_coco(detections, dataset)
    expected = _pycocotools_on_file(path, results)
    assert ours.keys() == expected.keys()
    for name in COCO_STAT_NAMES:
        if expected[name] is None:
            assert ours[name] is None, name
        else:
            assert ours[name] == pytest.approx(expected[name], abs=1e-12), name
    assert expected["ap_small"] is None  # no box under 32x32: pycocotools' -1, kept (not 0)


def test_perfect_detections_score_one_on_a_labelme_export_numbering_annotations_from_zero(testdata, tmp_path,
                                                                                         monkeypatch):
    # labelme2coco.py numbers annotations from 0 and writes `_background_` as category 0; pycocotools
    # run on the file takes the match with annotation 0 (the only cat) for no match: AP 0.5, not 1.
    from kresnet.transfer.detection import inference
    from kresnet.transfer.detection.config import load_detection_recipe
    from kresnet.transfer.detection.runner import evaluate_detector, load_splits
    from tests.conftest import PROJECT_ROOT

    root = tmp_path / "labelme"
    shutil.copytree(testdata / "labelme-coco", root)
    content = json.loads((root / "annotations.json").read_text())
    assert [a["id"] for a in content["annotations"]] == [0, 1, 2, 3] and content["categories"][0]["id"] == 0
    settings = ["data.source=coco", f"data.root={root.as_posix()}", "data.coco_train_json=annotations.json",
                "data.coco_train_images=.", "data.coco_test_json=annotations.json", "data.coco_test_images=."]
    config = load_detection_recipe(PROJECT_ROOT / "recipes" / "transfer" / "demo_detect.toml", settings)
    _, test = load_splits(config)

    def perfect(model, records, *args, **kwargs):  # a detector that finds every object, unclipped as in the file
        by_image = {}
        for a in content["annotations"]:
            x, y, w, h = a["bbox"]
            by_image.setdefault(a["image_id"], []).append(([x, y, x + w, y + h], a["category_id"] - 1))
        return [{"boxes": np.asarray([box for box, _ in by_image[r.image_id]]),
                 "scores": np.full(len(by_image[r.image_id]), 0.9),
                 "labels": np.asarray([label for _, label in by_image[r.image_id]])} for r in records]

    monkeypatch.setattr(inference, "detect_records", perfect)
    metrics = evaluate_detector(None, config, test)
    assert metrics["coco"]["ap"] == pytest.approx(100.0) and metrics["coco"]["ap50"] == pytest.approx(100.0)
    assert metrics["map_voc07"] == pytest.approx(100.0)
    # Messages still name the file's own annotation ids.
    content["annotations"][0]["bbox"] = [70.0, 6.0, 27.0, 35.0]  # starts right of the 64-pixel-wide image
    (root / "annotations.json").write_text(json.dumps(content))
    _, test = load_splits(config)
    assert any("annotation id 0 (image JPEGImages/cat_and_dog.jpg)" in problem for problem in test.problems)


def test_no_detections_score_zero_and_keep_missing_ranges(tmp_path):
    path, _ = _write_coco(tmp_path, np.random.default_rng(1))
    dataset = read_coco(path, tmp_path / "images")
    empty = [{"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, int)}] * len(dataset.records)
    stats = evaluate_coco(empty, dataset)
    assert stats["ap"] == 0.0 and stats["ap_small"] is None


def test_no_ground_truth_in_a_range_is_na_on_the_console():
    from kresnet.transfer.detection.commands import _summary

    line = _summary({"map_voc07": 50.0, "map_area": 51.0, "coco": {"ap": None}})
    assert line.endswith("COCO AP n/a")
    assert _summary({"map_voc07": 50.0, "map_area": 51.0, "coco": {"ap": 12.345}}).endswith("COCO AP 12.35%")
