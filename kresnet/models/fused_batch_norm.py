"""`BatchNormalization`: Keras' BatchNormalization computed by the backend's fused kernel.

Keras' generic layer computes BatchNorm as separate moments and normalise ops; on PyTorch and
TensorFlow that is several passes over the activations forward and more backward, where
`torch.nn.functional.batch_norm` and TensorFlow's `FusedBatchNormV3` make one kernel of each
(issue 27 measured the difference; docs/speed.md has the numbers). This subclass keeps the
generic layer's variables, names, config and semantics and only replaces the arithmetic, so
weights and checkpoints move between the two and `isinstance(layer, keras.layers.BatchNormalization)`
still finds it (zero-gamma, freeze_bn, weight import). The generic layer is its reference in
tests/models/test_fused_batch_norm.py.

The class is named `BatchNormalization`, as Keras' is, on purpose: a `.weights.h5` file keys each
layer by its class name (snake_case, numbered: `batch_normalization_3`), not by the layer's name,
so any other class name would make files saved by one layer unreadable by the other (and every
file saved before this layer existed unreadable by today's models).

Semantics kept from Keras (keras/src/layers/normalization/batch_normalization.py):
- training (and `trainable`): normalise with the batch's mean and BIASED variance, and update
  `moving = moving * momentum + batch * (1 - momentum)` with the biased variance too. Both fused
  kernels report the UNBIASED (Bessel-corrected) variance for running statistics, so the update
  is computed here from it times (n - 1) / n, not left to the kernel.
- otherwise (inference, or a frozen layer in training): normalise with the moving statistics.
- mixed precision: activations in the compute dtype (bfloat16/float16), statistics, scale and
  offset in float32; both kernels accumulate in float32 as the generic layer does after its cast.

JAX keeps the generic layer: XLA fuses its ops already (measured in docs/speed.md). So do inputs
the fused kernels do not cover (not 4-D, a mask, renorm, synchronized, one value per channel).
"""

import math

import keras
from keras import ops

FUSED_BACKENDS = ("torch", "tensorflow")


@keras.saving.register_keras_serializable(package="kresnet")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` on the fused kernel of PyTorch or TensorFlow (4-D inputs).

    Takes exactly the arguments of `keras.layers.BatchNormalization`; `axis` must be the channel
    axis of a 4-D input (`-1`/`3` for channels_last, `1` for channels_first) for the fused path.

    Example:
    ```python
    bn = kresnet.models.fused_batch_norm.BatchNormalization(axis=-1, momentum=0.9, epsilon=1e-5)
    y = bn(np.ones((2, 4, 4, 8), "float32"), training=True)
    ```
    """

    def call(self, inputs, training=None, mask=None):
        if not self._fused_path_applies(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        update_statistics = bool(training and self.trainable)
        if keras.config.backend() == "torch":
            outputs, batch_statistics = _torch_batch_norm(self, inputs, update_statistics)
        else:
            outputs, batch_statistics = _tensorflow_batch_norm(self, inputs, update_statistics)
        if batch_statistics is not None:
            mean, unbiased_variance, count = batch_statistics
            variance = unbiased_variance * ((count - 1) / count)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(outputs, self.compute_dtype)

    def _fused_path_applies(self, inputs, training, mask):
        if keras.config.backend() not in FUSED_BACKENDS or mask is not None or self.renorm or self.synchronized:
            return False
        if keras.backend.standardize_dtype(inputs.dtype) not in ("float32", "float16", "bfloat16"):
            return False
        shape = inputs.shape
        if len(shape) != 4 or self.axis not in (1, 3, -1):
            return False
        # PyTorch refuses one value per channel in training, where Keras gives variance 0. (With a
        # batch size unknown when traced, TensorFlow's kernel gives 0 too.)
        other_sizes = [size for axis, size in enumerate(shape) if axis != self.axis % 4]
        one_value_per_channel = None not in other_sizes and math.prod(other_sizes) == 1
        return not (training and self.trainable and one_value_per_channel)

    def _scale_and_offset(self, channels):
        scale = ops.cast(self.gamma, "float32") if self.scale else ops.ones((channels,), "float32")
        offset = ops.cast(self.beta, "float32") if self.center else ops.zeros((channels,), "float32")
        return scale, offset


def _torch_batch_norm(layer, inputs, update_statistics):
    """(outputs, (batch mean, unbiased batch variance, values per channel) or None) from `F.batch_norm`."""
    import torch
    import torch.nn.functional as F

    channels_last = layer.axis != 1
    # An NHWC tensor permuted to NCHW is a channels_last view, which torch's kernels take without a copy.
    x = inputs.permute(0, 3, 1, 2) if channels_last else inputs
    channels = x.shape[1]
    weight = ops.convert_to_tensor(layer.gamma) if layer.scale else None
    bias = ops.convert_to_tensor(layer.beta) if layer.center else None
    if update_statistics:
        # With momentum 1 the kernel writes the batch mean and unbiased variance into these buffers.
        mean = torch.zeros(channels, dtype=torch.float32, device=x.device)
        unbiased_variance = torch.zeros(channels, dtype=torch.float32, device=x.device)
        y = F.batch_norm(x, mean, unbiased_variance, weight, bias, training=True, momentum=1.0, eps=layer.epsilon)
        statistics = (mean, unbiased_variance, x.numel() // channels)
    else:
        moving_mean = ops.convert_to_tensor(layer.moving_mean)
        moving_variance = ops.convert_to_tensor(layer.moving_variance)
        y = F.batch_norm(x, moving_mean, moving_variance, weight, bias, training=False, eps=layer.epsilon)
        statistics = None
    return (y.permute(0, 2, 3, 1) if channels_last else y), statistics


def _tensorflow_batch_norm(layer, inputs, update_statistics):
    """(outputs, (batch mean, unbiased batch variance, values per channel) or None) from `FusedBatchNormV3`.

    The raw op, not `tf.compat.v1.nn.fused_batch_norm`: that wrapper raises epsilon to 1.001e-5 (an
    old cuDNN minimum), which would change the outputs of PyTorch-trained weights (eps 1e-5).
    """
    import tensorflow as tf

    data_format = "NCHW" if layer.axis == 1 else "NHWC"
    channels = inputs.shape[layer.axis]
    scale, offset = layer._scale_and_offset(channels)
    if update_statistics:
        empty = tf.constant([], tf.float32)
        y, mean, unbiased_variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=scale, offset=offset, mean=empty, variance=empty, epsilon=layer.epsilon,
            exponential_avg_factor=1.0, data_format=data_format, is_training=True,
        )
        count = tf.cast(tf.size(inputs) // channels, tf.float32)
        return y, (mean, unbiased_variance, count)
    y, *_ = tf.raw_ops.FusedBatchNormV3(
        x=inputs, scale=scale, offset=offset, mean=ops.cast(layer.moving_mean, "float32"),
        variance=ops.cast(layer.moving_variance, "float32"), epsilon=layer.epsilon, data_format=data_format,
        is_training=False,
    )
    return y, None


def batch_normalization_layer(fused):
    """The BatchNormalization class models build: the fused one, or Keras' generic one with `fused=False`."""
    return BatchNormalization if fused else keras.layers.BatchNormalization
