"""Class-per-folder data: train/ sets the class list for val/ and for TFRecord conversion; mismatches are errors."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from kresnet.data import sources, tfrecords
from kresnet.data.pipeline import build_dataset
from kresnet.errors import UserError


def _image_tree(root, split, classes, per_class=1):
    for name in classes:
        (root / split / name).mkdir(parents=True)
        for number in range(per_class):
            buffer = io.BytesIO()
            Image.fromarray(np.full((8, 8, 3), 30 * number, np.uint8)).save(buffer, "JPEG")
            (root / split / name / f"{number}.jpg").write_bytes(buffer.getvalue())


def test_val_uses_the_training_class_list(tmp_path):
    _image_tree(tmp_path, "train", ["ant", "bee", "cat"])
    _image_tree(tmp_path, "val", ["ant", "bee", "cat"])
    _, labels, names = sources.list_image_folder(tmp_path / "val")
    assert names == ["ant", "bee", "cat"] and labels == [0, 1, 2]
    dataset, info = build_dataset(tmp_path / "val", training=False, batch_size=3, image_size=8, one_hot=False)
    assert info.class_names == ["ant", "bee", "cat"]
    assert sorted(next(iter(dataset))[1].numpy().tolist()) == [0, 1, 2]


def test_a_missing_val_class_is_one_line_naming_it(tmp_path):
    # Before: val/ built its own list, so "cat" became label 1 in val and 2 in train.
    _image_tree(tmp_path, "train", ["ant", "bee", "cat"])
    _image_tree(tmp_path, "val", ["ant", "cat"])
    with pytest.raises(UserError, match=r"class folder .*val/bee is missing") as info:
        build_dataset(tmp_path / "val", training=False, batch_size=2)
    assert "\n" not in str(info.value)


def test_an_extra_val_class_is_one_line_naming_it(tmp_path):
    _image_tree(tmp_path, "train", ["ant", "bee"])
    _image_tree(tmp_path, "val", ["ant", "bee", "dog"])
    with pytest.raises(UserError, match=r"class folder .*val/dog has no counterpart in .*train") as info:
        sources.list_image_folder(tmp_path / "val")
    assert "\n" not in str(info.value)


def test_an_empty_class_folder_is_an_error_not_a_phantom_class(tmp_path):
    _image_tree(tmp_path, "train", ["ant", "cat"])
    (tmp_path / "train" / "bee").mkdir()
    with pytest.raises(UserError, match=r"class folder .*train/bee holds no images"):
        build_dataset(tmp_path / "train", training=True, batch_size=1)
    _image_tree(tmp_path, "val", ["ant", "cat"])
    with pytest.raises(UserError, match=r"train/bee holds no images"):
        tfrecords.convert_folder(tmp_path, tmp_path / "shards", workers=1)


def test_conversion_refuses_val_classes_that_differ(tmp_path):
    _image_tree(tmp_path, "train", ["ant", "bee", "cat"])
    _image_tree(tmp_path, "val", ["ant", "bee", "cat", "dog"])
    with pytest.raises(UserError, match=r"val/dog"):
        tfrecords.convert_folder(tmp_path, tmp_path / "shards", workers=1)


def test_an_imagenet_subset_in_synset_folders_trains_with_its_own_class_count(tmp_path):
    # Imagenette-style: a few ImageNet synset folders. A 1000-class model keeps their ImageNet index
    # (pretrained heads score them); any other count numbers them in sorted order, as other folders.
    from tests.training_helpers import tiny_recipe

    from kresnet.classification.data import build_training_data

    synsets = sources.imagenet_synsets()
    subset = [synsets[0], synsets[217], synsets[482], synsets[999]]
    for split in ("train", "val"):
        _image_tree(tmp_path, split, subset, per_class=4)
    data = build_training_data(tiny_recipe(data={"root": str(tmp_path)}, model={"num_classes": 4}))
    assert data.num_classes == 4
    _, labels, names = sources.list_image_folder(tmp_path / "val", num_classes=4)
    assert names == subset and labels == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    _, labels, names = sources.list_image_folder(tmp_path / "val", num_classes=1000)
    assert names == synsets and labels == [0] * 4 + [217] * 4 + [482] * 4 + [999] * 4
    with pytest.raises(UserError, match=r"num_classes=3 is smaller than the 4 classes of .*train$"):
        build_training_data(tiny_recipe(data={"root": str(tmp_path)}, model={"num_classes": 3}))


def test_tfrecords_converted_from_synset_folders_number_their_classes_like_the_folders(tmp_path, run_cli):
    # Before: `kresnet data convert` wrote all 1000 synsets as the classes and ImageNet's indices as
    # labels, so a 4-class model read labels 217, 482, 999 (out of range: skipped) from 4 folders.
    from tests.training_helpers import tiny_recipe

    from kresnet.classification.data import build_training_data

    synsets = sources.imagenet_synsets()
    subset = [synsets[0], synsets[217], synsets[482], synsets[999]]
    for split in ("train", "val"):
        _image_tree(tmp_path / "folders", split, subset, per_class=4)
    assert run_cli(["data", "convert", tmp_path / "folders", tmp_path / "records", "--workers", "1"]) == 0
    metadata = json.loads((tmp_path / "records" / "dataset.json").read_text())
    assert metadata["class_names"] == subset and metadata["num_classes"] == 4
    data = build_training_data(tiny_recipe(data={"root": str(tmp_path / "records")}, model={"num_classes": 4}))
    assert data.num_classes == 4 and data.class_names == subset
    for num_classes, expected in ((4, [0, 1, 2, 3]), (1000, [0, 217, 482, 999]), (None, [0, 217, 482, 999])):
        dataset, info = build_dataset(tmp_path / "records" / "validation-*", training=False, batch_size=16,
                                      image_size=8, one_hot=False, num_classes=num_classes)
        assert info.num_classes == (num_classes or 1000)
        assert info.class_names == (subset if num_classes == 4 else synsets)
        assert sorted(set(next(iter(dataset))[1].numpy().tolist())) == expected
        assert info.skipped.count == 0
    with pytest.raises(UserError, match=r"^num_classes=3 is smaller than the 4 classes of .*validation-\*$"):
        build_dataset(tmp_path / "records" / "validation-*", training=False, batch_size=16, num_classes=3)
