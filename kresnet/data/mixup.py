"""Mixup (Zhang et al. 2018) as a batch operation of the tf.data pipeline.

One lambda ~ Beta(alpha, alpha) per batch mixes each example with a partner from
a random permutation of the same batch, images and one-hot labels alike, which is
what the authors' GluonCV script does (it pairs the batch with its reverse).
`keras.layers.MixUp` draws a lambda per example and works on image/label dicts
inside the model graph; running it here keeps the model and the loss unchanged,
and the soft labels work as they are with
`CategoricalCrossentropy(label_smoothing=...)`.
"""

import tensorflow as tf

from kresnet.errors import UserError

NUMPY_HINT = "tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size) (works on every backend)"


def sample_mixup_lambda(alpha, seed):
    """lambda ~ Beta(alpha, alpha) from a stateless seed, via two gamma draws."""
    seed_a, seed_b = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=2))
    a = tf.random.stateless_gamma([], seed_a, alpha)
    b = tf.random.stateless_gamma([], seed_b, alpha)
    return a / (a + b)


def mix_batch(images, labels, seed, alpha):
    """Mix one batch: returns (lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]).

    Args:
        images: float tensor (B, ...).
        labels: float tensor (B, num_classes), one-hot or already soft.
        seed: int tensor [2]. Stateless seed for lambda and the pairing.
        alpha: float. Beta distribution parameter (the paper uses 0.2).
    """
    lam_seed, perm_seed = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=2))
    lam = sample_mixup_lambda(alpha, lam_seed)
    order = tf.argsort(tf.random.stateless_uniform([tf.shape(images)[0]], perm_seed))
    mixed_images = lam * images + (1.0 - lam) * tf.gather(images, order)
    labels = tf.cast(labels, images.dtype)
    mixed_labels = lam * labels + (1.0 - lam) * tf.gather(labels, order)
    return mixed_images, mixed_labels


def run_batch_counter(first_batch):
    """The run's batch index of each element of one pass over a dataset, from `first_batch`.

    `first_batch` is an int, or a `tf.Variable` read when each pass begins: `fit` starts a new
    pass over a dataset that is not repeated at every epoch, and the pass then continues the
    run's count where the variable (set by `MixupSchedule`) says instead of restarting at 0.
    """
    if not isinstance(first_batch, tf.Variable):
        return tf.data.Dataset.counter(start=int(first_batch), dtype=tf.int64)
    start = tf.data.Dataset.range(1).map(lambda _: tf.cast(first_batch.read_value(), tf.int64))
    return start.flat_map(lambda first: tf.data.Dataset.counter(start=first, dtype=tf.int64))


def one_hot_batches(dataset, num_classes=None):
    """`dataset` as batches of (images, float one-hot labels), or a one-line `UserError` saying what to pass.

    Integer class indices are one-hot encoded with `num_classes`, as timm's `Mixup(num_classes=...)`
    does; mixing the indices themselves would train on classes in between.
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise UserError(f"mixup: expects a batched tf.data.Dataset of (images, labels), got {type(dataset).__name__}; "
                        f"for NumPy arrays pass {NUMPY_HINT}")
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(part, tf.TensorSpec) for part in spec)):
        raise UserError(f"mixup: expects dataset elements (images, labels), got {spec}; e.g. {NUMPY_HINT}")
    images, labels = spec
    if labels.dtype.is_integer:
        if labels.shape.rank != 1:
            raise UserError(f"mixup: expects batches of class indices of shape (batch,), got labels of shape "
                            f"{labels.shape}; batch the dataset first, e.g. {NUMPY_HINT}")
        if num_classes is None:
            raise UserError("mixup: labels are class indices (integers); pass num_classes=K to one-hot them "
                            "(mixing indices averages class numbers), or give one-hot labels")
        return dataset.map(lambda x, y: (x, tf.one_hot(y, int(num_classes), dtype=x.dtype)))
    if labels.shape.rank != 2 or images.shape.rank is None or images.shape.rank < 2:
        raise UserError(f"mixup: expects batches of one-hot labels of shape (batch, classes), got labels of shape "
                        f"{labels.shape}; batch the dataset first, e.g. {NUMPY_HINT}")
    return dataset


def apply_mixup(dataset, alpha, seed=None, mixup_batches=None, first_batch=0, num_classes=None):
    """Mixup on a batched dataset of (images, one-hot labels), optionally for its first batches only.

    Batch i of the run (counted from `first_batch`) is mixed when i < `mixup_batches`
    and passed through unchanged after, so "mixup off for the last epochs" happens at an
    exact step whatever tf.data prefetches, on every backend.

    Args:
        dataset: `tf.data.Dataset` yielding (float images (B, ...), labels (B, num_classes)), or
            integer class indices (B,) with `num_classes`. NumPy arrays: wrap them with
            `tf.data.Dataset.from_tensor_slices((images, labels)).batch(B)`.
        alpha: float. Beta(alpha, alpha) parameter; 0 passes the batches through (labels one-hot).
        seed: int or None. Fixes lambdas and pairings when given.
        mixup_batches: int or None. Mix batches [0, mixup_batches) of the whole run; None: all.
        first_batch: int, or a `tf.Variable` read at the start of each pass over `dataset`. Index
            of the pass's first batch in the run (a resumed run starting at optimizer step k passes k).
        num_classes: int or None. Number of classes, to one-hot integer labels (as timm's `Mixup`).
    """
    dataset = one_hot_batches(dataset, num_classes)
    if alpha <= 0:
        return dataset
    counter = run_batch_counter(first_batch)
    if seed is None:
        seeds = tf.data.Dataset.random(rerandomize_each_iteration=True).batch(2)
    else:
        # Batch i of the run mixes by the stateless seed (seed, i): the same lambdas and pairings on every run,
        # also for a stream started at a resumed step.
        seeds = counter.map(lambda index: tf.stack([tf.constant(seed, tf.int64), index]))
    mixed_batches = mixup_batches if mixup_batches is not None else -1

    def mix_or_pass(batch, s, index):
        images, labels = batch
        if mixed_batches < 0:
            return mix_batch(images, labels, s, float(alpha))
        return tf.cond(
            index < mixed_batches,
            lambda: mix_batch(images, labels, s, float(alpha)),
            lambda: (images, tf.cast(labels, images.dtype)),
        )

    mixed = tf.data.Dataset.zip(dataset, seeds, counter).map(mix_or_pass, num_parallel_calls=tf.data.AUTOTUNE)
    if dataset.cardinality() != tf.data.UNKNOWN_CARDINALITY:  # the length fit checks (a variable's counter hides it)
        mixed = mixed.apply(tf.data.experimental.assert_cardinality(dataset.cardinality()))
    return mixed
