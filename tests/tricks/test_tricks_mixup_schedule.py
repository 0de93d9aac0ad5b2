"""Mixup off for the final epochs inside one `fit`: the switch lands on the right epoch and batch."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kresnet.data.mixup import apply_mixup
from kresnet.errors import UserError
from kresnet.tricks.mixup_schedule import MixupSchedule


def _one_hot_batches(batch=4):
    """Every batch holds each class once, so a mixed row never has a target of 1."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(batch, 8, 8, 3)).astype("float32")
    return tf.data.Dataset.from_tensors((images, np.eye(batch, dtype="float32"))).repeat()


def _largest_target(y_true, y_pred):
    return keras.ops.max(y_true, axis=-1)


def test_mixup_stops_at_the_off_epoch_within_one_fit():
    epochs, steps = 4, 3
    schedule = MixupSchedule(alpha=1.0, epochs=epochs, steps_per_epoch=steps, off_epochs=1, seed=5)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
    model.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=[_largest_target])
    history = model.fit(schedule.apply(_one_hot_batches()), epochs=epochs, steps_per_epoch=steps, callbacks=[schedule], verbose=0)
    assert history.epoch == [0, 1, 2, 3]
    assert history.history["mixup"] == [1.0, 1.0, 1.0, 0.0]
    largest = history.history["_largest_target"]
    assert all(value < 0.95 for value in largest[:3]), largest
    assert largest[3] == 1.0


def test_batches_after_the_switch_pass_through_unchanged():
    images, labels = next(iter(_one_hot_batches()))
    mixed = [not np.array_equal(y, labels) for _, y in _one_hot_batches().take(8).apply(lambda d: apply_mixup(d, 1.0, 1, mixup_batches=5, first_batch=3)).as_numpy_iterator()]
    # A stream resumed at batch 3 of a run that mixes batches [0, 5): two more mixed batches, then none.
    assert mixed == [True, True, False, False, False, False, False, False]
    for x, y in apply_mixup(_one_hot_batches().take(2), 1.0, 1, mixup_batches=0).as_numpy_iterator():
        np.testing.assert_array_equal(x, images)
        np.testing.assert_array_equal(y, labels)


def test_a_fit_with_other_epochs_is_refused():
    schedule = MixupSchedule(alpha=0.2, epochs=4, steps_per_epoch=3, off_epochs=1)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.raises(UserError, match="epochs=4"):
        model.fit(schedule.apply(_one_hot_batches()), epochs=2, steps_per_epoch=3, callbacks=[schedule], verbose=0)
    with pytest.raises(UserError, match="off_epochs"):
        MixupSchedule(alpha=0.2, epochs=4, steps_per_epoch=3, off_epochs=5)
