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
