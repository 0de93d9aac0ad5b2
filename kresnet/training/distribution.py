"""Data-parallel training across devices and hosts on Keras' own engines.

- JAX: `keras.distribution.DataParallel` over every device of every process; several
  hosts join through `keras.distribution.initialize` (environment variables
  `KERAS_DISTRIBUTION_JOB_ADDRESSES`, `KERAS_DISTRIBUTION_NUM_PROCESSES`,
  `KERAS_DISTRIBUTION_PROCESS_ID`).
- TensorFlow: `tf.distribute.MirroredStrategy` on one host, or
  `MultiWorkerMirroredStrategy` (configured by `TF_CONFIG`) across hosts.
- PyTorch: Keras has no data-parallel engine for the torch backend; asking for one is an
  error that says so, rather than a silent single-device run.

The recipe's batch size is the global batch: each of N devices sees batch / N, and the
linear scaling rule applies to the global batch.
"""

import contextlib
import json
import dataclasses
import os

from kresnet.errors import UserError

STRATEGIES = ("none", "data_parallel")
MULTI_HOST_VARIABLES = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID")


@dataclasses.dataclass
class DistributionPlan:
    """What `setup_distribution` set up: how many replicas share the global batch, and the build scope."""

    backend: str
    num_replicas: int
    scope: contextlib.AbstractContextManager

    def check_batch(self, global_batch):
        if global_batch % self.num_replicas:
            raise UserError(
                f"data.batch_size={global_batch} must be divisible by the {self.num_replicas} devices of data-parallel training"
            )


def setup_distribution(strategy="none", multi_host=False):
    """Configure data-parallel training for the current backend; build the model inside `plan.scope`.

    Args:
        strategy: str. `"none"` (one device) or `"data_parallel"`.
        multi_host: bool. join a multi-host job first (JAX: `keras.distribution.initialize`
            from the `KERAS_DISTRIBUTION_*` variables; TensorFlow: `TF_CONFIG`).
    """
    import keras

    backend = keras.config.backend()
    if strategy not in STRATEGIES:
        raise UserError(f"distribution.strategy must be one of {list(STRATEGIES)}; got {strategy!r}")
    if strategy == "none":
        return DistributionPlan(backend, 1, contextlib.nullcontext())
    if backend == "jax":
        return _jax_data_parallel(multi_host)
    if backend == "tensorflow":
        return _tensorflow_data_parallel(multi_host)
    raise UserError(
        f"distribution.strategy='data_parallel' is not supported on the {backend} backend "
        "(Keras has no data-parallel engine for it); use KERAS_BACKEND=jax or tensorflow, or strategy='none'"
    )


def _jax_data_parallel(multi_host):
    import keras

    if multi_host:
        missing = [name for name in MULTI_HOST_VARIABLES if name not in os.environ]
        if missing:
            raise UserError(f"distribution.multi_host=true needs the environment variables {', '.join(missing)}")
        keras.distribution.initialize()
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return DistributionPlan("jax", len(devices), contextlib.nullcontext())


def _tensorflow_data_parallel(multi_host):
    import tensorflow as tf

    if multi_host:
        if "TF_CONFIG" not in os.environ:
            raise UserError("distribution.multi_host=true on TensorFlow needs the TF_CONFIG environment variable")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        accelerators = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([device.name for device in accelerators])
    return DistributionPlan("tensorflow", strategy.num_replicas_in_sync, strategy.scope())


def is_primary_process():
    """True in the one process of a multi-process job that writes the run folder (and in a single process)."""
    import keras

    if keras.config.backend() == "jax":
        import jax

        return jax.process_index() == 0
    task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
    if keras.config.backend() == "tensorflow" and task:
        # MultiWorkerMirroredStrategy's chief: the `chief` task, or worker 0 when there is none.
        cluster = json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
        chief_type = "chief" if "chief" in cluster else "worker"
        return task.get("type") == chief_type and int(task.get("index", 0)) == 0
    return True
