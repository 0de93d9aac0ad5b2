"""VOC-layout exports (labelme, CVAT, Roboflow) with their own classes and split files, detection and segmentation."""

import json

import numpy as np
import pytest
from PIL import Image

from kresnet.bundled_recipes import BUNDLED_RECIPES
from kresnet.errors import UserError
from kresnet.transfer.detection.dataset import VOC_CLASSES
from kresnet.transfer.detection.voc import read_voc
from kresnet.transfer.segmentation.readers import voc_samples

DEMO = BUNDLED_RECIPES / "transfer" / "demo_detect.toml"
OBJECT_XML = "<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>" \
             "<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"


def write_labelme_detection_export(root, images=6):
    """What labelme's object_detection/labelme2voc.py writes: Annotations/, JPEGImages/, class_names.txt."""
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "class_names.txt").write_text("_background_\nbottle_cap\nwasher\n")
    rng = np.random.default_rng(0)
    for number in range(images):
        pixels = rng.integers(0, 60, (64, 64, 3), dtype=np.uint8)
        objects = []
        for index, name in enumerate(("bottle_cap", "washer")):
            x0, y0 = 4 + 30 * index, 8 + 4 * (number % 3)
            pixels[y0:y0 + 20, x0:x0 + 20] = (220, 40 + 150 * index, 40)
            objects.append(OBJECT_XML.format(name=name, x0=x0 + 1, y0=y0 + 1, x1=x0 + 20, y1=y0 + 20))
        Image.fromarray(pixels).save(root / "JPEGImages" / f"img{number}.jpg")
        (root / "Annotations" / f"img{number}.xml").write_text(
            f"<annotation><size><width>64</width><height>64</height><depth>3</depth></size>{''.join(objects)}"
            "</annotation>")
    (root / "my_train.txt").write_text("".join(f"img{n}\n" for n in range(images - 2)))
    (root / "my_test.txt").write_text(f"img{images - 2}\nimg{images - 1}\n")
    return root


def test_detection_classes_come_from_the_export_or_the_recipe(tmp_path):
    root = write_labelme_detection_export(tmp_path / "export")
    dataset = read_voc(root, "my_train.txt")  # any split file name, relative to the folder
    assert dataset.class_names == ["bottle_cap", "washer"]  # `_background_` is not an object class
    assert not dataset.problems and len(dataset) == 4
    assert dataset.records[0].labels.tolist() == [0, 1]
    named = read_voc(root, ["my_test.txt"], ["washer", "bottle_cap"])  # the recipe's order wins
    assert named.class_names == ["washer", "bottle_cap"] and named.records[0].labels.tolist() == [1, 0]
    # A split name looks in ImageSets/Main of an exported folder.
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "val.txt").write_text("img0\n")
    assert len(read_voc(root, "val")) == 1


def test_missing_split_file_is_one_line_naming_it(tmp_path):
    root = write_labelme_detection_export(tmp_path / "export")
    with pytest.raises(UserError, match=r"split file .*export/ImageSets/Main/train\.txt does not exist") as info:
        read_voc(root, "train")
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match=r"nope\.txt does not exist"):
        read_voc(root, "nope.txt")
    (root / "empty.txt").write_text("\n")
    with pytest.raises(UserError, match=r"split file .*export/empty\.txt is empty"):
        read_voc(root, "empty.txt")


def test_a_detection_run_checks_both_splits_before_training(tmp_path):
    from kresnet.transfer.detection.config import load_detection_recipe
    from kresnet.transfer.detection.runner import load_splits

    root = write_labelme_detection_export(tmp_path / "export")
    (root / "my_test.txt").write_text("")
    config = load_detection_recipe(DEMO, ["data.source=voc", f"data.root={root.as_posix()}",
                                          'data.train_splits=["my_train.txt"]', 'data.test_splits=["my_test.txt"]'])
    with pytest.raises(UserError, match=r"my_test\.txt is empty"):
        load_splits(config)


