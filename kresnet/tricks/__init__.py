"""The paper's tricks as Keras building blocks for your own `compile` / `fit`, on any Keras model.

| trick (He et al. 2019)               | name                                   | section |
|--------------------------------------|----------------------------------------|---------|
| linear scaling of the learning rate  | `scaled_learning_rate(lr_per_256, batch)` | 3.1  |
| warmup + cosine decay                | `warmup_cosine(base_lr, total_steps=, warmup_steps=)` | 3.1, 5.1 |
| warmup + step decay                  | `WarmupStepDecay(base_lr, warmup, boundaries)` | 3.1, 2.1 |
| NAG, coupled L2, no bias decay       | `NesterovL2SGD(l2=1e-4, no_bias_decay=True)` | 2.1, 3.1 |
| zero gamma                           | `zero_gamma(model)`                    | 3.1     |
| low precision                        | `precision("auto")`                    | 3.2     |
| label smoothing                      | `label_smoothing_loss(0.1)`            | 5.2     |
| knowledge distillation               | `DistillationModel`, `distillation_loss` | 5.3   |
| mixup, off for the final epochs      | `MixupSchedule` (callback + tf.data), `apply_mixup` | 5.4 |

Each name's docstring states its formula. The learning rate is computed per optimizer step
from the optimizer's own counter, so `fit` needs no learning-rate callback.
"""

from kresnet.lazy_names import lazy_exports

# Where each public name lives. Imported on first use, so that a recipe schema can read
# `kresnet.tricks.low_precision.PRECISIONS` without loading Keras or TensorFlow.
_HOMES = {
    "DistillationModel": "kresnet.tricks.distillation",
    "MixupSchedule": "kresnet.tricks.mixup_schedule",
    "NesterovL2SGD": "kresnet.tricks.optimizer",
    "WarmupStepDecay": "kresnet.tricks.schedules",
    "apply_mixup": "kresnet.data.mixup",
    "distillation_loss": "kresnet.tricks.losses",
    "is_bias_or_norm": "kresnet.tricks.optimizer",
    "label_smoothing_loss": "kresnet.tricks.losses",
    "precision": "kresnet.tricks.low_precision",
    "scaled_learning_rate": "kresnet.tricks.schedules",
    "warmup_cosine": "kresnet.tricks.schedules",
    "zero_gamma": "kresnet.tricks.zero_gamma_init",
}

__all__ = sorted(_HOMES)


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
