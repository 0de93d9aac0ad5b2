"""Mixup convexity and the whole pipeline feeding `model.fit` on the active Keras backend."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kresnet.data import mixup
from kresnet.data.pipeline import build_dataset
from kresnet.data.skips import skipped_images_callback
from kresnet.data.synthetic_dataset import write_classification_dataset
from kresnet.errors import UserError
from kresnet.tricks import MixupSchedule


def test_mixup_rows_are_convex_combinations_with_labels_summing_to_one():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(8, 4, 4, 3)).astype(np.float32)
    labels = np.eye(8, dtype=np.float32)  # distinct classes: a label row names both partners
    dataset = tf.data.Dataset.from_tensors((images, labels)).repeat(30)
    for mixed_images, mixed_labels in mixup.apply_mixup(dataset, alpha=0.2, seed=3):
        mixed_images, mixed_labels = mixed_images.numpy(), mixed_labels.numpy()
        np.testing.assert_allclose(mixed_labels.sum(1), 1.0, atol=1e-6)
        assert mixed_labels.min() >= 0
        for i in range(8):
            weights = mixed_labels[i]
            assert np.count_nonzero(weights > 1e-7) <= 2
            expected = np.tensordot(weights, images, axes=1)
            np.testing.assert_allclose(mixed_images[i], expected, atol=1e-5)
        # One lambda per batch: each row keeps its own image with the same weight (1 when paired with itself).
        own = np.diag(mixed_labels)
        paired = own[~np.isclose(own, 1.0)]
        np.testing.assert_allclose(paired, paired[0] if paired.size else 1.0, atol=1e-6)


def test_mixup_lambda_follows_beta_alpha_alpha():
    seeds = tf.stack([tf.zeros([3000], tf.int64), tf.range(3000, dtype=tf.int64)], axis=1)
    draw = tf.function(lambda s: tf.map_fn(lambda one: mixup.sample_mixup_lambda(0.2, one), s, fn_output_signature=tf.float32))
    lams = draw(seeds).numpy()
    # Beta(0.2, 0.2): mean 1/2, variance 1 / (4 * (2 * 0.2 + 1)) = 0.1786, mass piled near 0 and 1.
    assert abs(lams.mean() - 0.5) < 0.03
    assert abs(lams.var() - 1 / (4 * 1.4)) < 0.015
    assert np.mean((lams < 0.1) | (lams > 0.9)) > 0.5


def test_mixup_soft_labels_work_with_label_smoothing():
    soft = np.array([[0.7, 0.3, 0.0]], np.float32)
    logits = np.array([[2.0, 0.5, -1.0]], np.float32)
    loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    smoothed = soft * 0.9 + 0.1 / 3
    log_probs = logits - np.log(np.exp(logits).sum())
    np.testing.assert_allclose(float(loss(soft, logits)), -(smoothed * log_probs).sum(), rtol=1e-5)



def _integer_label_batches(batch=8, classes=5):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4 * batch, 4, 4, 3)).astype(np.float32)
    labels = rng.integers(0, classes, 4 * batch)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch), images, labels


def test_mixup_one_hots_integer_labels_given_num_classes_as_timm_does():
    """timm's `Mixup(num_classes=...)` takes class indices; averaging the indices themselves is never right."""
    dataset, _, labels = _integer_label_batches()
    mixed = np.concatenate([y for _, y in mixup.apply_mixup(dataset, alpha=0.2, seed=3, num_classes=5).as_numpy_iterator()])
    one_hot = dataset.map(lambda x, y: (x, tf.one_hot(y, 5)))
    expected = np.concatenate([y for _, y in mixup.apply_mixup(one_hot, alpha=0.2, seed=3).as_numpy_iterator()])
    np.testing.assert_array_equal(mixed, expected)
    assert mixed.shape == (32, 5) and not np.array_equal(mixed, np.eye(5, dtype=np.float32)[labels])
    unmixed = np.concatenate([y for _, y in mixup.apply_mixup(dataset, alpha=0.2, seed=3, num_classes=5, mixup_batches=0).as_numpy_iterator()])
    np.testing.assert_array_equal(unmixed, np.eye(5, dtype=np.float32)[labels])


