"""The functional building blocks of the ResNet family: conv-BN units, stems and residual blocks.

Padding follows PyTorch (symmetric `k // 2`), not TensorFlow's asymmetric "same" for
strided convolutions, so weights trained in timm, torchvision or GluonCV give the same
outputs here. Layer names are stable (`stage{i}_block{j}_conv1`, ...) because weight
import maps onto them.
"""

import dataclasses

from keras import layers

from kresnet.models.channels_last_layers import average_pooling2d_layer, conv2d_layer, max_pooling2d_layer
from kresnet.models.fused_batch_norm import batch_normalization_layer

# PyTorch's BatchNorm defaults (eps 1e-5, momentum 0.1 == Keras momentum 0.9); Keras'
# default eps of 1e-3 would change the outputs of imported weights.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """Settings shared by every layer of one network."""

    data_format: str
    kernel_initializer: str
    dtype: object = None
    fused_batch_norm: bool = True

    @property
    def channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1


def conv_bn(x, filters, kernel_size, ctx, *, name, strides=1, dilation=1, activation=True, zero_gamma=False):
    """Conv (no bias) -> BatchNorm -> optional ReLU, with PyTorch-style symmetric padding.

    Args:
        x: input tensor.
        filters: int. output channels.
        kernel_size: int. square kernel size.
        ctx: `BuildContext`.
        name: str. name of the conv layer; the BN and ReLU names derive from it.
        strides: int. convolution stride.
        dilation: int. dilation rate (stride must then be 1).
        activation: bool. apply ReLU after BN.
        zero_gamma: bool. initialise the BN scale to zero (the paper's zero-gamma trick).

    The BatchNorm is named by replacing `conv` with `bn` in `name`, so `stage1_block0_conv3`
    pairs with `stage1_block0_bn3` (the timm/torchvision naming).
    """
    pad = dilation * (kernel_size - 1) // 2
    if strides > 1 and pad > 0:
        x = layers.ZeroPadding2D(pad, data_format=ctx.data_format, dtype=ctx.dtype, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same" if pad > 0 else "valid"
    x = conv2d_layer()(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        use_bias=False,
        kernel_initializer=ctx.kernel_initializer,
        data_format=ctx.data_format,
        dtype=ctx.dtype,
        name=name,
    )(x)
    x = batch_normalization_layer(ctx.fused_batch_norm)(
        axis=ctx.channel_axis,
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_initializer="zeros" if zero_gamma else "ones",
        dtype=ctx.dtype,
        name=name.replace("conv", "bn"),
    )(x)
    if activation:
        x = layers.ReLU(dtype=ctx.dtype, name=f"{name}_relu")(x)
    return x


def stem(x, ctx, *, deep, stem_width):
    """The input stem: a 7x7/2 conv (ResNet, B) or three 3x3 convs (C, D), then a 3x3/2 max-pool."""
    if deep:
        x = conv_bn(x, stem_width, 3, ctx, strides=2, name="stem_conv1")
        x = conv_bn(x, stem_width, 3, ctx, name="stem_conv2")
        x = conv_bn(x, 2 * stem_width, 3, ctx, name="stem_conv3")
    else:
        x = conv_bn(x, 64, 7, ctx, strides=2, name="stem_conv")
    # Zero padding equals PyTorch's -inf padding here because the input is post-ReLU (>= 0).
    x = layers.ZeroPadding2D(1, data_format=ctx.data_format, dtype=ctx.dtype, name="stem_pool_pad")(x)
    return max_pooling2d_layer()(3, strides=2, data_format=ctx.data_format, dtype=ctx.dtype, name="stem_pool")(x)


def shortcut(x, filters, ctx, *, name, strides, avg_down):
    """The projection shortcut of a block whose shape changes.

    With `avg_down` (ResNet-D) a 2x2/2 average pool does the downsampling and the 1x1
    conv keeps stride 1, so no activation is skipped over. The pool uses "same" padding,
    which on odd sizes pads at the end and averages only real pixels: PyTorch's
    `ceil_mode=True, count_include_pad=False`, as in timm and GluonCV.
    """
    if avg_down and strides > 1:
        x = average_pooling2d_layer()(
            strides, strides=strides, padding="same", data_format=ctx.data_format, dtype=ctx.dtype, name=f"{name}_pool"
        )(x)
        strides = 1
    return conv_bn(x, filters, 1, ctx, strides=strides, activation=False, name=f"{name}_conv")


def basic_block(x, width, ctx, *, name, strides, dilation, first_dilation, needs_projection, avg_down, zero_gamma, **_):
    """Two 3x3 convs (ResNet-18/34). Stride placement variants do not apply: the first conv is 3x3."""
    residual = conv_bn(x, width, 3, ctx, strides=strides, dilation=first_dilation, name=f"{name}_conv1")
    residual = conv_bn(residual, width, 3, ctx, dilation=dilation, activation=False, zero_gamma=zero_gamma, name=f"{name}_conv2")
    if needs_projection:
        x = shortcut(x, width, ctx, name=f"{name}_shortcut", strides=strides, avg_down=avg_down)
    x = layers.Add(dtype=ctx.dtype, name=f"{name}_add")([residual, x])
    return layers.ReLU(dtype=ctx.dtype, name=f"{name}_out")(x)


def bottleneck_block(
    x, width, ctx, *, name, strides, dilation, first_dilation, needs_projection, avg_down, zero_gamma, stride_in_1x1
):
    """1x1 reduce, 3x3, 1x1 expand (x4). `stride_in_1x1` is the original ResNet; False is ResNet-B."""
    residual = conv_bn(x, width, 1, ctx, strides=strides if stride_in_1x1 else 1, name=f"{name}_conv1")
    residual = conv_bn(
        residual, width, 3, ctx, strides=1 if stride_in_1x1 else strides, dilation=first_dilation, name=f"{name}_conv2"
    )
    residual = conv_bn(residual, 4 * width, 1, ctx, activation=False, zero_gamma=zero_gamma, name=f"{name}_conv3")
    if needs_projection:
        x = shortcut(x, 4 * width, ctx, name=f"{name}_shortcut", strides=strides, avg_down=avg_down)
    x = layers.Add(dtype=ctx.dtype, name=f"{name}_add")([residual, x])
    return layers.ReLU(dtype=ctx.dtype, name=f"{name}_out")(x)


BLOCKS = {"basic": (basic_block, 1), "bottleneck": (bottleneck_block, 4)}


def channel_count(tensor, ctx):
    return tensor.shape[ctx.channel_axis]