def test_pascal_devkit_keeps_the_twenty_classes(tmp_path):
    year = tmp_path / "VOCdevkit" / "VOC2007"
    write_labelme_detection_export(year)
    (year / "class_names.txt").unlink()
    (year / "ImageSets" / "Main").mkdir(parents=True)
    (year / "ImageSets" / "Main" / "test.txt").write_text("img0\n")
    dataset = read_voc(tmp_path / "VOCdevkit", "VOC2007/test")
    assert dataset.class_names == list(VOC_CLASSES)
    assert len(dataset.problems) == 2  # bottle_cap and washer are not Pascal classes


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def test_a_recipe_that_only_points_at_a_labelme_export_trains_and_evaluates(tmp_path, run_cli, capsys):
    # One unreadable image in each split: skipped, counted, and not scored.
    root = write_labelme_detection_export(tmp_path / "export")
    _truncate(root / "JPEGImages" / "img3.jpg")
    _truncate(root / "JPEGImages" / "img5.jpg")
    (tmp_path / "recipe.toml").write_text(
        DEMO.read_text().replace('source = "synthetic"', f'source = "voc"\nroot = "{root.as_posix()}"\n'
                                 'train_splits = ["my_train.txt"]\ntest_splits = ["my_test.txt"]'))
    tiny = ["train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=2", "eval.batch_size=2",
            "schedule.warmup_epochs=0.5", "model.fpn_channels=16", "model.head_dim=32", "model.roi_batch_size=32",
            "model.rpn_pre_nms_topk_train=100", "model.rpn_pre_nms_topk_test=100",
            "model.rpn_post_nms_topk_train=50", "model.rpn_post_nms_topk_test=50"]
    argv = ["transfer", "detect", tmp_path / "recipe.toml", "--out", tmp_path / "run"]
    for override in tiny:
        argv += ["--set", override]
    assert run_cli(argv) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert sorted(metrics["per_class_ap_voc07"]) == ["bottle_cap", "washer"]
    assert json.loads((tmp_path / "run" / "classes.json").read_text()) == ["bottle_cap", "washer"]
    assert metrics["images"] == 1 and metrics["skipped_images"] == {"eval": 1, "train": 1}
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "skipped unreadable images (corrupt, truncated or not an image): train 1" in out
    assert "skipped unreadable images (corrupt, truncated or not an image): eval 1" in out


def write_labelme_segmentation_export(root, mask_folder="SegmentationClassPNG"):
    """labelme's semantic_segmentation/labelme2voc.py: JPEGImages/, palette PNG masks, class_names.txt."""
    (root / "JPEGImages").mkdir(parents=True)
    (root / mask_folder).mkdir()
    (root / "class_names.txt").write_text("_background_\nroad\ncurb\n")
    for number in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * number, np.uint8)).save(root / "JPEGImages" / f"s{number}.jpg")
        mask = Image.fromarray(np.array([[0, 1, 2, 255] * 4] * 16, np.uint8), mode="P")
        mask.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0, 0, 0] * 253)
        mask.save(root / mask_folder / f"s{number}.png")
    (root / "train_ids.txt").write_text("s0\ns1\n")
    return root


@pytest.mark.parametrize("mask_folder", ["SegmentationClassPNG", "SegmentationClass"])
def test_segmentation_export_classes_and_split_files(tmp_path, mask_folder):
    root = write_labelme_segmentation_export(tmp_path / "seg", mask_folder)
    samples = voc_samples(root, "train_ids.txt")
    assert samples.class_names == ["_background_", "road", "curb"] and len(samples) == 2
    assert voc_samples(root, "train_ids.txt", ["bg", "a", "b", "c"]).num_classes == 4
    with pytest.raises(UserError, match=r"split list .*seg/ImageSets/Segmentation/val\.txt: not found"):
        voc_samples(root, "val")
    (root / "empty.txt").write_text("\n")
    with pytest.raises(UserError, match=r"split list .*seg/empty\.txt: empty"):
        voc_samples(root, "empty.txt")


SEGMENT_RECIPE = """
task = "segmentation"
[model]
backbone = "resnet18"
stage_depths = [1, 1, 1, 1]
stage_widths = [8, 16, 32, 64]
[data]
source = "voc"
root = "{root}"
train_split = "train_ids.txt"
val_split = "val_ids.txt"
[train]
epochs = 1
steps_per_epoch = 1
batch_size = 2
crop_size = 16
base_size = 16
[eval]
size = 16
"""


def test_an_empty_segmentation_eval_split_stops_the_run_before_training(tmp_path):
    from kresnet.transfer.segmentation.config import load_segmentation_recipe
    from kresnet.transfer.segmentation.train import train_segmentation

    root = write_labelme_segmentation_export(tmp_path / "seg")
    (root / "val_ids.txt").write_text("")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(SEGMENT_RECIPE.format(root=root.as_posix()))
    with pytest.raises(UserError, match=r"split list .*seg/val_ids\.txt: empty") as info:
        train_segmentation(load_segmentation_recipe(recipe), tmp_path / "run", log=lambda line: None)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "run" / "model.weights.h5").exists()  # nothing trained


def test_segmentation_counts_unreadable_images_and_scores_the_rest(tmp_path):
    from kresnet.transfer.segmentation.config import load_segmentation_recipe
    from kresnet.transfer.segmentation.train import train_segmentation

    root = write_labelme_segmentation_export(tmp_path / "seg")
    _truncate(root / "JPEGImages" / "s2.jpg")
    (root / "train_ids.txt").write_text("s0\ns1\ns2\n")
    (root / "val_ids.txt").write_text("s0\ns2\n")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(SEGMENT_RECIPE.format(root=root.as_posix()).replace("steps_per_epoch = 1", "steps_per_epoch = 3"))
    lines = []
    metrics = train_segmentation(load_segmentation_recipe(recipe), tmp_path / "run", log=lines.append)
    assert metrics["images"] == 1 and metrics["skipped_images"] == {"eval": 1, "train": 1}
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["skipped_images"] == {"eval": 1, "train": 1}
    assert sum("skipped unreadable images" in line for line in lines) == 2  # one epoch, one evaluation
