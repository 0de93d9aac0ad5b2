"""Tiny recipes and in-memory datasets for fast training tests."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kresnet.classification.config import classification_recipe_from_dict
from kresnet.classification.data import TrainingData

NUM_CLASSES = 4
SIZE = 32

# `kresnet ablate` only orchestrates `kresnet train` runs, whose training (the rows' tricks, distillation,
# resuming, reruns in fresh processes) is tested on every backend by tests/classification/test_training_*.py
# and tests/runs/test_exact_resume.py; the ablation table it writes is measured on TensorFlow
# (docs/evidence.md). So the tests that train whole ablations run once, on TensorFlow, which keeps CI's
# three backends within its time.
ablation_runs_on_tensorflow = pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="kresnet ablate orchestrates kresnet train runs, tested on every backend; whole ablations train on "
           "TensorFlow only, the backend of the measured table (tests/training_helpers.py)",
)


def tiny_recipe(**sections):
    """A 4-class ResNet-D with one narrow block per stage on 32 px images; `sections` update tables.

    Tests share these settings so that the compiled train step is the same program
    (JAX then reuses its compilation instead of recompiling per test).
    """
    data = {
        "model": {"name": "resnet18d", "num_classes": NUM_CLASSES, "stage_depths": [1, 1, 1, 1], "stage_widths": [8, 8, 16, 16]},
        "data": {"image_size": SIZE, "eval_resize": SIZE},
        # XLA compilation dominates tiny TensorFlow runs; JAX without jit would run op by op.
        "train": {"epochs": 2, "batch_size": 16, "seed": 0, "jit_compile": "off" if keras.backend.backend() == "tensorflow" else "auto"},
        "optimizer": {"lr_per_256": 0.8, "no_bias_decay": True},
        "schedule": {"kind": "cosine", "warmup_epochs": 0.5},
        "tricks": {"label_smoothing": 0.1, "mixup_alpha": 0.2, "mixup_off_epochs": 1},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return classification_recipe_from_dict(data)


def separable_images(count, seed):
    """Images whose class is the brightest colour channel quadrant: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, count)
    images = rng.normal(0, 0.3, (count, SIZE, SIZE, 3)).astype("float32")
    half = SIZE // 2
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        images[i, row * half : (row + 1) * half, col * half : (col + 1) * half, :] += 2.0
    return images, np.eye(NUM_CLASSES, dtype="float32")[labels]


def tiny_data(steps_per_epoch=4, batch_size=16, poison_after=None):
    """In-memory `TrainingData`; `poison_after` k makes the batches of the run's steps k and later NaN."""
    images, labels = separable_images(steps_per_epoch * batch_size, seed=1)
    val_images, val_labels = separable_images(32, seed=2)
    train = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size, drop_remainder=True).repeat()
    if poison_after is not None:
        bad = tf.data.Dataset.from_tensors((tf.fill([batch_size, SIZE, SIZE, 3], float("nan")), labels[:batch_size]))
        train = train.take(poison_after).concatenate(bad.repeat())
    val = tf.data.Dataset.from_tensor_slices((val_images, val_labels)).batch(16)
    return TrainingData(lambda first_step: train.skip(first_step), val, steps_per_epoch, None, NUM_CLASSES)
