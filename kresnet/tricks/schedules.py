"""Learning-rate schedules of the paper, evaluated per optimizer step.

The optimizer calls the schedule with its own step counter, so the rate is
exact after a resume and never depends on how epochs are counted.
"""

import keras
from keras import ops

from kresnet.errors import UserError


def scaled_learning_rate(lr_per_256, batch_size):
    """Linear scaling (paper section 3.1, Goyal et al.): lr = lr_per_256 * batch_size / 256.

    The paper's rate is 0.1 for a batch of 256; pass the *global* batch (all devices).

    Args:
        lr_per_256: learning rate for a global batch of 256 images.
        batch_size: the global batch size.
    """
    return lr_per_256 * batch_size / 256.0


@keras.saving.register_keras_serializable(package="kresnet")
class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Warmup + step decay (paper sections 3.1 and 2.1): per optimizer step t,

        lr_t = base_lr * t / warmup_steps            for t < warmup_steps
        lr_t = base_lr * factor ** k                 after, k = #boundaries <= t

    (the paper's baseline: /10 at epochs 30, 60 and 90, 5 warmup epochs at batch 1024).

    Args:
        base_lr: the rate after warmup.
        warmup_steps: steps of linear warmup (0: none).
        boundaries: steps at which the rate is multiplied by `factor`.
        factor: the multiplier at each boundary (0.1 in the paper).
    """

    def __init__(self, base_lr, warmup_steps, boundaries, factor=0.1):
        self.base_lr = float(base_lr)
        self.warmup_steps = int(warmup_steps)
        self.boundaries = [int(b) for b in boundaries]
        self.factor = float(factor)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        passed = ops.zeros((), "float32")
        for boundary in self.boundaries:
            passed = passed + ops.cast(step >= boundary, "float32")
        decayed = self.base_lr * ops.power(self.factor, passed)
        if self.warmup_steps == 0:
            return decayed
        warm = self.base_lr * step / self.warmup_steps
        return ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "warmup_steps": self.warmup_steps,
            "boundaries": list(self.boundaries),
            "factor": self.factor,
        }


def warmup_cosine(base_lr, *, total_steps, warmup_steps=0):
    """Warmup + cosine decay (paper sections 3.1 and 5.1): per optimizer step t,

        lr_t = base_lr * t / warmup_steps                                  for t < warmup_steps
        lr_t = 0.5 * (1 + cos(pi * (t - warmup_steps) / (total_steps - warmup_steps))) * base_lr

    which is exactly `keras.optimizers.schedules.CosineDecay` with `warmup_target`, so that
    one is returned (it saves and loads as Keras' own).

    The step counts are keyword-only: two ints in a row are too easy to swap.

    Args:
        base_lr: float. The peak rate (after `scaled_learning_rate`).
        total_steps: int. Steps of the whole run, warmup included (epochs x steps per epoch).
        warmup_steps: int. Steps of linear warmup from 0, fewer than `total_steps`.

    Example:
        schedule = warmup_cosine(0.1, total_steps=120 * 5000, warmup_steps=5 * 5000)
    """
    if not 0 <= warmup_steps < total_steps:
        raise UserError(f"warmup_cosine: expected 0 <= warmup_steps < total_steps (total_steps counts the whole run, "
                        f"warmup included), got total_steps={total_steps}, warmup_steps={warmup_steps}")
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(base_lr, decay_steps=total_steps, alpha=0.0)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=total_steps - warmup_steps, alpha=0.0, warmup_target=base_lr, warmup_steps=warmup_steps
    )


# Registered under its first package name, so that models saved before the move still load.
@keras.saving.register_keras_serializable(package="kresnet_transfer")
class WarmupPolyDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `base_lr`, then `base_lr * (1 - t / T) ** power`, t and T counted after warmup.

    Args:
        base_lr: float. Peak learning rate (already linearly scaled).
        total_steps: int. All optimizer steps, warmup included.
        warmup_steps: int. Steps of linear warmup (0: none).
        power: float. Poly exponent (0.9 in GluonCV).
    """

    def __init__(self, base_lr, total_steps, warmup_steps=0, power=0.9):
        self.base_lr = float(base_lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.power = float(power)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        decayed = self.base_lr * ops.power(1.0 - progress, self.power)
        if self.warmup_steps == 0:
            return decayed
        return ops.where(step < self.warmup_steps, self.base_lr * step / self.warmup_steps, decayed)

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "power": self.power,
        }


def build_schedule(kind, base_lr, steps_per_epoch, epochs, warmup_epochs=0.0, step_epochs=(30, 60, 90), step_factor=0.1,
                   power=0.9):
    """The paper's schedules: linear warmup from 0, then step, cosine or poly decay, per step.

    Args:
        kind: "step", "cosine" or "poly" (GluonCV's FCN schedule).
        base_lr: the (already linearly scaled) peak learning rate.
        steps_per_epoch: optimizer steps per epoch.
        epochs: total epochs.
        warmup_epochs: epochs of linear warmup (may be fractional).
        step_epochs: epochs at which step decay divides the rate.
        step_factor: the step decay multiplier.
        power: the poly exponent.
    """
    total_steps = steps_per_epoch * epochs
    warmup_steps = int(round(warmup_epochs * steps_per_epoch))
    if kind == "cosine":
        return warmup_cosine(base_lr, total_steps=total_steps, warmup_steps=warmup_steps)
    if kind == "step":
        boundaries = [e * steps_per_epoch for e in step_epochs]
        return WarmupStepDecay(base_lr, warmup_steps, boundaries, step_factor)
    if kind == "poly":
        return WarmupPolyDecay(base_lr, total_steps, warmup_steps, power)
    raise ValueError(f"unknown schedule kind {kind!r}")
