"""NAG as the paper ran it: coupled L2 decay and PyTorch/MXNet's unscaled momentum buffer.

Two details separate this from `keras.optimizers.SGD(nesterov=True, weight_decay=...)`:
- Keras' `weight_decay` is decoupled (`w -= lr * wd * w`, outside momentum, as in
  AdamW/SGDW). The paper (GluonCV `wd`) adds L2 to the gradient, g <- g + wd * w, so the
  decay flows through the momentum buffer.
- Keras' SGD keeps lr-scaled velocity (m <- mu m - lr_t g). PyTorch's
  `SGD(nesterov=True)` and MXNet 1.3's `NAG`, which the paper's code used, keep the
  buffer unscaled (b <- mu b + g) and multiply by the *current* rate. With a constant
  rate the two agree; under warmup and cosine they do not (with warmup from 0 the first
  batch never enters Keras' velocity at all).
So `NesterovL2SGD` is its own `keras.optimizers.Optimizer`; loss scaling, clipping and
gradient accumulation stay Keras' own (they act before `update_step`).
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
class NesterovL2SGD(keras.optimizers.Optimizer):
    """SGD with Nesterov momentum and coupled L2 decay (paper section 2.1; "no bias decay", section 3.1).

    The update, identical to `torch.optim.SGD(momentum=mu, nesterov=True, weight_decay=l2)`
    and MXNet's `NAG(momentum=mu, wd=l2)`, at step t with rate lr_t:

        g <- g + l2 * w            (only for decayed variables)
        b <- mu * b + g            (b starts at 0)
        w <- w - lr_t * (g + mu * b)      (nesterov=False: w <- w - lr_t * b)

    "No bias decay" (section 3.1) applies l2 to convolution and dense kernels only;
    `no_decay` replaces that rule for models whose variables it does not fit. Keras'
    `optimizer.exclude_from_weight_decay(var_list=..., var_names=...)` exempts more variables
    on top of either rule (call it before the first step, as Keras requires).

    Args:
        learning_rate: float or `LearningRateSchedule`, evaluated at the step counter.
        momentum: float. mu (0.9 in the paper).
        nesterov: bool. Nesterov accelerated gradient (NAG) when True.
        l2: float. coefficient of the L2 term added to each decayed variable's gradient (1e-4).
        no_bias_decay: bool. When True, 1-D variables (biases, BN gamma/beta) get no decay.
        no_decay: optional callable(variable) -> bool, True for variables without decay;
            overrides the rank rule of `no_bias_decay`. Not serialized: pass it again after loading.
        **kwargs: `keras.optimizers.Optimizer` arguments (name, clipnorm, loss_scale_factor...);
            `weight_decay` (the decoupled kind) is refused to avoid decaying twice.

    Example:
        optimizer = NesterovL2SGD(learning_rate=warmup_cosine(0.1, total_steps=1000, warmup_steps=100), l2=1e-4, no_bias_decay=True)
    """

    def __init__(self, learning_rate=0.1, momentum=0.9, nesterov=True, l2=1e-4, no_bias_decay=False, no_decay=None, **kwargs):
        if kwargs.get("weight_decay"):
            raise ValueError("NesterovL2SGD applies L2 decay itself (`l2`); do not pass `weight_decay`.")
        kwargs.pop("weight_decay", None)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"NesterovL2SGD: `momentum` must be in [0, 1]. Received: momentum={momentum}")
        super().__init__(learning_rate=learning_rate, name=kwargs.pop("name", "nesterov_l2_sgd"), **kwargs)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.l2 = float(l2)
        self.no_bias_decay = bool(no_bias_decay)
        self.no_decay = no_decay

    def decays(self, variable):
        """Whether `variable` receives the L2 term."""
        if self.l2 == 0 or self.excluded(variable):
            return False
        if self.no_decay is not None:
            return not self.no_decay(variable)
        return not (self.no_bias_decay and is_bias_or_norm(variable))

    def excluded(self, variable):
        """Whether Keras' `exclude_from_weight_decay(var_list, var_names)` names `variable`.

        Keras matches `var_names` against `variable.name`, which is the whole path on TensorFlow
        ("dense/kernel:0") but only "kernel" on JAX and PyTorch; matching the path as well makes
        `var_names=["dense"]` exempt the same variables on every backend.
        """
        if not self._use_weight_decay(variable):
            return True
        pattern, path = getattr(self, "_exclude_from_weight_decay_pattern", None), getattr(variable, "path", None)
        return pattern is not None and path is not None and pattern.search(path) is not None

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentum_buffers = self.add_optimizer_variables(variables, "momentum_buffer") if self.momentum else []

    def add_variable_from_reference(self, reference_variable, name=None, initializer="zeros"):
        """Keras' slot variable, laid out in memory as its variable is on PyTorch.

        kresnet's convolution kernels keep PyTorch's memory order under Keras' shape
        (`kresnet.models.channels_last_layers`); an elementwise update between a kernel and a
        buffer in Keras' default order is many times slower than between equal layouts.
        """
        variable = super().add_variable_from_reference(reference_variable, name=name, initializer=initializer)
        if keras.config.backend() == "torch":
            import torch

            slot, reference = variable.value, reference_variable.value
            if slot.stride() != reference.stride() and reference.device.type != "meta":
                with torch.no_grad():
                    slot.data = torch.empty_like(reference, dtype=slot.dtype).copy_(slot)
        return variable

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.decays(variable):
            gradient = ops.add(gradient, ops.multiply(variable, ops.cast(self.l2, variable.dtype)))
        if not self.momentum:
            self.assign_sub(variable, ops.multiply(gradient, learning_rate))
            return
        momentum = ops.cast(self.momentum, variable.dtype)
        buffer = self.momentum_buffers[self._get_variable_index(variable)]
        new_buffer = ops.add(ops.multiply(buffer, momentum), gradient)
        self.assign(buffer, new_buffer)
        step = ops.add(gradient, ops.multiply(new_buffer, momentum)) if self.nesterov else new_buffer
        self.assign_sub(variable, ops.multiply(step, learning_rate))

    def get_config(self):
        config = super().get_config()
        config.pop("weight_decay", None)
        config.update({"momentum": self.momentum, "nesterov": self.nesterov, "l2": self.l2, "no_bias_decay": self.no_bias_decay})
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
