"""The training loop copies nothing from the device to the host per batch unless the user asks.

A device-to-host copy (`convert_to_numpy`, `float()` of a device value) on the training thread
waits for the step to finish, so on an accelerator the next step cannot be queued behind it.
A spy counts the copies the training thread makes between two batches of an epoch.
"""

import threading

import keras
import pytest

from kresnet.classification.trainer import train
from tests.training_helpers import tiny_data, tiny_recipe


class _CopiesPerBatch(keras.callbacks.Callback):
    """Records, per batch inside an epoch, the copies the training thread made since the previous batch began."""

    def __init__(self, counter):
        super().__init__()
        self.counter = counter
        self.per_batch = []

    def on_epoch_begin(self, epoch, logs=None):
        self.last = None

    def on_train_batch_begin(self, batch, logs=None):
        if self.last is not None:
            self.per_batch.append(self.counter["main"] - self.last)
        self.last = self.counter["main"]


def _count_copies(monkeypatch):
    from keras.src import backend

    counter = {"main": 0}
    original = backend.convert_to_numpy

    def counting(x):
        if threading.current_thread() is threading.main_thread():
            counter["main"] += 1
        return original(x)

    monkeypatch.setattr(backend, "convert_to_numpy", counting)  # Keras' own log conversion calls this
    monkeypatch.setattr(keras.ops, "convert_to_numpy", counting)
    return counter


@pytest.mark.parametrize("every_steps", [0, 2])
def test_batches_copy_nothing_to_the_host_without_step_checkpoints(tmp_path, monkeypatch, every_steps):
    spy = _CopiesPerBatch(_count_copies(monkeypatch))
    train(tiny_recipe(train={"checkpoint_every_steps": every_steps}), tmp_path, data=tiny_data(), verbose=0,
          extra_callbacks=[spy])
    assert len(spy.per_batch) == 6  # 2 epochs x (4 - 1) batch boundaries
    if every_steps:
        # A batch hook makes Keras run batch callbacks on the training thread: the user asked for
        # step checkpoints, so each batch's logs are copied (and the weights checked at each save).
        assert min(spy.per_batch) >= 1
    elif keras.backend.backend() == "tensorflow":
        # Keras' TensorFlow backend is not thread-safe for callbacks: it converts the batch logs
        # (loss, top1, top5) on the training thread itself, whatever the callbacks;
        # train.steps_per_execution is the remedy there. kresnet adds nothing to them.
        assert max(spy.per_batch) <= 3
    else:
        assert spy.per_batch == [0] * 6
