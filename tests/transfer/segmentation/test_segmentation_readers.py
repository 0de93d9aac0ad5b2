"""Segmentation readers on the real samples in tests/fixtures and on small hand-made VOC/folder datasets."""

import shutil

import numpy as np
import pytest
from PIL import Image

from kresnet.errors import UserError
from kresnet.transfer.segmentation import readers


def _save_palette_png(path, values):
    image = Image.fromarray(np.asarray(values, dtype=np.uint8), mode="P")
    image.putpalette([channel for i in range(256) for channel in (i, 255 - i, (7 * i) % 256)])
    image.save(path)


def _save_rgb(path, height, width):
    Image.fromarray(np.full((height, width, 3), 128, np.uint8)).save(path)


def test_ade20k_sample_maps_zero_to_ignore_and_shifts_classes(testdata):
    samples = readers.ade20k_samples(testdata / "ade20k", split="val")
    assert len(samples) == 2 and samples.num_classes == 150
    assert samples.class_names[:4] == ["wall", "building", "sky", "floor"]  # first synonym only
    image, mask = readers.read_sample(samples, 0)
    stored = np.asarray(Image.open(samples.mask_paths[0]))
    assert image.shape == (512, 683, 3) and mask.shape == (512, 683)
    np.testing.assert_array_equal(mask[stored == 0], 255)
    np.testing.assert_array_equal(mask[stored > 0], stored[stored > 0] - 1)
    assert set(np.unique(mask)) == {0, 1, 2, 4, 6, 9, 17, 255}


def test_ade20k_class_tables_txt_preferred_csv_gives_first_token(testdata, tmp_path):
    full = readers.read_ade20k_class_names(testdata / "ade20k")  # has both tables: the .txt wins
    assert len(full) == 150 and full[44] == "chest of drawers" and full[7] == "bed"
    shutil.copy(testdata / "ade20k" / "objectInfo150.csv", tmp_path)
    from_csv = readers.read_ade20k_class_names(tmp_path)
    assert from_csv[:3] == ["wall", "building", "sky"] and from_csv[44] == "chest"
    assert readers.read_ade20k_class_names(tmp_path / "none") == [f"class_{i}" for i in range(150)]


def test_folder_layout_with_split_lists(testdata):
    kwargs = dict(
        class_names=["a", "b", "c", "d"], image_dir="imgs", mask_dir="gts", image_suffix="_img.jpg", mask_suffix="_gt.png"
    )
    train = readers.folder_samples(testdata / "seg-custom", split_file="splits/train.txt", **kwargs)
    val = readers.folder_samples(testdata / "seg-custom", split_file="splits/val.txt", **kwargs)
    everything = readers.folder_samples(testdata / "seg-custom", **kwargs)
    assert len(train) == 4 and len(val) == 1 and len(everything) == 5
    assert val.image_paths[0].endswith("00004_img.jpg") and val.mask_paths[0].endswith("00004_gt.png")
    image, mask = readers.read_sample(train, 0)
    assert image.shape[:2] == mask.shape == (128, 256)
    # Palette PNG: the class id is the palette index, not the colour.
    np.testing.assert_array_equal(mask, np.asarray(Image.open(train.mask_paths[0])))
    assert set(np.unique(mask)) <= {0, 1, 2, 3}


def test_voc_palette_masks_keep_255_as_ignore(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    values = np.zeros((6, 8), np.uint8)
    values[1:4, 2:6], values[0, :] = 15, 255
    _save_rgb(root / "JPEGImages" / "2007_000001.jpg", 6, 8)
    _save_palette_png(root / "SegmentationClass" / "2007_000001.png", values)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000001\n")
    samples = readers.voc_samples(tmp_path / "VOCdevkit", split="val")
    assert samples.num_classes == 21 and samples.class_names[15] == "person"
    _, mask = readers.read_sample(samples, 0)
    np.testing.assert_array_equal(mask, values)


def _one_sample_folder(tmp_path, mask_values, image_size=(6, 8)):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    _save_rgb(tmp_path / "images" / "x.jpg", *image_size)
    _save_palette_png(tmp_path / "masks" / "x.png", mask_values)
    return readers.folder_samples(tmp_path, class_names=["a", "b", "c"])


def test_mask_size_mismatch_names_the_file(tmp_path):
    samples = _one_sample_folder(tmp_path, np.zeros((5, 8)))
    with pytest.raises(UserError, match=r"masks/x\.png.*differs"):
        readers.read_sample(samples, 0)


def test_label_out_of_range_names_the_file(tmp_path):
    values = np.zeros((6, 8))
    values[2, 3] = 7
    samples = _one_sample_folder(tmp_path, values)
    with pytest.raises(UserError, match=r"masks/x\.png: value 7 out of range"):
        readers.read_sample(samples, 0)


def test_ade20k_value_above_150_is_out_of_range(tmp_path):
    path = tmp_path / "bad.png"
    Image.fromarray(np.full((4, 4), 151, np.uint8), mode="L").save(path)
    with pytest.raises(UserError, match=r"bad\.png: value 151"):
        readers.read_mask(path, 150, reduce_zero_label=True)
    assert readers.read_mask(path, 151, reduce_zero_label=True).max() == 150


def test_rgb_mask_and_missing_mask_are_user_errors(tmp_path):
    _save_rgb(tmp_path / "rgb.png", 4, 4)
    with pytest.raises(UserError, match=r"rgb\.png: expected a single-channel"):
        readers.read_mask(tmp_path / "rgb.png", 3)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    _save_rgb(tmp_path / "images" / "y.jpg", 4, 4)
    with pytest.raises(UserError, match=r"masks/y\.png: not found"):
        readers.folder_samples(tmp_path, class_names=["a"])
    with pytest.raises(UserError, match="folder not found"):
        readers.ade20k_samples(tmp_path / "nowhere")
