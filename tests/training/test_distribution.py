"""Data-parallel training: 2 devices give the same losses as 1 device at the same global batch."""

import json
import os
import subprocess
import sys

import keras
import pytest

from kresnet.training.distribution import setup_distribution

_TRAIN = """
import json, sys
import keras, numpy as np, kresnet
if keras.config.backend() == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from kresnet.training.distribution import setup_distribution
plan = setup_distribution(sys.argv[1])
plan.check_batch(8)
with plan.scope:
    keras.utils.set_random_seed(0)
    model = kresnet.create_model("resnet18d", num_classes=4, stage_depths=[1, 1, 1, 1], stage_widths=[4, 4, 8, 8], stem_width=4)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
rng = np.random.default_rng(0)
images = rng.random((16, 32, 32, 3), dtype=np.float32)
labels = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 16)]
history = model.fit(images, labels, batch_size=8, epochs=3, shuffle=False, verbose=0)
print(json.dumps({"replicas": plan.num_replicas, "loss": history.history["loss"]}))
"""


def _train(strategy, env):
    done = subprocess.run(
        [sys.executable, "-c", _TRAIN, strategy], env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    keras.config.backend() != "jax",
    reason="drives its own JAX processes (2 forced host devices); under the other backends it would repeat the same JAX run",
)
def test_two_device_jax_run_matches_one_device_run():
    env = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    single = _train("none", env)
    double = _train("data_parallel", env)
    assert (single["replicas"], double["replicas"]) == (1, 2)
    assert double["loss"] == pytest.approx(single["loss"], rel=1e-4, abs=1e-5)
    assert double["loss"][-1] < double["loss"][0]


@pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="drives its own TensorFlow process (2 logical CPUs); under the other backends it would repeat the same run",
)
def test_two_replica_tensorflow_run_trains():
    # tf.distribute keeps BatchNorm statistics per replica (as the paper's per-GPU BN), so the
    # losses are close to, not equal to, the single-device run.
    result = _train("data_parallel", {"KERAS_BACKEND": "tensorflow"})
    assert result["replicas"] == 2
    assert result["loss"][-1] < result["loss"][0]


def test_torch_backend_data_parallel_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(keras.config, "backend", lambda: "torch")
    with pytest.raises(ValueError, match="not supported on the torch backend.*KERAS_BACKEND=jax"):
        setup_distribution("data_parallel")


def test_unknown_strategy_names_the_key():
    with pytest.raises(ValueError, match="distribution.strategy must be one of"):
        setup_distribution("model_parallel")


def test_global_batch_must_split_evenly_over_devices():
    plan = setup_distribution("none")
    plan.check_batch(7)
    plan.num_replicas = 2
    with pytest.raises(ValueError, match="batch_size=7 must be divisible by the 2 devices"):
        plan.check_batch(7)


def test_recipe_asking_data_parallel_on_torch_stops_before_any_work(monkeypatch, tmp_path):
    from kresnet.training.trainer import train
    from tests.training_helpers import tiny_recipe

    monkeypatch.setattr(keras.config, "backend", lambda: "torch")
    config = tiny_recipe(distribution={"strategy": "data_parallel"})
    with pytest.raises(ValueError, match="not supported on the torch backend"):
        train(config, tmp_path / "run", data=None)
    assert not (tmp_path / "run" / "checkpoints").exists()
