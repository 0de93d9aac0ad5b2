"""The shared fit routine on the classification task: finite checkpoints, resume line, header, backends."""

import json

import keras
import numpy as np
import pytest

from kresnet.runs.checkpoint import RunCheckpoint, TrainingDiverged
from kresnet.classification.trainer import train
from tests.training_helpers import tiny_data, tiny_recipe


class _PoisonMovingVariance(keras.callbacks.Callback):
    """A BatchNorm moving variance turns infinite in epoch 2; the loss (batch statistics) stays finite."""

    def on_train_batch_end(self, batch, logs=None):
        if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) == 5:
            variance = next(w for w in self.model.weights if "moving_variance" in w.path)
            variance.assign(np.full(variance.shape, np.inf, "float32"))


def test_inf_batchnorm_statistics_are_never_checkpointed(tmp_path):
    config = tiny_recipe()
    with pytest.raises(TrainingDiverged, match=r"weight .*moving_variance became NaN/inf by epoch 2, step 4.*"
                                               r"last good checkpoint \(end of epoch 1\)"):
        train(config, tmp_path, data=tiny_data(), verbose=0, extra_callbacks=[_PoisonMovingVariance()])
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert (state["epoch"], state["step"]) == (1, 0)
    from kresnet.classification.build import build_training_model

    model, _ = build_training_model(config, 4)
    RunCheckpoint(tmp_path / "checkpoints", 4).restore(model)
    assert all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.weights)
    assert not (tmp_path / "finished").exists()


class _StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt()


def test_a_resumed_run_says_so_and_records_every_backend_it_used(tmp_path, recwarn):
    config = tiny_recipe()
    lines = []
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path, data=tiny_data(), verbose=0, extra_callbacks=[_StopAfterFirstEpoch()], log=lines.append)
    assert lines[0].startswith("classification: resnet18d on ") and "2 epochs x 4 steps, global batch 16" in lines[0]
    assert f"backend {keras.backend.backend()}, float32, run folder {tmp_path}" in lines[0]
    # As if the first epoch had run on another backend.
    state_path = tmp_path / "checkpoints" / "state.json"
    state = json.loads(state_path.read_text())
    state_path.write_text(json.dumps({**state, "backends": ["otherbackend"]}))
    lines.clear()
    metrics = train(config, tmp_path, data=tiny_data(), verbose=0, log=lines.append)
    assert f"resuming {tmp_path} at epoch 2, step 0 of 4" in lines
    assert metrics["backends"] == ["otherbackend", keras.backend.backend()]
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert {"task", "backends", "precision", "epochs", "steps", "train_seconds", "paper_row"} <= set(written)
    assert (written["task"], written["epochs"], written["steps"]) == ("classification", 2, 8)
    assert (tmp_path / "finished").is_file()
    assert not [w for w in recwarn if "shuffle=True" in str(w.message)]  # Keras' warning for tf.data streams
