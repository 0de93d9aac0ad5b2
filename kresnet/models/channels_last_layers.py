"""Keras' Conv2D and pooling layers, handing channels_last tensors to PyTorch without copying them.

Keras 3.15's PyTorch `conv`, given a channels_last (NHWC) input, first makes an NCHW-contiguous
copy of it (`permute(...).contiguous()`) and then a second copy back to PyTorch's channels_last
memory format (`contiguous(memory_format=torch.channels_last)`), which is where its oneDNN
kernel wants it; its max and average pools copy to NCHW too, and the gradients pay the same
copies backwards. But an NHWC-contiguous tensor permuted to NCHW already *is* a channels_last
tensor, which `F.conv2d`, `F.max_pool2d` and `F.avg_pool2d` take as it is, and their outputs
permuted back are NHWC-contiguous again: the same arithmetic on the same values, without the
copies (the convolution runs the very same oneDNN kernel; the pools run PyTorch's channels_last
kernels instead of its NCHW ones, bit-equal to them on the CPU in the tests). The convolution kernel stays a (kh, kw, in, out) variable, as in Keras (weight files
depend on it), but on PyTorch its memory is laid out in the order the convolution reads it,
(out, kh, kw, in) for channels_last and (out, in, kh, kw) for channels_first, so neither the view
`F.conv2d` gets nor its gradient is copied each step either (issue 27; docs/speed.md measures
it). Variables are updated in place (`copy_`, in-place optimizer ops), which keeps that layout;
kresnet's optimizer gives its momentum buffers the same layout (`NesterovL2SGD`), since an
elementwise op between tensors laid out differently is many times slower on PyTorch.
Every other backend, layout and case
(a "same" padding that is not symmetric) runs Keras' own op, which stays the reference in
tests/models/test_channels_last_layers.py.

The classes are named as Keras' are, because a `.weights.h5` file keys each layer by its class
name (see `kresnet.models.fused_batch_norm`): files move between the two in both directions.
"""

import contextlib

import keras

_keras_layers = False


def _torch_channels_last(layer, inputs):
    if keras.config.backend() != "torch" or layer.data_format != "channels_last":
        return False
    import torch

    return isinstance(inputs, torch.Tensor)


