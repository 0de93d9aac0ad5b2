"""VOC and COCO readers on real and hand-made samples (tests/fixtures), and their handling of broken files."""

import json
import shutil

import numpy as np
import pytest

from kresnet.errors import UserError
from kresnet.transfer.detection.coco import read_coco
from kresnet.transfer.detection.voc import parse_splits, read_voc
from tests.conftest import PROJECT_ROOT


def test_parse_splits_combines_years():
    assert parse_splits("07+12/trainval") == [("VOC2007", "trainval"), ("VOC2012", "trainval")]
    assert parse_splits(["VOC2007/test"]) == [("VOC2007", "test")]
    assert parse_splits("synthetic/test") == [("synthetic", "test")]
    with pytest.raises(UserError, match="trainval"):
        parse_splits("VOC2007")


def test_voc_07_plus_12_trainval(testdata):
    dataset = read_voc(testdata / "voc" / "VOCdevkit", "07+12/trainval")
    assert dataset.problems == []
    assert [r.image_id for r in dataset.records] == ["VOC2007/000001", "VOC2012/000001"]
    first, second = dataset.records
    assert (first.width, first.height) == (353, 500)
    # xmin/ymin shift by one: continuous coordinates with the devkit's inclusive widths.
    np.testing.assert_allclose(first.boxes, [[47, 239, 195, 371], [7, 11, 352, 498]])
    assert [dataset.class_names[k] for k in first.labels] == ["dog", "person"]
    assert not first.difficult.any()
    # The XML names 000002.jpg; the devkit's rule (id -> JPEGImages/id.jpg) wins.
    assert second.image_path.endswith("VOC2012/JPEGImages/000001.jpg")
    assert dataset.class_names[second.labels[0]] == "train"


def test_voc_float_coordinates_and_empty_difficult(testdata):
    # Hand-made, as annotation tools write it: float corners and width, an empty <difficult/>.
    dataset = read_voc(testdata / "voc-quirks" / "VOCdevkit", "VOC2007/trainval")
    assert dataset.problems == []
    (record,) = dataset.records
    assert (record.width, record.height) == (120, 90)
    np.testing.assert_allclose(record.boxes, [[9.5, 19.25, 60.5, 80.75], [69, 4, 118, 50]])
    assert [dataset.class_names[k] for k in record.labels] == ["cat", "dog"]
    np.testing.assert_array_equal(record.difficult, [False, True])


def _copy_voc(testdata, tmp_path):
    devkit = tmp_path / "VOCdevkit"
    shutil.copytree(testdata / "voc" / "VOCdevkit", devkit)
    for path in devkit.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return devkit


def test_voc_problems_name_the_file_and_the_rest_loads(testdata, tmp_path, capsys):
    devkit = _copy_voc(testdata, tmp_path)
    year = devkit / "VOC2007"
    good = (year / "Annotations" / "000001.xml").read_text()
    shutil.copy(year / "JPEGImages" / "000001.jpg", year / "JPEGImages" / "000002.jpg")
    shutil.copy(year / "JPEGImages" / "000001.jpg", year / "JPEGImages" / "000003.jpg")
    (year / "Annotations" / "000002.xml").write_text(good[:300])  # truncated: malformed XML
    difficult_and_outside = (good.replace("<difficult>0</difficult>", "<difficult>1</difficult>", 1)
                             .replace("<xmax>352</xmax>", "<xmax>900</xmax>"))
    (year / "Annotations" / "000003.xml").write_text(difficult_and_outside)
    (year / "ImageSets" / "Main" / "trainval.txt").write_text("000001\n000002\n000003\n000004\n")
    dataset = read_voc(devkit, "VOC2007/trainval")
    assert [r.image_id for r in dataset.records] == ["VOC2007/000001", "VOC2007/000003"]
    messages = "\n".join(dataset.problems)
    assert "000002.xml: malformed" in messages
    assert "000004.jpg: image missing" in messages
    assert "000003.xml object 1 (person)" in messages and "clipped" in messages
    third = dataset.records[1]
    np.testing.assert_array_equal(third.difficult, [True, False])
    assert third.boxes[1, 2] == 353  # clipped to the width
    dataset.report_problems("train")
    assert capsys.readouterr().out.startswith("warning: 3 problem(s) while reading the train data:\n  ")


