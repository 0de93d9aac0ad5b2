"""`ResNetBackbone`: one class for ResNet and its B, C and D tweaks, as independent flags."""

import inspect

import keras
import keras_hub
from keras import layers

from kresnet.errors import UserError
from kresnet.models.blocks import BLOCKS, BuildContext, channel_count, stem

KERNEL_INITIALIZERS = ("glorot_uniform", "he_normal")
OUTPUT_STRIDES = (8, 16, 32)
# Keras' functional constructor silently drops keywords it does not know, so a typo such as
# `outputstride=8` would build an undilated model; these are the only extra keywords accepted.
MODEL_KEYWORDS = ("name", "trainable")


@keras.saving.register_keras_serializable(package="kresnet")
class ResNetBackbone(keras_hub.models.FeaturePyramidBackbone):
    """ResNet feature extractor with the tweaks of "Bag of Tricks" (He et al., 2019).

    Reference: https://arxiv.org/abs/1812.01187 (Section 4, Figure 2).

    | variant | stride_in_1x1 | deep_stem | avg_down |
    |---|---|---|---|
    | ResNet (A) | True | False | False |
    | ResNet-B | False | False | False |
    | ResNet-C | False | True | False |
    | ResNet-D | False | True | True |

    The model's output is the last stage's feature map; `pyramid_outputs` holds the
    outputs of the four stages as `P2`..`P5`. With `output_stride` 16 or 8 the strides
    of the last stages become dilations (the first block of a dilated stage keeps the
    previous dilation, as in timm and GluonCV), so P4/P5 keep stride 16 or 8.

    Args:
        block_type: str. `"basic"` (two 3x3 convs) or `"bottleneck"`.
        stage_depths: list of 4 ints. blocks per stage.
        stage_widths: list of 4 ints. base width of each stage (bottlenecks expand x4).
            Defaults to `[64, 128, 256, 512]`.
        stride_in_1x1: bool. put a bottleneck's stride on its first 1x1 conv (the original
            ResNet). Defaults to `False` (ResNet-B and later).
        deep_stem: bool. three 3x3 convs instead of one 7x7 (ResNet-C). Defaults to `False`.
        stem_width: int. width of the first two deep-stem convs. Defaults to `32`.
        avg_down: bool. average-pool shortcut (ResNet-D). Defaults to `False`.
        output_stride: int. 32, 16 or 8. Defaults to `32`.
        zero_gamma: bool. zero-initialise the last BN scale of every residual branch.
            Defaults to `False`.
        kernel_initializer: str. `"glorot_uniform"` (Xavier, the paper) or `"he_normal"`.
        input_shape: list. image shape without batch. Defaults to `[None, None, 3]`
            (`[3, None, None]` for channels_first).
        data_format: str. `"channels_last"` or `"channels_first"`. Defaults to Keras'
            image data format.
        dtype: dtype policy for the layers. Defaults to the global policy.
        fused_batch_norm: bool. compute BatchNorm with the backend's fused kernel on PyTorch and
            TensorFlow (`kresnet.models.fused_batch_norm.BatchNormalization`, same weights and results as Keras' generic layer,
            faster); `False` builds `keras.layers.BatchNormalization`. Defaults to `True`.

    Example:
    ```python
    backbone = kresnet.ResNetBackbone(
        block_type="bottleneck", stage_depths=[3, 4, 6, 3], deep_stem=True, avg_down=True)
    features = keras.Model(backbone.inputs, backbone.pyramid_outputs)
    ```
    """

    def __init__(
        self,
        block_type,
        stage_depths,
        stage_widths=None,
        stride_in_1x1=False,
        deep_stem=False,
        stem_width=32,
        avg_down=False,
        output_stride=32,
        zero_gamma=False,
        kernel_initializer="glorot_uniform",
        input_shape=None,
        data_format=None,
        dtype=None,
        fused_batch_norm=True,
        **kwargs,
    ):
        # === Validate arguments ===
        reject_unknown_keywords(type(self).__name__, kwargs, backbone_arguments() + list(MODEL_KEYWORDS))
        data_format = _standardize_data_format(data_format)
        stage_widths = list(stage_widths) if stage_widths is not None else [64, 128, 256, 512]
        stage_depths = list(stage_depths)
        if block_type not in BLOCKS:
            raise UserError(f"block_type must be one of {sorted(BLOCKS)}. Received: block_type={block_type!r}")
        if len(stage_depths) != 4 or any(not isinstance(d, int) or d < 1 for d in stage_depths):
            raise UserError(f"stage_depths must be 4 positive ints. Received: stage_depths={stage_depths}")
        if len(stage_widths) != 4 or any(not isinstance(w, int) or w < 1 for w in stage_widths):
            raise UserError(f"stage_widths must be 4 positive ints. Received: stage_widths={stage_widths}")
        if not isinstance(stem_width, int) or isinstance(stem_width, bool) or stem_width < 1:
            raise UserError(f"stem_width must be a positive int. Received: stem_width={stem_width!r}")
        if output_stride not in OUTPUT_STRIDES:
            raise UserError(f"output_stride must be one of {list(OUTPUT_STRIDES)}. Received: output_stride={output_stride}")
        if kernel_initializer not in KERNEL_INITIALIZERS:
            raise UserError(
                f"kernel_initializer must be one of {list(KERNEL_INITIALIZERS)}. "
                f"Received: kernel_initializer={kernel_initializer!r}"
            )
        if input_shape is None:
            input_shape = [None, None, 3] if data_format == "channels_last" else [3, None, None]
        input_shape = list(input_shape)
        if len(input_shape) != 3:
            raise UserError(f"input_shape must have 3 entries (no batch). Received: input_shape={input_shape}")

        # === Functional model ===
        ctx = BuildContext(
            data_format=data_format, kernel_initializer=kernel_initializer, dtype=dtype,
            fused_batch_norm=bool(fused_batch_norm),
        )
        block_fn, expansion = BLOCKS[block_type]
        image_input = layers.Input(shape=input_shape, name="images")
        x = stem(image_input, ctx, deep=deep_stem, stem_width=stem_width)
        pyramid_outputs = {}
        current_stride, dilation = 4, 1
        for stage_index, (depth, width) in enumerate(zip(stage_depths, stage_widths)):
            stride = 1 if stage_index == 0 else 2
            previous_dilation = dilation
            if current_stride * stride > output_stride:
                dilation *= stride
                stride = 1
            else:
                current_stride *= stride
            for block_index in range(depth):
                first = block_index == 0
                x = block_fn(
                    x,
                    width,
                    ctx,
                    name=f"stage{stage_index + 1}_block{block_index}",
                    strides=stride if first else 1,
                    dilation=dilation,
                    first_dilation=previous_dilation if first else dilation,
                    needs_projection=first and (stride != 1 or channel_count(x, ctx) != width * expansion),
                    avg_down=avg_down,
                    zero_gamma=zero_gamma,
                    stride_in_1x1=stride_in_1x1,
                )
            pyramid_outputs[f"P{stage_index + 2}"] = x

        super().__init__(inputs=image_input, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.pyramid_outputs = pyramid_outputs
        self.block_type = block_type
        self.stage_depths = stage_depths
        self.stage_widths = stage_widths
        self.stride_in_1x1 = stride_in_1x1
        self.deep_stem = deep_stem
        self.stem_width = stem_width
        self.avg_down = avg_down
        self.output_stride = output_stride
        self.zero_gamma = zero_gamma
        self.kernel_initializer = kernel_initializer
        self.image_shape = input_shape
        self.data_format = data_format
        self.fused_batch_norm = bool(fused_batch_norm)

    @property
    def pyramid_channels(self):
        """Channels of `P2`..`P5`, e.g. `[256, 512, 1024, 2048]` for ResNet-50."""
        expansion = BLOCKS[self.block_type][1]
        return [w * expansion for w in self.stage_widths]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "block_type": self.block_type,
                "stage_depths": self.stage_depths,
                "stage_widths": self.stage_widths,
                "stride_in_1x1": self.stride_in_1x1,
                "deep_stem": self.deep_stem,
                "stem_width": self.stem_width,
                "avg_down": self.avg_down,
                "output_stride": self.output_stride,
                "zero_gamma": self.zero_gamma,
                "kernel_initializer": self.kernel_initializer,
                "input_shape": self.image_shape,
                "data_format": self.data_format,
                "fused_batch_norm": self.fused_batch_norm,
            }
        )
        return config


def backbone_arguments():
    """The argument names of `ResNetBackbone`, in signature order."""
    return [name for name in inspect.signature(ResNetBackbone.__init__).parameters if name not in ("self", "kwargs")]


def reject_unknown_keywords(caller, kwargs, valid):
    """A one-line error naming the keywords of `kwargs` not in `valid`, and listing `valid`."""
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        received = ", ".join(f"{key}={kwargs[key]!r}" for key in unknown)
        raise UserError(f"{caller} got unknown argument(s) {received}; valid arguments: {', '.join(valid)}")


def _standardize_data_format(data_format):
    data_format = keras.config.image_data_format() if data_format is None else str(data_format).lower()
    if data_format not in ("channels_last", "channels_first"):
        raise UserError(
            f"data_format must be 'channels_last' or 'channels_first'. Received: data_format={data_format!r}"
        )
    return data_format