def _same_padding(sizes, kernel_sizes, strides, dilations):
    """PyTorch's symmetric padding equal to Keras' "same" padding, or None where Keras pads unevenly."""
    padding = []
    for size, kernel, stride, dilation in zip(sizes, kernel_sizes, strides, dilations):
        reach = dilation * (kernel - 1) + 1
        # Keras' "same": the output has ceil(size / stride) positions; any odd pixel goes at the end.
        total = max(0, (-(-size // stride) - 1) * stride + reach - size)
        if total % 2:
            return None
        padding.append(total // 2)
    return tuple(padding)


@keras.saving.register_keras_serializable(package="kresnet")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose PyTorch channels_last convolution runs on views instead of copies.

    Takes exactly the arguments of `keras.layers.Conv2D` and gives the same outputs and gradients.

    Example:
    ```python
    conv = kresnet.models.channels_last_layers.Conv2D(8, 3, padding="same", use_bias=False)
    y = conv(np.ones((2, 16, 16, 4), "float32"))
    ```
    """

    def build(self, input_shape):
        super().build(input_shape)
        if keras.config.backend() == "torch":
            self._lay_out_kernel_as_torch_reads_it()

    def _lay_out_kernel_as_torch_reads_it(self):
        """Reorder the kernel's memory (not its shape or values) to PyTorch's convolution order."""
        import torch

        # `_kernel` is the variable itself (`kernel` is a computed tensor when LoRA is enabled).
        parameter = getattr(getattr(self, "_kernel", None), "value", None)
        if not isinstance(parameter, torch.nn.Parameter) or parameter.device.type == "meta":
            return
        # Memory order, outermost axis first, as axes of (kh, kw, in, out).
        order = (3, 0, 1, 2) if self.data_format == "channels_last" else (3, 2, 0, 1)
        with torch.no_grad():
            parameter.data = parameter.data.permute(order).contiguous().permute(tuple(order.index(a) for a in range(4)))

    def convolution_op(self, inputs, kernel):
        if not _torch_channels_last(self, inputs):
            return super().convolution_op(inputs, kernel)
        padding = self._torch_padding(inputs.shape[1:3])
        if padding is None:
            return super().convolution_op(inputs, kernel)
        import torch.nn.functional as F

        kernel = keras.ops.convert_to_tensor(kernel)
        # NHWC memory seen as NCHW is PyTorch's channels_last format, and so is the kernel's
        # (out, in, kh, kw) view of its (out, kh, kw, in) memory.
        outputs = F.conv2d(
            inputs.permute(0, 3, 1, 2),
            kernel.permute(3, 2, 0, 1),
            stride=tuple(self.strides),
            padding=padding,
            dilation=tuple(self.dilation_rate),
            groups=self.groups,
        )
        return outputs.permute(0, 2, 3, 1)

    def _torch_padding(self, sizes):
        if self.padding == "valid":
            return (0, 0)
        if any(stride != 1 for stride in self.strides):
            return None  # Keras' strided "same" depends on the size; kept on Keras' path as before
        return _same_padding(sizes, self.kernel_size, self.strides, self.dilation_rate)


class _Pooling2D:
    """The copy-free call shared by the two pooling layers below."""

    def call(self, inputs):
        if not _torch_channels_last(self, inputs) or inputs.device.type == "meta":
            return super().call(inputs)  # Keras' pools also handle the meta tensors of shape inference
        pool_size, strides = tuple(self.pool_size), tuple(self.strides)
        padding = (0, 0)
        if self.padding == "same":
            padding = _same_padding(inputs.shape[1:3], pool_size, strides, (1, 1))
            if padding is None:
                return super().call(inputs)
        return self._torch_pool(inputs.permute(0, 3, 1, 2), pool_size, strides, padding).permute(0, 2, 3, 1)


@keras.saving.register_keras_serializable(package="kresnet")
class MaxPooling2D(_Pooling2D, keras.layers.MaxPooling2D):
    """`keras.layers.MaxPooling2D` whose PyTorch channels_last pool runs on views instead of copies."""

    def _torch_pool(self, inputs, pool_size, strides, padding):
        import torch.nn.functional as F

        return F.max_pool2d(inputs, pool_size, strides, padding)


@keras.saving.register_keras_serializable(package="kresnet")
class AveragePooling2D(_Pooling2D, keras.layers.AveragePooling2D):
    """`keras.layers.AveragePooling2D` whose PyTorch channels_last pool runs on views instead of copies."""

    def _torch_pool(self, inputs, pool_size, strides, padding):
        import torch.nn.functional as F

        # Keras' "same" averages real pixels only, as count_include_pad=False does.
        return F.avg_pool2d(inputs, pool_size, strides, padding, count_include_pad=False)


@contextlib.contextmanager
def keras_layers():
    """Models built inside this block use Keras' own Conv2D and pools: the reference `kresnet bench model --vs keras-layers` times."""
    global _keras_layers
    before, _keras_layers = _keras_layers, True
    try:
        yield
    finally:
        _keras_layers = before


def conv2d_layer():
    """The Conv2D class models build: this module's, or Keras' inside `keras_layers()`."""
    return keras.layers.Conv2D if _keras_layers else Conv2D


def max_pooling2d_layer():
    """The MaxPooling2D class models build: this module's, or Keras' inside `keras_layers()`."""
    return keras.layers.MaxPooling2D if _keras_layers else MaxPooling2D


def average_pooling2d_layer():
    """The AveragePooling2D class models build: this module's, or Keras' inside `keras_layers()`."""
    return keras.layers.AveragePooling2D if _keras_layers else AveragePooling2D
