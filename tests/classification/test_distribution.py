"""Data-parallel training: 2 devices against 1, the per-process input shards, padded validation,
and the backends that refuse it. Two real processes: tests/training/test_multi_host.py."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kresnet.data.pipeline import build_dataset
from kresnet.data.synthetic_dataset import write_classification_dataset
from kresnet.classification.config import Distribution
from kresnet.runs.distribution import input_shard, is_primary_process, setup_distribution

_TRAIN = """
import json, sys
import keras, numpy as np, kresnet
if keras.config.backend() == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from kresnet.runs.distribution import setup_distribution
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
    from kresnet.classification.trainer import train
    from tests.training_helpers import tiny_recipe

    monkeypatch.setattr(keras.config, "backend", lambda: "torch")
    config = tiny_recipe(distribution={"strategy": "data_parallel"})
    with pytest.raises(ValueError, match="not supported on the torch backend"):
        train(config, tmp_path / "run", data=None)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_multi_host_on_tensorflow_names_the_upstream_issues_and_points_to_jax(monkeypatch):
    monkeypatch.setattr(keras.config, "backend", lambda: "tensorflow")
    expected = r"multi_host=true is not supported on the tensorflow backend.*keras-team/keras#20585.*tensorflow/tensorflow#72388.*KERAS_BACKEND=jax"
    with pytest.raises(ValueError, match=expected):
        setup_distribution("data_parallel", multi_host=True)


def test_a_single_process_reads_everything_and_writes_the_run_folder():
    assert input_shard(Distribution(strategy="data_parallel", multi_host=False)) == (1, 0)
    assert input_shard(Distribution()) == (1, 0)
    assert is_primary_process()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    write_classification_dataset(root, num_classes=4, per_class=6, image_size=24, seed=0, val_per_class=5)
    return root


def _arrays(dataset, batches=None):
    return [tuple(np.asarray(t) for t in batch) for batch in (dataset if batches is None else dataset.take(batches))]


def test_process_shards_make_up_the_single_process_batches(images):
    # Global batch k of two processes (process 0's half first, as Keras assembles it) holds the
    # very images, augmented alike, that batch k of one process holds.
    common = dict(training=True, image_size=16, seed=3, repeat=True)
    whole = _arrays(build_dataset(images / "train", batch_size=8, **common)[0], 7)
    halves = [_arrays(build_dataset(images / "train", batch_size=4, shard=(2, i), **common)[0], 7) for i in (0, 1)]
    for k, (x, y) in enumerate(whole):
        np.testing.assert_array_equal(x, np.concatenate([halves[0][k][0], halves[1][k][0]]), err_msg=f"batch {k}")
        np.testing.assert_array_equal(y, np.concatenate([halves[0][k][1], halves[1][k][1]]), err_msg=f"batch {k}")


def test_sharded_training_needs_a_seed(images):
    with pytest.raises(ValueError, match="sharded training needs a seed"):
        build_dataset(images / "train", training=True, batch_size=4, image_size=16, shard=(2, 0))


def test_padded_validation_shards_cover_every_image_once_in_equal_full_batches(images):
    whole, info = build_dataset(images / "val", training=False, batch_size=8, image_size=16)
    expected = sorted(x.tobytes() for batch, _ in _arrays(whole) for x in batch)
    seen, batch_counts = [], []
    for index in (0, 1):
        shard, info = build_dataset(
            images / "val", training=False, batch_size=4, image_size=16, shard=(2, index), pad_last_batch=True
        )
        batches = _arrays(shard)
        batch_counts.append((len(batches), info.num_batches, int(tf.data.experimental.cardinality(shard))))
        for x, y, w in batches:
            assert x.shape[0] == y.shape[0] == w.shape[0] == 4
            assert set(np.unique(w)) <= {0.0, 1.0}
            seen += [image.tobytes() for image, weight in zip(x, w) if weight == 1]
    # 20 images in runs of 4: process 0 gets runs 0, 2, 4 (12 images), process 1 runs 1, 3 and a padded batch.
    assert batch_counts == [(3, 3, 3), (3, 3, 3)]
    assert sorted(seen) == expected


def test_validation_padding_counts_for_nothing(images):
    # Weight-0 rows carry a label the model never predicts: they would lower top-1 if counted.
    from kresnet.classification.build import build_training_model
    from tests.training_helpers import tiny_recipe

    config = tiny_recipe(model={"num_classes": 4}, data={"image_size": 16, "eval_resize": 16})
    model, _ = build_training_model(config, steps_per_epoch=1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 16, 16, 3)).astype("float32")
    predicted = np.argmax(model.predict(x, verbose=0), axis=-1)
    labels = np.eye(4, dtype="float32")[np.where(np.arange(8) < 4, predicted, (predicted + 1) % 4)]
    weights = np.array([1, 1, 1, 1, 0, 0, 0, 0], "float32")
    results = model.evaluate(tf.data.Dataset.from_tensor_slices((x, labels, weights)).batch(8), verbose=0, return_dict=True)
    assert results["top1"] == pytest.approx(1.0)