def test_a_recipe_s_dataset_problems_are_plain_lines_not_python_warnings(testdata, tmp_path, capsys):
    import warnings

    from kresnet.bundled_recipes import resolve_recipe
    from kresnet.transfer.detection.config import load_detection_recipe
    from kresnet.transfer.detection.runner import load_splits

    devkit = _copy_voc(testdata, tmp_path)
    (devkit / "VOC2007" / "ImageSets" / "Main" / "trainval.txt").write_text("000001\n000004\n")  # 000004: no such image
    config = load_detection_recipe(resolve_recipe("demo_detect", "transfer"), [
        "data.source=voc", f"data.root='{devkit}'", "data.train_splits=['VOC2007/trainval']", "data.test_splits=['VOC2007/trainval']",
    ])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Python warning would print its source file and code line
        load_splits(config)
    missing = devkit / "VOC2007" / "JPEGImages" / "000004.jpg"
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "warning: 1 problem(s) while reading the train data:", f"  {missing}: image missing; skipped",
        "warning: 1 problem(s) while reading the test data:", f"  {missing}: image missing; skipped",
    ]  # fmt: skip


def test_voc_missing_split_is_a_user_error(testdata, tmp_path):
    with pytest.raises(UserError, match="VOC2007/ImageSets/Main/val.txt"):
        read_voc(testdata / "voc" / "VOCdevkit", "VOC2007/val")
    with pytest.raises(UserError, match="does not exist"):
        read_voc(tmp_path / "nowhere")


def test_coco_sample(testdata):
    coco = testdata / "coco"
    dataset = read_coco(coco / "instances.json", coco / "images")
    assert dataset.problems == []
    assert len(dataset.class_names) == 133 and dataset.class_names[0] == "person"
    # Non-contiguous ids map to contiguous indices in id order.
    assert dataset.category_ids[:3] == [1, 2, 3] and dataset.category_ids[-1] == 200
    assert dataset.category_ids == sorted(dataset.category_ids)
    first = dataset.records[0]
    assert first.image_id == 142238 and (first.width, first.height) == (640, 427)
    np.testing.assert_allclose(first.boxes[0], [282, 207, 282 + 48, 207 + 149])
    assert sum(int(r.difficult.sum()) for r in dataset.records) == 3  # the iscrowd=1 entries
    rug = dataset.category_ids.index(200)
    assert dataset.class_names[rug] == "rug-merged"
    assert all(r.labels.max() < 133 for r in dataset.records)


def test_coco_problems(testdata, tmp_path):
    content = json.loads((testdata / "coco" / "instances.json").read_text())
    content["images"].append({"id": 7, "file_name": "absent.jpg", "width": 10, "height": 10})
    content["annotations"][0]["bbox"] = [600, 400, 100, 100]  # spills over the 640x427 image
    content["annotations"][1]["category_id"] = 9999  # unknown category
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(content))
    dataset = read_coco(path, testdata / "coco" / "images")
    assert len(dataset.records) == 2
    messages = "\n".join(dataset.problems)
    assert "absent.jpg: image missing" in messages
    assert "annotation id 0 (image 000000142238.jpg)" in messages and "clipped" in messages
    assert "annotation 1: malformed" in messages
    np.testing.assert_allclose(dataset.records[0].boxes[0], [600, 400, 640, 427])
    path.write_text("{not json")
    with pytest.raises(UserError, match="instances.json: not a COCO detection JSON"):
        read_coco(path, testdata / "coco" / "images")


