"""`Conv2D`: Keras' Conv2D that hands channels_last tensors to PyTorch's convolution without copying them.

Keras 3.15's PyTorch `conv`, given a channels_last (NHWC) input, first makes an NCHW-contiguous
copy of it (`permute(...).contiguous()`) and then a second copy back to PyTorch's channels_last
memory format (`contiguous(memory_format=torch.channels_last)`), which is where its oneDNN
kernel wants it; the gradient pays the same two copies backwards. But an NHWC-contiguous tensor
permuted to NCHW already *is* a channels_last tensor, so `F.conv2d` takes the permuted view as
it is, and its output permuted back is NHWC-contiguous again: the same kernel on the same
memory, without the two copies (issue 27; docs/speed.md measures it). Every other backend,
layout and case (a "same" padding that is not symmetric) runs Keras' own `ops.conv`, which
stays the reference in tests/models/test_channels_last_conv.py.

Named `Conv2D`, as Keras' class is, because a `.weights.h5` file keys each layer by its class
name (see `kresnet.models.fused_batch_norm`): files move between the two in both directions.
"""

import contextlib

import keras

_keras_convolutions = False


@keras.saving.register_keras_serializable(package="kresnet")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose PyTorch channels_last convolution runs on views instead of copies.

    Takes exactly the arguments of `keras.layers.Conv2D` and gives the same outputs and gradients.

    Example:
    ```python
    conv = kresnet.models.channels_last_conv.Conv2D(8, 3, padding="same", use_bias=False)
    y = conv(np.ones((2, 16, 16, 4), "float32"))
    ```
    """

    def convolution_op(self, inputs, kernel):
        padding = self._symmetric_torch_padding()
        if padding is None or keras.config.backend() != "torch" or self.data_format != "channels_last":
            return super().convolution_op(inputs, kernel)
        import torch
        import torch.nn.functional as F

        if not isinstance(inputs, torch.Tensor):
            return super().convolution_op(inputs, kernel)
        inputs = keras.ops.convert_to_tensor(inputs)
        kernel = keras.ops.convert_to_tensor(kernel)
        # NHWC memory seen as NCHW is PyTorch's channels_last format; (kh, kw, in, out) seen as
        # (out, in, kh, kw) is the layout F.conv2d takes (oneDNN reorders weights for itself).
        outputs = F.conv2d(
            inputs.permute(0, 3, 1, 2),
            kernel.permute(3, 2, 0, 1),
            stride=tuple(self.strides),
            padding=padding,
            dilation=tuple(self.dilation_rate),
            groups=self.groups,
        )
        return outputs.permute(0, 2, 3, 1)

    def _symmetric_torch_padding(self):
        """F.conv2d's padding equal to Keras' `padding`, or None where Keras would pad unevenly."""
        if self.padding == "valid":
            return (0, 0)
        if self.padding != "same" or any(stride != 1 for stride in self.strides):
            return None
        totals = [dilation * (size - 1) for size, dilation in zip(self.kernel_size, self.dilation_rate)]
        if any(total % 2 for total in totals):
            return None
        return tuple(total // 2 for total in totals)


@contextlib.contextmanager
def keras_convolutions():
    """Models built inside this block use Keras' own Conv2D: the reference `kresnet bench model --vs keras-conv` times."""
    global _keras_convolutions
    before, _keras_convolutions = _keras_convolutions, True
    try:
        yield
    finally:
        _keras_convolutions = before


def conv2d_layer():
    """The Conv2D class models build: this module's, or Keras' inside `keras_convolutions()`."""
    return keras.layers.Conv2D if _keras_convolutions else Conv2D
