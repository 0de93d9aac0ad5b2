"""The segmentation learning-rate schedules: linear warmup, then poly (GluonCV's FCN) or cosine decay."""

import keras
from keras import ops

from kresnet.tricks.schedules import build_schedule


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


def segmentation_schedule(kind, base_lr, steps_per_epoch, epochs, warmup_epochs=0.0, power=0.9):
    """The recipe's schedule, evaluated per optimizer step.

    Args:
        kind: str. "poly" or "cosine" (the latter is kresnet's classification cosine).
        base_lr: float. Peak learning rate.
        steps_per_epoch: int. Optimizer steps per epoch.
        epochs: int. Total epochs.
        warmup_epochs: float. Epochs of linear warmup from 0.
        power: float. Poly exponent.
    """
    if kind == "cosine":
        return build_schedule("cosine", base_lr, steps_per_epoch, epochs, warmup_epochs)
    warmup_steps = int(round(warmup_epochs * steps_per_epoch))
    return WarmupPolyDecay(base_lr, steps_per_epoch * epochs, warmup_steps, power)
