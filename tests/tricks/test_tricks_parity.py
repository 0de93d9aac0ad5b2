"""A run assembled from the public tricks equals `kresnet train` of the same recipe, loss for loss.

kresnet's side is the trainer itself (`kresnet.classification.trainer.train`, as the CLI calls it) on the
same in-memory batches; the public side is a user's `compile` + one `fit` with kresnet's tricks.
"""

import keras
import numpy as np
import tensorflow as tf

import kresnet
from kresnet.classification.config import classification_recipe_from_dict
from kresnet.classification.data import TrainingData
from kresnet.classification.trainer import train

EPOCHS, STEPS, BATCH, OFF_EPOCHS, SEED = 3, 2, 8, 1, 3
RECIPE = {
    "model": {"name": "resnet18d", "num_classes": 3, "zero_gamma": True, "stage_depths": [1, 1, 1, 1], "stage_widths": [4, 4, 8, 8]},
    # XLA off on both sides: compiling a ResNet costs minutes on a small CPU, 6 steps do not.
    "data": {"image_size": 32, "eval_resize": 32},
    "train": {"epochs": EPOCHS, "batch_size": BATCH, "seed": SEED, "jit_compile": "off"},
    "optimizer": {"lr_per_256": 3.2, "weight_decay": 1e-3, "no_bias_decay": True},
    "schedule": {"kind": "cosine", "warmup_epochs": 1.0},
    "tricks": {"label_smoothing": 0.1, "mixup_alpha": 0.2, "mixup_off_epochs": OFF_EPOCHS},
}


def _batches():
    """One pass = one epoch, so a fresh iterator (the trainer's second fit) starts where the first left off."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(STEPS * BATCH, 32, 32, 3)).astype("float32")
    labels = np.eye(3, dtype="float32")[rng.integers(0, 3, STEPS * BATCH)]
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(BATCH).repeat()


class _StepLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def _kresnet_recipe_run(run_dir):
    config = classification_recipe_from_dict(RECIPE)
    record = _StepLosses()
    val = _batches().take(1)
    train(config, run_dir, data=TrainingData(lambda first_step: _batches().skip(first_step), val, STEPS, 1, 3), verbose=0, extra_callbacks=[record],
          log=lambda line: None)
    model = kresnet.create_model(
        "resnet18d", num_classes=3, input_shape=(32, 32, 3), stage_depths=[1, 1, 1, 1], stage_widths=[4, 4, 8, 8]
    )
    model.load_weights(run_dir / "model.weights.h5")
    return record.losses, model


def _public_tricks_run():
    keras.utils.set_random_seed(SEED)
    model = kresnet.create_model(
        "resnet18d", num_classes=3, input_shape=(32, 32, 3), stage_depths=[1, 1, 1, 1], stage_widths=[4, 4, 8, 8]
    )
    kresnet.zero_gamma(model)
    schedule = kresnet.warmup_cosine(kresnet.scaled_learning_rate(3.2, BATCH), total_steps=EPOCHS * STEPS, warmup_steps=STEPS)
    model.compile(
        optimizer=kresnet.NesterovL2SGD(schedule, momentum=0.9, l2=1e-3, no_bias_decay=True),
        loss=kresnet.label_smoothing_loss(0.1),
        jit_compile=False,
    )
    # kresnet train seeds mixup with train.seed + 2000 (its input pipeline uses train.seed itself).
    mixup = kresnet.MixupSchedule(alpha=0.2, epochs=EPOCHS, steps_per_epoch=STEPS, off_epochs=OFF_EPOCHS, seed=SEED + 2000)
    record = _StepLosses()
    model.fit(mixup.apply(_batches()), epochs=EPOCHS, steps_per_epoch=STEPS, callbacks=[mixup, record], verbose=0)
    return record.losses, model


def test_public_tricks_reproduce_the_recipe_run(tmp_path):
    recipe_losses, recipe_model = _kresnet_recipe_run(tmp_path)
    public_losses, public_model = _public_tricks_run()
    assert len(public_losses) == EPOCHS * STEPS
    np.testing.assert_allclose(public_losses, recipe_losses, rtol=1e-4)
    assert len(set(np.round(public_losses, 4))) > 3  # the runs really trained
    for ours, theirs in zip(public_model.weights, recipe_model.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs), rtol=1e-4, atol=1e-5)
