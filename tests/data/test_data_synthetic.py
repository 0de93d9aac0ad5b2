"""The synthetic scene generator: determinism, label/box/mask consistency, dataset layout, cache."""

import numpy as np
import pytest
from PIL import Image

from kresnet.data import synthetic_dataset
from kresnet.data.synthetic import MAX_CLASSES, SceneGenerator, class_name
from kresnet.errors import UserError


def test_same_seed_and_index_give_identical_samples():
    a = SceneGenerator(num_classes=12, image_size=48, seed=3)
    b = SceneGenerator(num_classes=12, image_size=48, seed=3)
    for index in (0, 7, 1234):
        sa, sb = a.scene(index, 1, 4), b.scene(index, 1, 4)
        np.testing.assert_array_equal(sa.image, sb.image)
        np.testing.assert_array_equal(sa.mask, sb.mask)
        np.testing.assert_array_equal(sa.boxes, sb.boxes)
        np.testing.assert_array_equal(sa.labels, sb.labels)
        np.testing.assert_array_equal(a.classification_sample(index)[0], b.classification_sample(index)[0])


def test_different_seed_or_index_changes_pixels():
    gen = SceneGenerator(num_classes=12, image_size=48, seed=3)
    other = SceneGenerator(num_classes=12, image_size=48, seed=4)
    assert not np.array_equal(gen.classification_sample(0)[0], gen.classification_sample(12)[0])
    assert not np.array_equal(gen.classification_sample(0)[0], other.classification_sample(0)[0])


def test_scene_types_shapes_and_ranges():
    gen = SceneGenerator(num_classes=5, image_size=(40, 56), seed=0)
    scene = gen.scene(2, min_objects=2, max_objects=3)
    assert scene.image.dtype == np.uint8 and scene.image.shape == (40, 56, 3)
    assert scene.mask.dtype == np.uint8 and scene.mask.shape == (40, 56)
    assert scene.boxes.dtype == np.float32 and scene.boxes.shape == (len(scene.labels), 4)
    assert scene.labels.dtype == np.int32
    assert 2 <= len(scene.labels) <= 3
    assert np.all((scene.labels >= 0) & (scene.labels < 5))
    assert np.all(scene.boxes[:, 0] < scene.boxes[:, 2]) and np.all(scene.boxes[:, 1] < scene.boxes[:, 3])
    assert np.all(scene.boxes >= 0) and np.all(scene.boxes[:, [0, 2]] <= 56) and np.all(scene.boxes[:, [1, 3]] <= 40)


def test_every_mask_pixel_lies_in_a_box_of_its_class_and_last_object_is_exact():
    gen = SceneGenerator(num_classes=7, image_size=48, seed=1)
    for index in range(25):
        scene = gen.scene(index, min_objects=1, max_objects=4)
        assert set(np.unique(scene.mask)) - {0} <= set(scene.labels + 1)
        for value in np.unique(scene.mask)[1:]:
            rows, cols = np.nonzero(scene.mask == value)
            inside = np.zeros(rows.shape, bool)
            for box, label in zip(scene.boxes, scene.labels):
                if label + 1 == value:
                    inside |= (cols >= box[0]) & (cols < box[2]) & (rows >= box[1]) & (rows < box[3])
            assert inside.all(), f"scene {index}: class {value - 1} pixels outside its boxes"
        # Nothing is drawn over the last object, so its box is the tight box of its own pixels.
        last = scene.labels[-1] + 1
        if np.sum(scene.labels + 1 == last) == 1:
            rows, cols = np.nonzero(scene.mask == last)
            np.testing.assert_array_equal(scene.boxes[-1], [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])


def test_classification_labels_cycle_through_classes():
    gen = SceneGenerator(num_classes=4, image_size=32, seed=0)
    labels = [gen.classification_sample(i)[1] for i in range(8)]
    assert labels == [0, 1, 2, 3, 0, 1, 2, 3]


def test_classes_are_not_separable_by_mean_colour():
    # With few classes colour is a nuisance: a nearest-mean-colour classifier stays near chance.
    gen = SceneGenerator(num_classes=8, image_size=32, seed=0)
    samples = [gen.classification_sample(i) for i in range(8 * 24)]
    colours = np.array([image.reshape(-1, 3).mean(0) for image, _ in samples])
    labels = np.array([label for _, label in samples])
    train, test = slice(0, 8 * 16), slice(8 * 16, None)
    means = np.stack([colours[train][labels[train] == k].mean(0) for k in range(8)])
    predicted = np.argmin(((colours[test][:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert np.mean(predicted == labels[test]) < 0.35


def test_class_names_are_unique_and_invalid_sizes_are_user_errors():
    names = [class_name(k, MAX_CLASSES) for k in range(MAX_CLASSES)]
    assert len(set(names)) == MAX_CLASSES
    with pytest.raises(UserError, match="num_classes"):
        SceneGenerator(num_classes=MAX_CLASSES + 1)
    with pytest.raises(UserError, match="image_size"):
        SceneGenerator(num_classes=3, image_size=8)


def test_written_dataset_has_ilsvrc_layout_and_sorted_class_order(tmp_path):
    root = synthetic_dataset.write_classification_dataset(tmp_path / "synth", num_classes=11, per_class=2, image_size=24, seed=5, val_per_class=1)
    train_dirs = sorted(p.name for p in (root / "train").iterdir())
    assert train_dirs == [synthetic_dataset.class_dir_name(k, 11) for k in range(11)]
    assert sorted(p.name for p in (root / "val").iterdir()) == train_dirs
    assert train_dirs[0].startswith("s0000_") and train_dirs[10].startswith("s0010_")
    assert all(len(list((root / "train" / d).glob("*.JPEG"))) == 2 for d in train_dirs)
    assert all(len(list((root / "val" / d).glob("*.JPEG"))) == 1 for d in train_dirs)
    image = Image.open(next((root / "val" / train_dirs[3]).glob("*.JPEG")))
    assert image.format == "JPEG" and image.size == (24, 24) and image.mode == "RGB"


def test_cache_generates_once_and_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("KRESNET_CACHE", str(tmp_path / "cache"))
    calls = []
    first = synthetic_dataset.cached_classification_dataset(num_classes=2, per_class=1, image_size=16, progress=calls.append)
    assert calls == [1, 2, 3, 4]
    assert first.parent == tmp_path / "cache"
    again = synthetic_dataset.cached_classification_dataset(num_classes=2, per_class=1, image_size=16, progress=calls.append)
    assert again == first and calls == [1, 2, 3, 4]
    assert not [p for p in first.parent.iterdir() if ".tmp-" in p.name]