def test_tfrecord_processes_read_disjoint_training_images_and_validate_every_image_once(images, tmp_path):
    from kresnet.data import tfrecords

    tfrecords.convert_folder(images, tmp_path, images_per_shard=6, workers=1)  # train: 4 files, val: 4 files

    def pixels(pattern, **options):
        """The real images of one pass, as bytes (padding, weight 0, left out)."""
        dataset, _ = build_dataset(str(tmp_path / pattern), image_size=16, **options)
        kept = []
        for x, _, *weights in _arrays(dataset):
            weights = weights[0] if weights else np.ones(len(x))
            kept += [image.tobytes() for image, weight in zip(x, weights) if weight == 1]
        return kept

    whole_val = pixels("validation-*", training=False, batch_size=8)
    halves = [pixels("validation-*", training=False, batch_size=4, shard=(2, i), pad_last_batch=True) for i in (0, 1)]
    assert sorted(halves[0] + halves[1]) == sorted(whole_val) and len(whole_val) == 20
    # Training: each process reads two of the four files, so one pass gives disjoint images.
    train = [pixels("train-*", training=True, batch_size=2, seed=0, drop_remainder=False, shard=(2, i)) for i in (0, 1)]
    assert len(train[0]) + len(train[1]) == 24 and not set(train[0]) & set(train[1])


def test_multi_host_without_data_parallel_is_a_one_line_recipe_error(tmp_path, monkeypatch, capsys, run_cli):
    # As the README starts each host, but without strategy = "data_parallel": every process would
    # otherwise train the whole run alone and race the others for the shared --out.
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "127.0.0.1:1")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "0")
    assert run_cli(["train", "demo", "--set", "distribution.multi_host=true", "--out", tmp_path / "run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith('distribution.multi_host=true needs distribution.strategy="data_parallel", got \'none\'')
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


TINY_DEMO = [
    "data.image_size=32", "data.eval_resize=32", "data.synthetic_image_size=32", "data.synthetic_classes=4",
    "data.synthetic_per_class=8", "data.synthetic_val_per_class=5", "model.num_classes=4", "model.stage_widths=[4,4,8,8]",
    "train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=8", "tricks.mixup_alpha=0", "tricks.mixup_off_epochs=0",
    "schedule.warmup_epochs=0", "schedule.kind=cosine",
]  # fmt: skip


@pytest.mark.slow
def test_cpu_devices_key_gives_data_parallel_replicas_on_a_cpu_from_the_cli(tmp_path):
    # The same command on each backend, in a fresh process (devices are split before the backend starts them).
    backend = keras.config.backend()
    sets = [*TINY_DEMO, "distribution.strategy=data_parallel", "distribution.cpu_devices=2"]
    command = [sys.executable, "-m", "kresnet.cli", "train", "demo", *[a for s in sets for a in ("--set", s)], "--out", str(tmp_path / "run")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KERAS_DISTRIBUTION_", "XLA_FLAGS"))}
    env.update(KERAS_BACKEND=backend, JAX_PLATFORMS="cpu", KRESNET_CACHE=str(tmp_path / "cache"))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if backend == "torch":
        assert done.returncode == 2 and "not supported on the torch backend" in done.stderr.strip().splitlines()[-1]
        return
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "global batch 8 over 2 devices" in done.stdout
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_cpu_devices_without_data_parallel_is_a_one_line_recipe_error():
    from kresnet.classification.config import classification_recipe_from_dict

    with pytest.raises(ValueError, match=r'^recipe: distribution.cpu_devices=2 needs distribution.strategy="data_parallel", got \'none\'$'):
        classification_recipe_from_dict({"distribution": {"cpu_devices": 2}})


def test_cpu_devices_asked_after_the_backend_started_is_one_line():
    from kresnet.runs.distribution import split_cpu

    keras.ops.convert_to_numpy(keras.ops.ones(1))  # the backend has started its devices
    if keras.config.backend() == "torch":
        split_cpu(3)  # nothing to split: Keras has no data-parallel engine for torch (setup_distribution refuses)
        return
    with pytest.raises(ValueError, match=r"^distribution.cpu_devices=3: the \w+ backend had started its devices"):
        split_cpu(3)
