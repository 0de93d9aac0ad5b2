"""Model size and cost: trainable parameters (timm's count) and multiply-accumulates per image."""

import math

from keras import layers


def count_parameters(model):
    """Trainable parameters, which is what timm and the paper count (BN running statistics excluded)."""
    return sum(math.prod(weight.shape) for weight in model.trainable_weights)


def count_macs(model):
    """Multiply-accumulates of one image through the convolutions and dense layers.

    The model must have a fixed input size (e.g. `input_shape=[224, 224, 3]`). Batch
    norm, activations, pooling and additions are not counted, as in the paper's
    Table 5 figures (ResNet-50 3.8G, ResNet-50-D 4.3G).
    """
    total = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, layers.Conv2D):
            kernel_h, kernel_w, in_channels, out_channels = layer.kernel.shape
            output_shape = layer.output.shape
            spatial = output_shape[1:3] if layer.data_format == "channels_last" else output_shape[2:4]
            if None in spatial:
                raise ValueError(f"count_macs needs a fixed input size; layer {layer.name} has output {output_shape}")
            total += kernel_h * kernel_w * in_channels * out_channels * math.prod(spatial) // layer.groups
        elif isinstance(layer, layers.Dense):
            total += math.prod(layer.kernel.shape)
    return total
