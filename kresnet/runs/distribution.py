"""Data-parallel training across devices and hosts on Keras' own engines.

- JAX: `keras.distribution.DataParallel` over every device of every process; several
  hosts (one process each) join through `keras.distribution.initialize` (environment
  variables `KERAS_DISTRIBUTION_JOB_ADDRESSES`, `KERAS_DISTRIBUTION_NUM_PROCESSES`,
  `KERAS_DISTRIBUTION_PROCESS_ID`). Each process feeds its own share of every global
  batch (`input_shard`), so Keras' auto-sharding of tf.data is off.
- TensorFlow: `tf.distribute.MirroredStrategy` on one host. Several hosts are refused:
  Keras 3's `fit` does not train under `MultiWorkerMirroredStrategy`.
- PyTorch: Keras has no data-parallel engine for the torch backend; asking for one is an
  error that says so, rather than a silent single-device run.

The recipe's batch size is the global batch: each of N devices sees batch / N, and the
linear scaling rule applies to the global batch.
"""

import contextlib
import dataclasses
import os

from kresnet.errors import UserError

STRATEGIES = ("none", "data_parallel")
MULTI_HOST_VARIABLES = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID")
TENSORFLOW_MULTI_HOST_ERROR = (
    "distribution.multi_host=true is not supported on the tensorflow backend: Keras 3's fit does not train under "
    "MultiWorkerMirroredStrategy (keras-team/keras#20585, tensorflow/tensorflow#72388); use KERAS_BACKEND=jax"
)


