"""Model size and cost: trainable parameters (timm's count) and multiply-accumulates per image."""

import math

import keras
from keras import layers


def shape_only(build):
    """Call `build()` with variable initialisation skipped: shapes exist, values do not.

    Counting a ResNet-152 this way takes a fraction of a full build, most of which is
    drawing random initial weights. The returned model cannot be run.
    """
    with keras.StatelessScope(initialize_variables=False):
        model = build()
    # Keras keeps uninitialised variables in a global list and initialises them when a later
    # stateless scope closes; forget these so a throw-away model costs nothing afterwards.
    from keras.src.backend.common import global_state

    global_state.set_global_attribute("uninitialized_variables", [])
    return model


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
