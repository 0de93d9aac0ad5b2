"""The transfer demos' train.seed varies training only; data.synthetic_seed picks the generated scenes."""

import pathlib

import numpy as np

from kresnet.transfer.detection.config import load_detection_recipe
from kresnet.transfer.detection.runner import load_splits
from kresnet.transfer.segmentation.config import load_segmentation_recipe
from kresnet.transfer.segmentation.datasets import load_samples

RECIPES = pathlib.Path(__file__).resolve().parents[2] / "recipes" / "transfer"
TINY_DETECT = ["data.synthetic_train_images=3", "data.synthetic_test_images=2"]
TINY_SEGMENT = ["data.synthetic_train_images=3", "data.synthetic_val_images=2"]


def _detection_boxes(overrides):
    train, test = load_splits(load_detection_recipe(RECIPES / "demo_detect.toml", [*TINY_DETECT, *overrides]))
    return [record.boxes.tolist() for record in train.records + test.records]


def _segmentation_masks(root, overrides):
    from PIL import Image

    config = load_segmentation_recipe(RECIPES / "demo_segment.toml", [*TINY_SEGMENT, f"data.root={root}", *overrides])
    return [np.asarray(Image.open(path)) for path in load_samples(config.data, "val").mask_paths]


def test_detection_scenes_follow_synthetic_seed_not_train_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("KRESNET_CACHE", str(tmp_path / "cache"))
    scenes = _detection_boxes([])
    assert _detection_boxes(["train.seed=1"]) == scenes
    assert _detection_boxes(["data.synthetic_seed=1"]) != scenes


def test_segmentation_scenes_follow_synthetic_seed(tmp_path):
    masks = _segmentation_masks(tmp_path / "seed0", [])
    assert all(np.array_equal(a, b) for a, b in zip(masks, _segmentation_masks(tmp_path / "seed0-again", ["train.seed=1"])))
    assert not all(np.array_equal(a, b) for a, b in zip(masks, _segmentation_masks(tmp_path / "seed1", ["data.synthetic_seed=1"])))


def test_both_tasks_declare_the_synthetic_keys_once_with_their_own_defaults():
    import dataclasses

    import pytest

    from kresnet.errors import UserError
    from kresnet.transfer.detection.config import Data as DetectionData
    from kresnet.transfer.segmentation.config import Data as SegmentationData
    from kresnet.transfer.synthetic_data import SyntheticScenes

    shared = {field.name for field in dataclasses.fields(SyntheticScenes)}
    assert shared == {"synthetic_classes", "synthetic_image_size", "synthetic_train_images", "synthetic_seed"}
    detection, segmentation = DetectionData(), SegmentationData()
    assert {key: getattr(detection, key) for key in shared} == {
        "synthetic_classes": 4, "synthetic_image_size": 64, "synthetic_train_images": 200, "synthetic_seed": 0}
    assert {key: getattr(segmentation, key) for key in shared} == {
        "synthetic_classes": 4, "synthetic_image_size": 64, "synthetic_train_images": 400, "synthetic_seed": 0}
    assert (detection.synthetic_test_images, detection.synthetic_max_objects, segmentation.synthetic_val_images) == (
        50, 3, 100)
    # The task's own limits stay: detection scenes need 32 px, segmentation ones 16.
    with pytest.raises(UserError, match="synthetic_image_size"):
        load_detection_recipe(RECIPES / "demo_detect.toml", ["data.synthetic_image_size=16"])
    assert load_segmentation_recipe(RECIPES / "demo_segment.toml",
                                    ["data.synthetic_image_size=16"]).data.synthetic_image_size == 16
    # The resolved recipe lists a task's own [data] keys before the shared ones.
    keys = [field.name for field in dataclasses.fields(DetectionData)]
    assert keys.index("max_boxes") < keys.index("synthetic_classes")
