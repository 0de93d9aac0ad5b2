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


def _finite_batches(batches=5, batch=4, known_length=True):
    """A dataset as users pass it to `fit`: batched, not repeated (each epoch is a fresh pass)."""
    rng = np.random.default_rng(1)
    images = rng.normal(size=(batches * batch, 8, 8, 3)).astype("float32")
    labels = np.tile(np.eye(batch, dtype="float32"), (batches, 1))
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch)
    return dataset if known_length else dataset.filter(lambda x, y: True)


class _LargestTargetPerBatch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.per_epoch = []

    def on_epoch_begin(self, epoch, logs=None):
        self.per_epoch.append([])

    def on_train_batch_end(self, batch, logs=None):
        self.per_epoch[-1].append(float(logs["_largest_target"]))


@pytest.mark.parametrize("fit_steps, known_length", [(None, True), (5, True), (None, False)])
def test_mixup_stops_at_the_off_epoch_on_a_dataset_that_is_not_repeated(fit_steps, known_length):
    """`fit(schedule.apply(ds), epochs=4)` on a finite dataset: Keras starts a new pass each epoch."""
    schedule = MixupSchedule(alpha=1.0, epochs=4, steps_per_epoch=5, off_epochs=1, seed=5)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
    # The metric is the running mean over the epoch's batches: 1.0 at every batch iff no batch is mixed.
    model.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=[_largest_target])
    record = _LargestTargetPerBatch()
    history = model.fit(schedule.apply(_finite_batches(known_length=known_length)), epochs=4, steps_per_epoch=fit_steps,
                        callbacks=[schedule, record], verbose=0)
    assert history.history["mixup"] == [1.0, 1.0, 1.0, 0.0]
    assert [len(steps) for steps in record.per_epoch] == [5, 5, 5, 5]
    assert all(value < 0.95 for value in history.history["_largest_target"][:3]), history.history
    assert record.per_epoch[3] == [1.0] * 5
    # Each epoch is its own stretch of the run: new lambdas, not epoch 1's again.
    assert len({round(value, 6) for value in history.history["_largest_target"][:3]}) == 3


def test_a_finite_dataset_of_another_length_is_refused():
    schedule = MixupSchedule(alpha=0.2, epochs=2, steps_per_epoch=4, off_epochs=1)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.raises(UserError, match="steps_per_epoch=4"):
        model.fit(schedule.apply(_finite_batches(known_length=False)), epochs=2, callbacks=[schedule], verbose=0)
