"""One seed for a whole run: Python, NumPy, Keras and TensorFlow's input pipeline."""

import keras


def seed_run(seed):
    """Seed every generator a run draws from, so that the same recipe gives the same run.

    `keras.utils.set_random_seed` seeds TensorFlow only if it is already imported; on the JAX and
    PyTorch backends it may not be yet, and the input pipeline's seeded shuffles would then follow
    TensorFlow's default global seed in the first run of a process and this one in later runs.
    """
    import tensorflow as tf  # noqa: F401  (imported so that set_random_seed seeds it)

    keras.utils.set_random_seed(seed)