def test_mixup_refuses_integer_labels_without_num_classes_in_one_line():
    dataset, _, _ = _integer_label_batches()
    with pytest.raises(UserError, match=r"^mixup: labels are class indices .*num_classes") as refusal:
        mixup.apply_mixup(dataset, alpha=0.2)
    assert "\n" not in str(refusal.value)
    with pytest.raises(UserError, match=r"num_classes"):
        MixupSchedule(alpha=0.2, epochs=2, steps_per_epoch=4).apply(dataset)


def test_mixup_of_numpy_arrays_says_what_to_pass_on_every_backend():
    _, images, labels = _integer_label_batches()
    one_hot = np.eye(5, dtype=np.float32)[labels]
    for data in [(images, one_hot), images]:
        with pytest.raises(UserError, match=r"tf\.data\.Dataset\.from_tensor_slices\(\(images, labels\)\)\.batch") as refusal:
            MixupSchedule(alpha=0.2, epochs=2, steps_per_epoch=4).apply(data)
        assert "\n" not in str(refusal.value)
    unbatched = tf.data.Dataset.from_tensor_slices((images, one_hot))
    with pytest.raises(UserError, match=r"batch"):
        mixup.apply_mixup(unbatched, alpha=0.2)


@pytest.fixture(scope="module")
def tiny_synthetic(tmp_path_factory):
    root = write_classification_dataset(tmp_path_factory.mktemp("synth") / "ds", num_classes=3, per_class=8, image_size=32, seed=0, val_per_class=2)
    (root / "train" / "s0000_circle_solid" / "broken.JPEG").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_pipeline_feeds_model_fit_and_reports_skipped_images(tiny_synthetic, data_format):
    train, info = build_dataset(tiny_synthetic / "train", training=True, batch_size=8, image_size=24, seed=0, mixup_alpha=0.2, data_format=data_format)
    val, _ = build_dataset(tiny_synthetic / "val", training=False, batch_size=8, image_size=24, data_format=data_format)
    axis = -1 if data_format == "channels_last" else 1
    shape = (24, 24, 3) if data_format == "channels_last" else (3, 24, 24)
    # TensorFlow's CPU kernels have no NCHW convolution, so the channels_first model pools first.
    conv = [keras.layers.Conv2D(4, 3, strides=2), keras.layers.BatchNormalization(axis=axis), keras.layers.ReLU()]
    model = keras.Sequential(
        [keras.Input(shape)]
        + (conv if data_format == "channels_last" else [])
        + [keras.layers.GlobalAveragePooling2D(data_format=data_format), keras.layers.Dense(info.num_classes)]
    )
    model.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1))
    messages = []
    history = model.fit(train, validation_data=val, epochs=2, verbose=0, shuffle=False, callbacks=[skipped_images_callback(info.skipped, messages.append)])
    assert np.all(np.isfinite(history.history["loss"])) and np.isfinite(history.history["val_loss"][-1])
    # 25 files, one broken: 24 images -> 3 full batches per epoch; the broken file counts once.
    assert history.history["skipped_images"] == [1, 1]
    assert messages == ["warning: skipped 1 unreadable image(s) so far (corrupt, truncated or not an image)"]


def test_training_epochs_have_a_known_length_and_reshuffle(tiny_synthetic):
    train, info = build_dataset(tiny_synthetic / "train", training=True, batch_size=8, image_size=16, seed=0, one_hot=False)
    assert int(train.cardinality()) == info.num_examples // 8 == 3
    first, second = ([y.numpy().tolist() for _, y in train] for _ in range(2))
    assert len(first) == len(second) == 3 and first != second
