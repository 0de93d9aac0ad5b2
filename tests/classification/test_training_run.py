"""The training driver: a tiny run learns, resume continues exactly, NaN stops with the checkpoint kept."""

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from kresnet.errors import UserError
from kresnet.recipe import load_recipe, write_recipe
from kresnet.runs.fit import Segment, plan_segments
from kresnet.runs.checkpoint import RunCheckpoint, StepCheckpoint, TrainingDiverged
from kresnet.classification.config import ClassificationRecipe
from kresnet.runs.history import trim_history
from kresnet.classification.trainer import train
from tests.training_helpers import tiny_data, tiny_recipe


@pytest.fixture(scope="module", autouse=True)
def _reuse_jax_compilations(tmp_path_factory):
    """Identical tiny models recompile in every `train` call; JAX's compilation cache makes repeats cheap."""
    if keras.backend.backend() != "jax":
        yield
        return
    import jax

    before = (jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    yield
    jax.config.update("jax_compilation_cache_dir", before[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])


def _history(run):
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def test_plan_segments():
    assert plan_segments(5, 10) == [Segment(0, 5, 10)]
    assert plan_segments(5, 10, start_epoch=2) == [Segment(2, 5, 10)]
    assert plan_segments(5, 10, start_epoch=2, start_step=4) == [Segment(2, 3, 6, 4), Segment(3, 5, 10)]
    assert plan_segments(5, 10, start_epoch=5) == []


class _FitCalls(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls, self.epochs = [], []

    def on_train_begin(self, logs=None):
        self.calls.append(self.params["epochs"])

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_mixup_off_epochs_run_in_the_same_fit_call(tmp_path):
    """Mixup for the first epochs, none for the last: one `fit`, epochs counted 1..E (no "Epoch 1/1" restart)."""
    config = tiny_recipe(train={"epochs": 3}, tricks={"mixup_alpha": 0.2, "mixup_off_epochs": 1})
    calls = _FitCalls()
    train(config, tmp_path, data=tiny_data(), verbose=0, extra_callbacks=[calls])
    assert calls.calls == [3] and calls.epochs == [0, 1, 2]

def test_two_epoch_run_decreases_loss_and_writes_the_run_folder(tmp_path):
    config = tiny_recipe()
    metrics = train(config, tmp_path, data=tiny_data(), verbose=0)
    rows = _history(tmp_path)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["loss"]) < float(rows[0]["loss"])
    assert {"top1", "top5", "val_top1", "val_loss"} <= set(rows[0])
    assert json.loads((tmp_path / "metrics.json").read_text())["top1"] == pytest.approx(metrics["top1"])
    assert metrics["steps"] == 8
    assert load_recipe(tmp_path / "recipe.toml", ClassificationRecipe) == config
    assert (tmp_path / "model.weights.h5").is_file()
    tags = {value.tag for path in (tmp_path / "logs" / "train").iterdir()
            for event in tf.compat.v1.train.summary_iterator(str(path)) for value in event.summary.value}
    assert {"loss", "val_top1", "learning_rate"} <= tags
    # The same command again: the run is complete, so it says where the metrics are and trains nothing.
    messages = []
    assert train(config, tmp_path, data=tiny_data(poison_after=0), verbose=0, log=messages.append) == metrics
    assert "already complete" in messages[0] and len(_history(tmp_path)) == 2


class _Interrupt(Exception):
    pass


class _InterruptAfter(keras.callbacks.Callback):
    """Stands in for SIGKILL after (epoch, batch): snapshots the optimizer state, then aborts."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch, self.snapshot = (epoch, batch), 0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            self.snapshot = [keras.ops.convert_to_numpy(v).copy() for v in self.model.optimizer.variables]
            raise _Interrupt()


def test_interrupted_run_resumes_at_the_right_step_with_identical_optimizer_state(tmp_path):
    config = tiny_recipe(train={"checkpoint_every_steps": 2})
    interrupt = _InterruptAfter(epoch=1, batch=1)  # after step 2 of epoch 2: a mid-epoch checkpoint exists
    with pytest.raises(_Interrupt):
        train(config, tmp_path, data=tiny_data(), verbose=0, extra_callbacks=[interrupt])
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert (state["epoch"], state["step"], state["iterations"]) == (1, 2, 6)

    from kresnet.classification.build import build_training_model

    model, _ = build_training_model(config, steps_per_epoch=4)
    assert RunCheckpoint(tmp_path / "checkpoints", 4).restore(model) == (1, 2)
    restored = [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]
    assert len(restored) == len(interrupt.snapshot)
    for saved, loaded in zip(interrupt.snapshot, restored):
        np.testing.assert_array_equal(saved, loaded)

    metrics = train(config, tmp_path, data=tiny_data(), verbose=0)
    assert metrics["steps"] == 8  # 2 epochs x 4 steps: nothing lost, nothing repeated
    assert [int(r["epoch"]) for r in _history(tmp_path)] == [1, 2]


def test_history_keeps_only_the_epochs_the_checkpoint_finished(tmp_path):
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss\n1,2.0\n2,1.5\n3,1.2\n")
    trim_history(history, finished_epochs=2)  # killed after epoch 3's row, before its checkpoint
    assert [row["epoch"] for row in _history(tmp_path)] == ["1", "2"]
    trim_history(history, finished_epochs=2)
    assert [(row["epoch"], row["loss"]) for row in _history(tmp_path)] == [("1", "2.0"), ("2", "1.5")]
    trim_history(tmp_path / "missing.csv", finished_epochs=0)  # a fresh run has none


def test_resume_refuses_a_different_recipe(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    write_recipe(tiny_recipe(), tmp_path / "recipe.toml")
    with pytest.raises(UserError, match="started with train.seed = 0, now 5"):
        train(tiny_recipe(train={"seed": 5}), tmp_path, data=tiny_data(), verbose=0)


def test_a_run_recorded_before_a_key_existed_resumes_when_its_values_are_the_same(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    write_recipe(tiny_recipe(), tmp_path / "recipe.toml")
    recorded = (tmp_path / "recipe.toml").read_text()
    # As an older kresnet wrote it: without model.data_format, whose default is what it trained with.
    (tmp_path / "recipe.toml").write_text(recorded.replace('data_format = "channels_last"\n', ""))
    assert "data_format" not in (tmp_path / "recipe.toml").read_text()
    metrics = train(tiny_recipe(), tmp_path, data=tiny_data(), verbose=0)
    assert metrics["steps"] == 8 and (tmp_path / "recipe.toml").read_text() == recorded
    with pytest.raises(UserError, match="started with model.kernel_initializer = 'glorot_uniform', now 'he_normal'"):
        train(tiny_recipe(model={"kernel_initializer": "he_normal"}), tmp_path, data=tiny_data(), verbose=0)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    config = tiny_recipe()
    # NaN from epoch 2, step 2; the loss is checked at checkpoints (here the epoch's end), not every batch.
    # What is named first depends on the backend's kernels: on TensorFlow with the fused BatchNorm, the
    # compiled step's loss on NaN images came out finite (the layer alone does return NaN; some later
    # fusion in TensorFlow's graph drops it) while the gradients made the weights NaN; the weight check
    # at the checkpoint then names the first non-finite weight.
    with pytest.raises(TrainingDiverged, match=r"(loss|weight \S+) became NaN/inf by epoch 2, step 4.*checkpoint \(end of epoch 1\)"):
        train(config, tmp_path, data=tiny_data(poison_after=5), verbose=0)
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert (state["epoch"], state["step"]) == (1, 0)
    model, _ = __import__("kresnet.classification.build", fromlist=["x"]).build_training_model(config, 4)
    RunCheckpoint(tmp_path / "checkpoints", 4).restore(model)
    assert all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.weights)


def test_a_divergence_between_step_checkpoints_names_both_places_as_the_console_counts(tmp_path):
    config = tiny_recipe(train={"checkpoint_every_steps": 1})
    # NaN from the run's step 7 (epoch 2, step 3): the last good checkpoint is epoch 2, step 2.
    with pytest.raises(TrainingDiverged, match=r"by epoch 2, step 3; .*last good checkpoint \(epoch 2, step 2\) kept"):
        train(config, tmp_path, data=tiny_data(poison_after=6), verbose=0)
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert (state["epoch"], state["step"]) == (1, 2)


def test_a_save_without_an_optimizer_update_never_rewrites_the_named_file(tmp_path):
    # Under float16 loss scaling an overflowing batch applies no update, so the optimizer's
    # step counter repeats; rewriting the file state.json names would break kill safety.
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    checkpoint = StepCheckpoint(tmp_path, steps_per_epoch=4, every_steps=1)
    checkpoint.set_model(model)
    checkpoint.on_train_batch_end(0, {"loss": 1.0})
    first = json.loads((tmp_path / "state.json").read_text())
    checkpoint.on_train_batch_end(1, {"loss": 1.0})
    second = json.loads((tmp_path / "state.json").read_text())
    assert first["iterations"] == second["iterations"] == 0
    assert (first["step"], second["step"]) == (1, 2) and first["weights"] != second["weights"]
    # The newest file and the one before it, which state.json names as the previous checkpoint.
    assert second["previous"]["weights"] == first["weights"] and first["previous"] is None
    assert sorted(path.name for path in tmp_path.glob("state-*.weights.h5")) == [first["weights"], second["weights"]]
    checkpoint.on_train_batch_end(2, {"loss": 1.0})
    assert sorted(path.name for path in tmp_path.glob("state-*.weights.h5")) == [second["weights"],
                                                                                json.loads((tmp_path / "state.json").read_text())["weights"]]
