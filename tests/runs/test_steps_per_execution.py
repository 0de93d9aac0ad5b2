"""`train.steps_per_execution`: same training as one step per call, resumable, refused where Keras would overrun."""

import csv

import keras
import numpy as np
import pytest

from kresnet.classification.trainer import train
from kresnet.errors import UserError
from kresnet.runs.fit import set_steps_per_execution
from tests.training_helpers import tiny_data, tiny_recipe

TORCH = keras.backend.backend() == "torch"


def _history(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}


def _compiled_model():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.mark.skipif(TORCH, reason="Keras' PyTorch backend runs one step per call: nothing to refuse (tested below)")
def test_steps_per_execution_must_divide_the_epoch_and_the_checkpoint_interval():
    model = _compiled_model()
    with pytest.raises(UserError, match=r"train.steps_per_execution: expected a divisor of the 4 steps per epoch, got 3"):
        set_steps_per_execution(model, 3, steps_per_epoch=4)
    with pytest.raises(UserError, match=r"train.checkpoint_every_steps: expected a multiple of .* \(2\), got 3"):
        set_steps_per_execution(model, 2, steps_per_epoch=4, every_steps=3)
    set_steps_per_execution(model, 2, steps_per_epoch=4, every_steps=2)
    assert model.steps_per_execution == 2


@pytest.mark.skipif(not TORCH, reason="only Keras' PyTorch backend refuses steps_per_execution > 1")
def test_pytorch_runs_one_step_per_call_and_says_so():
    model, lines = _compiled_model(), []
    set_steps_per_execution(model, 3, steps_per_epoch=4, log=lines.append)
    assert model.steps_per_execution == 1
    assert lines == ["train.steps_per_execution=3: Keras' PyTorch backend runs one step per call; using 1"]


class _InterruptMidEpoch(keras.callbacks.Callback):
    """Stops the run after step 2 of epoch 2, just after the step checkpoint there."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch + 1 == 2:
            raise KeyboardInterrupt()


def test_two_steps_per_execution_train_as_one_and_resume_mid_epoch(tmp_path):
    # Mixup switches off at batch 4 (the tiny recipe's last epoch is unmixed) and the run
    # checkpoints every 2 steps: the same history either way. Exactly: every backend runs the
    # same compiled step N times per call (JAX: a Python loop over the jitted step; TensorFlow:
    # a while loop around the same step), only the host round-trips change.
    recipe = dict(train={"checkpoint_every_steps": 2})
    one = train(tiny_recipe(**recipe), tmp_path / "one", data=tiny_data(), verbose=0)
    lines = []
    two = train(tiny_recipe(train={**recipe["train"], "steps_per_execution": 2}), tmp_path / "two", data=tiny_data(),
                verbose=0, log=lines.append)
    assert one["steps"] == two["steps"] == 8
    reference, history = _history(tmp_path / "one" / "history.csv"), _history(tmp_path / "two" / "history.csv")
    assert sorted(reference) == sorted(history) and {"loss", "top1", "val_loss"} <= set(history)
    for key in reference:
        np.testing.assert_allclose(history[key], reference[key], rtol=1e-6, err_msg=key)
    assert any("using 1" in line for line in lines) == TORCH

    config = tiny_recipe(train={**recipe["train"], "steps_per_execution": 2})
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", data=tiny_data(), verbose=0, extra_callbacks=[_InterruptMidEpoch()])
    lines = []
    resumed = train(config, tmp_path / "resumed", data=tiny_data(), verbose=0, log=lines.append)
    assert f"resuming {tmp_path / 'resumed'} at epoch 2, step 2 of 4" in lines
    assert resumed["steps"] == 8 and len(_history(tmp_path / "resumed" / "history.csv")["loss"]) == 2
