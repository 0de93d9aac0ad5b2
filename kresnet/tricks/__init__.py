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

from kresnet.data.mixup import apply_mixup
from kresnet.tricks.distillation import DistillationModel
from kresnet.tricks.losses import distillation_loss, label_smoothing_loss
from kresnet.tricks.mixup_schedule import MixupSchedule
from kresnet.tricks.optimizer import NesterovL2SGD, is_bias_or_norm
from kresnet.tricks.low_precision import precision
from kresnet.tricks.schedules import WarmupStepDecay, scaled_learning_rate, warmup_cosine
from kresnet.tricks.zero_gamma_init import zero_gamma

__all__ = [
    "DistillationModel",
    "MixupSchedule",
    "NesterovL2SGD",
    "WarmupStepDecay",
    "apply_mixup",
    "distillation_loss",
    "is_bias_or_norm",
    "label_smoothing_loss",
    "precision",
    "scaled_learning_rate",
    "warmup_cosine",
    "zero_gamma",
]
