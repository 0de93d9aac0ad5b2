"""Readers: synset order, real ImageNet samples, awkward files, one-line errors, TFRecord round trip."""

import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kresnet.data import pillow_baseline, sources, tfrecords
from kresnet.data.pipeline import build_dataset
from kresnet.errors import UserError

RED = (200, 40, 30)


def _jpeg_bytes(array, mode=None, fmt="JPEG"):
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, quality=95)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def awkward_folder(tmp_path_factory):
    """Class `a`: RGB, greyscale, CMYK, PNG named .JPEG; class `b`: RGB, truncated, random bytes."""
    root = tmp_path_factory.mktemp("awkward")
    (root / "a").mkdir()
    (root / "b").mkdir()
    red = np.zeros((40, 48, 3), np.uint8) + np.array(RED, np.uint8)
    good = _jpeg_bytes(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8))
    (root / "a" / "1_rgb.JPEG").write_bytes(_jpeg_bytes(red))
    (root / "a" / "2_grey.JPEG").write_bytes(_jpeg_bytes(red, "L"))
    (root / "a" / "3_cmyk.JPEG").write_bytes(_jpeg_bytes(red, "CMYK"))
    (root / "a" / "4_png.JPEG").write_bytes(_jpeg_bytes(red, fmt="PNG"))
    (root / "a" / "notes.txt").write_text("not an image, ignored by extension")
    (root / "b" / "1_rgb.JPEG").write_bytes(good)
    (root / "b" / "2_truncated.JPEG").write_bytes(good[: len(good) // 2])
    (root / "b" / "3_garbage.JPEG").write_bytes(np.random.default_rng(1).bytes(3000))
    return root


def test_packaged_synsets_are_the_shared_list_in_sorted_order(testdata):
    shared = (testdata / "imagenet" / "meta" / "imagenet_classes.txt").read_text().split()
    synsets = sources.imagenet_synsets()
    assert synsets == shared and synsets == sorted(synsets) and len(set(synsets)) == 1000


def test_imagenet_samples_get_their_synset_index_and_greyscale_is_rgb(testdata):
    root = testdata / "imagenet" / "samples"
    paths, labels, names = sources.list_image_folder(root)
    synsets = sources.imagenet_synsets()
    assert names == synsets and len(paths) == 10
    for path, label in zip(paths, labels):
        assert synsets[label] in path
    dataset, info = build_dataset(root, training=False, batch_size=10, image_size=32, one_hot=False)
    (images, ids), = list(dataset)
    assert images.shape == (10, 32, 32, 3) and info.num_classes == 1000 and info.num_examples == 10
    assert ids.numpy().tolist() == labels
    grey = images.numpy()[[i for i, p in enumerate(paths) if "_grey" in p][0]]
    raw = grey * np.array((58.393, 57.12, 57.375)) + np.array((123.68, 116.779, 103.939))
    np.testing.assert_allclose(raw[..., 0], raw[..., 1], atol=1e-3)
    np.testing.assert_allclose(raw[..., 1], raw[..., 2], atol=1e-3)
    reference = pillow_baseline.eval_transform(pillow_baseline.load_rgb(paths[0]), 32, 37)
    assert np.mean(np.abs(images.numpy()[0] - reference)) < 0.05


def test_plain_class_folders_are_indexed_in_sorted_order(tmp_path):
    for name in ("zebra", "apple", "Mango"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.jpg").write_bytes(_jpeg_bytes(np.zeros((8, 8, 3), np.uint8)))
    paths, labels, names = sources.list_image_folder(tmp_path)
    assert names == ["Mango", "apple", "zebra"]
    assert [(p.split("/")[-2], l) for p, l in zip(paths, labels)] == [("Mango", 0), ("apple", 1), ("zebra", 2)]


def test_missing_and_empty_folders_are_one_line_errors_naming_the_path(tmp_path):
    for folder, expected in [
        (tmp_path / "nowhere", "not found"),
        (tmp_path, "no class folders"),
    ]:
        with pytest.raises(UserError, match=expected) as caught:
            build_dataset(folder, training=True, batch_size=2)
        assert str(folder) in str(caught.value) and "\n" not in str(caught.value)
    (tmp_path / "cls").mkdir()
    with pytest.raises(UserError, match="no images") as caught:
        build_dataset(tmp_path, training=False, batch_size=2)
    assert str(tmp_path) in str(caught.value)
    with pytest.raises(UserError, match="no TFRecord files"):
        build_dataset(str(tmp_path / "train-*"), training=True, batch_size=2)


@pytest.mark.parametrize("training", [False, True])
def test_awkward_files_decode_or_are_skipped_and_counted(awkward_folder, training):
    dataset, info = build_dataset(awkward_folder, training=training, batch_size=8, image_size=16, one_hot=False, seed=0, drop_remainder=False)
    batches = list(dataset)
    labels = np.concatenate([y.numpy() for _, y in batches])
    assert sorted(labels.tolist()) == [0, 0, 0, 0, 1]
    assert info.skipped.count == 2 and info.num_examples == 7
    if not training:
        images = batches[0][0].numpy()[:4]  # file order: rgb, grey, cmyk, png
        raw = images * np.array((58.393, 57.12, 57.375)) + np.array((123.68, 116.779, 103.939))
        for name, image in zip(["rgb", "cmyk", "png"], raw[[0, 2, 3]]):
            np.testing.assert_allclose(image.mean((0, 1)), RED, atol=4, err_msg=name)
        assert np.ptp(raw[1].mean((0, 1))) < 1e-3  # greyscale stays grey, as RGB


def test_convert_writes_standard_imagenet_shards_and_reads_back(awkward_folder, tmp_path):
    metadata = tfrecords.convert_folder(awkward_folder, tmp_path, images_per_shard=2, workers=2)
    assert metadata["num_classes"] == 2 and metadata["label_offset"] == 1
    assert sum(metadata["shards"].values()) == 5 and len(metadata["shards"]) == 4
    assert [p.rsplit("/", 1)[-1] for p in metadata["skipped"]] == ["2_truncated.JPEG", "3_garbage.JPEG"]
    assert json.loads((tmp_path / "dataset.json").read_text()) == metadata
    first = sorted(tmp_path.glob("train-*"))[0]
    assert first.name == "train-00000-of-00004"
    example = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(str(first)))).numpy())
    feature = example.features.feature
    assert feature["image/class/label"].int64_list.value[0] in (1, 2)
    assert feature["image/format"].bytes_list.value[0] == b"JPEG"
    assert feature["image/encoded"].bytes_list.value[0][:2] == b"\xff\xd8"
    for training in (False, True):
        dataset, info = build_dataset(str(tmp_path / "train-*"), training=training, batch_size=5, image_size=16, one_hot=False, seed=1)
        (images, labels), = list(dataset)
        assert sorted(labels.numpy().tolist()) == [0, 0, 0, 0, 1]
        assert info.num_examples == 5 and info.class_names == ["a", "b"] and info.skipped.count == 0


def test_standard_shards_without_metadata_are_read_as_imagenet(tmp_path):
    path = tmp_path / "validation-00000-of-00001"
    with tf.io.TFRecordWriter(str(path)) as writer:
        encoded = _jpeg_bytes(np.zeros((20, 20, 3), np.uint8))
        writer.write(tfrecords._example(encoded, 20, 20, 999, "n15075141", "x.JPEG"))
    dataset, info = build_dataset(sources.resolve_split(tmp_path, "val"), training=False, batch_size=1, image_size=16)
    (images, labels), = list(dataset)
    assert info.num_classes == 1000 and info.num_examples is None
    assert labels.shape == (1, 1000) and int(np.argmax(labels[0])) == 999