@dataclasses.dataclass
class DistributionPlan:
    """What `setup_distribution` set up: how many replicas share the global batch, and the build scope."""

    backend: str
    num_replicas: int
    strategy: object = None  # the tf.distribute strategy on TensorFlow

    @property
    def scope(self):
        """The context to build and compile the model in; a fresh one each time, as a TensorFlow
        strategy's `scope()` can be entered only once."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def check_batch(self, global_batch):
        if global_batch % self.num_replicas:
            raise UserError(
                f"data.batch_size={global_batch} must be divisible by the {self.num_replicas} devices of data-parallel training"
            )


def setup_distribution(strategy="none", multi_host=False, cpu_devices=0):
    """Configure data-parallel training for the current backend; build the model inside `plan.scope`.

    Args:
        strategy: str. `"none"` (one device) or `"data_parallel"`.
        multi_host: bool. join a multi-host job first (JAX only: `keras.distribution.initialize`
            from the `KERAS_DISTRIBUTION_*` variables).
        cpu_devices: int. Split the CPU into this many devices first (`split_cpu`); 0: leave it whole.
    """
    import keras

    backend = keras.config.backend()
    if strategy not in STRATEGIES:
        raise UserError(f"distribution.strategy must be one of {list(STRATEGIES)}; got {strategy!r}")
    if strategy == "none":
        return DistributionPlan(backend, 1)
    if backend in ("jax", "tensorflow"):
        split_cpu(cpu_devices)
    if backend == "jax":
        join_job(multi_host)
        devices = keras.distribution.list_devices()
        # kresnet shards the input itself (`input_shard`): every process already yields its own part of
        # each global batch, and Keras' auto-sharding cannot read the batch size of a padded pipeline.
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False))
        return DistributionPlan("jax", len(devices))
    if backend == "tensorflow":
        join_job(multi_host)
        import tensorflow as tf

        accelerators = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([device.name for device in accelerators])
        return DistributionPlan("tensorflow", strategy.num_replicas_in_sync, strategy)
    raise UserError(
        f"distribution.strategy='data_parallel' is not supported on the {backend} backend "
        "(Keras has no data-parallel engine for it); use KERAS_BACKEND=jax or tensorflow, or strategy='none'"
    )


def split_cpu(count):
    """Make the CPU `count` devices, for data-parallel training on a machine without accelerators
    (`distribution.cpu_devices`: to try the multi-device path; it is not faster). A no-op for 0.

    It must come before the backend starts its devices (JAX's `jax_num_cpu_devices`, TensorFlow's
    logical CPUs); GPUs are unaffected, and data-parallel training uses them where there are some.

    Args:
        count: int. Devices to make of the CPU.
    """
    if not count:
        return
    import keras

    backend = keras.config.backend()
    try:
        if backend == "jax":
            import jax

            jax.config.update("jax_num_cpu_devices", count)
        elif backend == "tensorflow":
            import tensorflow as tf

            cpu = tf.config.list_physical_devices("CPU")[0]
            if len(tf.config.get_logical_device_configuration(cpu) or [None]) != count:
                tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        raise UserError(
            f"distribution.cpu_devices={count}: the {backend} backend had started its devices before the CPU could be "
            "split; start a new process (kresnet train does it first)"
        ) from None


def join_job(multi_host):
    """Join the multi-host job once (JAX), before any JAX computation; a no-op without `multi_host`.

    Args:
        multi_host: bool. `distribution.multi_host` of the recipe.
    """
    if not multi_host:
        return
    import keras

    backend = keras.config.backend()
    if backend == "tensorflow":
        raise UserError(TENSORFLOW_MULTI_HOST_ERROR)
    if backend != "jax":
        raise UserError(f"distribution.multi_host=true is not supported on the {backend} backend; use KERAS_BACKEND=jax")
    import jax

    if jax.distributed.is_initialized():
        return
    missing = [name for name in MULTI_HOST_VARIABLES if name not in os.environ]
    if missing:
        raise UserError(f"distribution.multi_host=true needs the environment variables {', '.join(missing)}")
    from kresnet.data.decoder_messages import restore_stderr
    import tensorflow as tf

    # JAX's distributed runtime may end this process from C++ when the job breaks (process 0 lost, a
    # missed heartbeat): its message must reach the console, not die in the stderr filter's pipe.
    restore_stderr()
    seed = tf.compat.v1.random.get_seed(None)[0]
    keras.distribution.initialize()
    # Without a seed, initialize() seeds TensorFlow's global generator with a random value the processes
    # share; put back what was there (the run's seed, or none), so that the input pipeline's seeded order
    # and augmentation are those of a single-process run with the same recipe (and the same after a restart).
    if tf.compat.v1.random.get_seed(None)[0] != seed:
        tf.random.set_seed(seed)


def input_shard(distribution):
    """(number of input shards, this process's shard): (processes, process index) in a multi-host
    JAX job, (1, 0) otherwise. Splits the CPU and joins the job first when the recipe asks for it.

    Args:
        distribution: the recipe's `[distribution]` table.
    """
    if distribution.strategy == "none":
        return 1, 0
    split_cpu(distribution.cpu_devices)  # before the backend starts: the data is built before the model
    join_job(distribution.multi_host)
    index, count = job_position()
    return count, index


def is_primary_process():
    """True in the one process that writes a run folder: process 0 of a multi-host JAX job, and the
    only process otherwise (TensorFlow multi-worker training is refused, see `join_job`).

    Ask after the job is joined (`setup_distribution`, `input_shard` or `join_job`): before that every
    process is alone and primary. Never starts a JAX backend itself.
    """
    return job_position()[0] == 0


def job_position():
    """(this process's index, the number of processes): of the multi-host JAX job once it is joined,
    (0, 1) otherwise. Never starts a JAX backend itself."""
    if not _jax_job_running():
        return 0, 1
    import jax

    return jax.process_index(), jax.process_count()


def same_on_every_process(values, what):
    """Stop with a one-line error when the processes of a multi-host job disagree on `values`
    (e.g. each resumed from its own, unshared, run folder); a no-op in a single process.

    Args:
        values: tuple of ints.
        what: what the values are, for the message.
    """
    if not _jax_job_running():
        return
    import numpy as np
    from jax.experimental import multihost_utils

    mine = np.asarray(values, np.int64)
    everyone = np.asarray(multihost_utils.process_allgather(mine))
    if not (everyone == mine).all():
        raise UserError(f"the processes of the job disagree on {what}: {everyone.tolist()}")


def _jax_job_running():
    import keras

    if keras.config.backend() != "jax":
        return False
    import jax

    return jax.distributed.is_initialized()
