"""NAG with the paper's weight decay: L2 added to the gradient before momentum.

Keras' own `weight_decay` argument is decoupled (`v -= lr * wd * v`, applied
outside momentum, as in AdamW/SGDW). The paper and its code (GluonCV `wd`)
use the classic coupled form, g <- g + wd * v, which then flows through the
Nesterov momentum buffer. `NesterovL2SGD` adds that term to the gradients
before handing them to Keras' SGD, so the update itself stays Keras' own on
every backend (and under `LossScaleOptimizer`, which unscales first).
"""

import keras
from keras import ops


def is_bias_or_norm(variable):
    """True for the variables the "no bias decay" trick exempts: biases and BN gamma/beta.

    Every 1-D trainable variable of a ResNet is one of those; convolution and
    dense kernels have 2 or more dimensions.
    """
    return len(variable.shape) <= 1


@keras.saving.register_keras_serializable(package="kresnet")
class NesterovL2SGD(keras.optimizers.SGD):
    """SGD with (Nesterov) momentum and coupled L2 weight decay, optionally sparing biases and BN.

    Args:
        learning_rate: float or `LearningRateSchedule`.
        momentum: momentum coefficient (0.9 in the paper).
        nesterov: Nesterov accelerated gradient (NAG) when True.
        l2: coefficient of the L2 term added to each decayed variable's gradient (1e-4).
        no_bias_decay: when True, biases and BN gamma/beta get no decay.
        **kwargs: passed to `keras.optimizers.SGD` (name, clipnorm...); `weight_decay`
            (the decoupled kind) is refused to avoid decaying twice.
    """

    def __init__(self, learning_rate=0.1, momentum=0.9, nesterov=True, l2=1e-4, no_bias_decay=False, **kwargs):
        if kwargs.get("weight_decay"):
            raise ValueError("NesterovL2SGD applies L2 decay itself (`l2`); do not pass `weight_decay`.")
        kwargs.pop("weight_decay", None)
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)
        self.l2 = float(l2)
        self.no_bias_decay = bool(no_bias_decay)

    def decays(self, variable):
        """Whether `variable` receives the L2 term."""
        return self.l2 > 0 and not (self.no_bias_decay and is_bias_or_norm(variable))

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is None and not self.built:
            return super().apply(grads)  # Keras raises its own clear error.
        variables = self._trainable_variables if trainable_variables is None else list(trainable_variables)
        # `apply` divides by `loss_scale_factor` when one is set; pre-multiply so the L2 term survives it.
        factor = self.l2 * (self.loss_scale_factor or 1.0)
        grads = [
            g if g is None or not self.decays(v) else ops.add(g, ops.multiply(ops.cast(v, g.dtype), factor))
            for g, v in zip(grads, variables)
        ]
        return super().apply(grads, trainable_variables)

    def get_config(self):
        config = super().get_config()
        config.update({"l2": self.l2, "no_bias_decay": self.no_bias_decay})
        config.pop("weight_decay", None)
        return config


def build_optimizer(optimizer_config, schedule):
    """The recipe's optimizer on top of a learning-rate schedule.

    Args:
        optimizer_config: the recipe's `[optimizer]` table.
        schedule: a `LearningRateSchedule` (already linearly scaled).
    """
    return NesterovL2SGD(
        learning_rate=schedule,
        momentum=optimizer_config.momentum,
        nesterov=optimizer_config.nesterov,
        l2=optimizer_config.weight_decay,
        no_bias_decay=optimizer_config.no_bias_decay,
    )