def test_difficult_and_crowd_objects_are_no_training_targets(testdata):
    from kresnet.transfer.detection.dataset import make_record
    from kresnet.transfer.detection.pipeline import pack_records

    record = make_record("x", "x.jpg", 100, 100, [[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60]], [3, 4, 5],
                         [True, False, False])
    packed = pack_records([record], max_boxes=4)
    np.testing.assert_array_equal(packed["valid"][0], [True, True, False, False])
    np.testing.assert_array_equal(packed["labels"][0, :2], [4, 5])
    np.testing.assert_allclose(packed["boxes"][0, :2], [[20, 20, 40, 40], [50, 50, 60, 60]])
    # The COCO sample's iscrowd regions are left out the same way.
    coco = read_coco(testdata / "coco" / "instances.json", testdata / "coco" / "images")
    packed = pack_records(coco.records, max_boxes=64)
    assert packed["valid"].sum() == sum(len(r.boxes) for r in coco.records) - 3


def test_labelme_coco_export_has_the_object_classes_of_its_voc_export(testdata, tmp_path):
    """labelme2coco.py writes `_background_` as category 0; it is no object class, as in labelme2voc's class_names.txt."""
    from kresnet.transfer.detection.coco_eval import coco_ground_truth
    from kresnet.transfer.detection.voc import dataset_class_names

    root = testdata / "labelme-coco"
    dataset = read_coco(root / "annotations.json", root)  # file_name is "JPEGImages/<name>.jpg"
    assert dataset.problems == []
    assert dataset.class_names == ["cat", "dog"] and dataset.category_ids == [1, 2]
    assert [r.labels.tolist() for r in dataset.records] == [[0, 1], [1, 1]]
    np.testing.assert_allclose(dataset.records[0].boxes, [[4, 6, 31, 41], [34, 10, 61, 45]])
    assert [c["name"] for c in coco_ground_truth(dataset)["categories"]] == ["cat", "dog"]
    # labelme2voc.py writes the same labels.txt, less __ignore__, as class_names.txt.
    labels = (root / "labels.txt").read_text().split()
    (tmp_path / "class_names.txt").write_text("\n".join(name for name in labels if name != "__ignore__"))
    assert dataset_class_names([tmp_path]) == dataset.class_names


def test_coco_classes_come_from_the_recipe_when_it_names_them(testdata):
    root = testdata / "labelme-coco"
    named = read_coco(root / "annotations.json", root, class_names=["dog", "cat"])
    assert named.class_names == ["dog", "cat"] and named.category_ids == [2, 1]
    assert [r.labels.tolist() for r in named.records] == [[1, 0], [0, 0]]
    dogs = read_coco(root / "annotations.json", root, class_names=["dog"])
    assert dogs.class_names == ["dog"] and [r.labels.tolist() for r in dogs.records] == [[0], [0, 0]]
    assert dogs.problems == [f"{root / 'annotations.json'}: 1 object(s) of category 'cat', not one of the 1 classes; "
                             "skipped"]
    truth = dogs.coco_truth  # what COCO AP is scored against: the named classes only
    assert [c["name"] for c in truth["categories"]] == ["dog"] and {a["category_id"] for a in truth["annotations"]} == {2}
    with pytest.raises(UserError, match=r"^data\.class_names: 'cow' is not a category of .*annotations\.json "
                                        r"\(categories: cat, dog\)$"):
        read_coco(root / "annotations.json", root, class_names=["dog", "cow"])


def test_a_coco_recipe_honours_data_class_names(testdata):
    from kresnet.transfer.detection.config import load_detection_recipe
    from kresnet.transfer.detection.runner import load_splits

    demo = PROJECT_ROOT / "recipes" / "transfer" / "demo_detect.toml"
    settings = ["data.source=coco", f"data.root={(testdata / 'labelme-coco').as_posix()}",
                "data.coco_train_json=annotations.json", "data.coco_train_images=.",
                "data.coco_test_json=annotations.json", "data.coco_test_images=."]
    train, test = load_splits(load_detection_recipe(demo, settings))
    assert train.class_names == test.class_names == ["cat", "dog"]
    train, _ = load_splits(load_detection_recipe(demo, settings + ['data.class_names=["dog", "cat"]']))
    assert train.class_names == ["dog", "cat"]
