"""Feature Pyramid Network (Lin et al., 2017) on a kresnet backbone's `pyramid_outputs`, or its single C4 map."""

import keras
from keras import layers

from kresnet.data.imagenet_stats import MEAN_RGB, STD_RGB
from kresnet.models.channels_last_layers import conv2d_layer, max_pooling2d_layer

LEVELS = ("P2", "P3", "P4", "P5")


def _normalised_pyramid(backbone, levels, dtype, pixel_mean=MEAN_RGB, pixel_std=STD_RGB):
    images = keras.Input(shape=backbone.input.shape[1:], name="pixels")
    # Normalised inside the detector, so it takes 0-255 pixels.
    normalised = layers.Normalization(mean=list(pixel_mean), variance=[s * s for s in pixel_std], dtype=dtype,
                                      name="pixel_normalization")(images)
    pyramid = keras.Model(backbone.inputs, [backbone.pyramid_outputs[level] for level in levels], name="backbone_pyramid")
    return images, pyramid(normalised)


def build_single_level_extractor(backbone, level="P4", dtype=None, name="c4_extractor", pixel_mean=MEAN_RGB,
                                 pixel_std=STD_RGB):
    """A functional model: 0-255 images -> [one backbone feature map] (the original Faster R-CNN's C4, stride 16).

    What `FasterRCNN(fpn=False)` reads: every anchor size and every RoI use this one map.

    Args:
        backbone: `kresnet.ResNetBackbone` built with a static `input_shape` (sides divisible by 32).
        level: str. Key of `backbone.pyramid_outputs`; "P4" is the output of stage 3 (stride 16).
        dtype: dtype policy of the new layers.
        name: str.
        pixel_mean: 3 floats. RGB mean on the 0-255 scale. Defaults to the paper's ImageNet mean.
        pixel_std: 3 floats. RGB standard deviation on the 0-255 scale.
    """
    images, features = _normalised_pyramid(backbone, [level], dtype, pixel_mean, pixel_std)
    return keras.Model(images, features, name=name)


def build_fpn_extractor(backbone, channels=256, dtype=None, name="fpn_extractor", pixel_mean=MEAN_RGB, pixel_std=STD_RGB):
    """A functional model: 0-255 images -> [P2, P3, P4, P5, P6] with `channels` each.

    Lateral 1x1 convs, top-down nearest 2x upsampling and sums, a 3x3 conv per
    output, and P6 as a stride-2 subsample of P5 (for the RPN's largest anchors),
    as in Detectron2's and torchvision's FPN (`LastLevelMaxPool`).

    Args:
        backbone: `kresnet.ResNetBackbone` built with a static `input_shape` (sides divisible by 32).
        channels: int. FPN width.
        dtype: dtype policy of the new layers.
        name: str.
        pixel_mean: 3 floats. RGB mean on the 0-255 scale. Defaults to the paper's ImageNet mean.
        pixel_std: 3 floats. RGB standard deviation on the 0-255 scale.
    """
    images, features = _normalised_pyramid(backbone, LEVELS, dtype, pixel_mean, pixel_std)
    laterals = [conv2d_layer()(channels, 1, dtype=dtype, name=f"fpn_lateral{level}")(feature)
                for level, feature in zip(LEVELS, features)]
    merged = [laterals[-1]]
    for level, lateral in zip(LEVELS[-2::-1], laterals[-2::-1]):
        upsampled = layers.UpSampling2D(2, interpolation="nearest", dtype=dtype, name=f"fpn_up{level}")(merged[0])
        merged.insert(0, layers.Add(dtype=dtype, name=f"fpn_sum{level}")([lateral, upsampled]))
    outputs = [conv2d_layer()(channels, 3, padding="same", dtype=dtype, name=f"fpn_output{level}")(feature)
               for level, feature in zip(LEVELS, merged)]
    outputs.append(max_pooling2d_layer()(1, strides=2, dtype=dtype, name="fpn_P6")(outputs[-1]))
    return keras.Model(images, outputs, name=name)
