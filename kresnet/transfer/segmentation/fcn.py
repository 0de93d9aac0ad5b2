"""FCN (Long et al., 2015, as in GluonCV) on a dilated kresnet backbone.

The head reads the last pyramid level ("P5", output stride 8 when stages 3 and 4 are
dilated, as in the paper's Table 9), the optional auxiliary head reads "P4" (stage 3),
and both are resized bilinearly to the input size. Logits come out in float32 whatever
the dtype policy, so losses and metrics stay exact under mixed precision.
"""

import keras
from keras import layers, ops

from kresnet.models.channels_last_layers import conv2d_layer
from kresnet.models.fused_batch_norm import batch_normalization_layer
from kresnet.transfer.segmentation.readers import IGNORE_LABEL

MAIN_OUTPUT = "logits"
AUX_OUTPUT = "aux_logits"
AUX_LOSS_WEIGHT = 0.2  # GluonCV's `aux_weight` for FCN


@keras.saving.register_keras_serializable(package="kresnet_transfer")
class ResizeLike(layers.Layer):
    """Resize the first input bilinearly to the spatial size of the second (the image).

    Unlike `UpSampling2D`, the target size is read at run time, so inputs whose size is
    not a multiple of the output stride still get full-size logits.
    """

    def call(self, features, reference):
        size = ops.shape(reference)[1:3]
        return ops.image.resize(features, size, interpolation="bilinear")

    def compute_output_shape(self, features_shape, reference_shape):
        return (features_shape[0], reference_shape[1], reference_shape[2], features_shape[-1])


def fcn_head(features, num_classes, dropout=0.1, name="head", seed=0, fused_batch_norm=True):
    """GluonCV's `_FCNHead`: 3x3 conv to a quarter of the channels, BN, ReLU, dropout, 1x1 conv.

    Args:
        features: symbolic tensor (batch, h, w, channels) from the backbone.
        num_classes: int. Output channels of the classifier conv.
        dropout: float. Dropout rate before the classifier. Defaults to 0.1.
        seed: int. Seed of the dropout masks (see `build_fcn`).
        name: str. Prefix of the layer names.
        fused_batch_norm: bool. BatchNorm on the backend's fused kernel (see `kresnet.models.fused_batch_norm`).
            Defaults to `True`.
    """
    channels = features.shape[-1] // 4
    x = conv2d_layer()(channels, 3, padding="same", use_bias=False, name=f"{name}_conv")(features)
    x = batch_normalization_layer(fused_batch_norm)(epsilon=1e-5, name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    x = layers.Dropout(dropout, seed=seed, name=f"{name}_dropout")(x)
    return conv2d_layer()(num_classes, 1, name=f"{name}_classifier")(x)


def build_fcn(backbone, num_classes, aux=True, dropout=0.1, name="fcn", seed=0, fused_batch_norm=True):
    """An FCN segmenter: backbone pyramid -> FCN head(s) -> float32 logits at input size.

    Args:
        backbone: a keras-hub `FeaturePyramidBackbone` (e.g. `kresnet.create_backbone(name,
            output_stride=8)`) whose `pyramid_outputs` holds "P4" and "P5".
        num_classes: int. Number of classes.
        aux: bool. Add the auxiliary head on "P4" (used in training with weight 0.2).
        dropout: float. Dropout rate in the heads. Defaults to 0.1.
        name: str. Model name.
        seed: int. Seed of the heads' dropout masks (the auxiliary head's is `seed + 1`). A seeded
            Dropout draws from its own generator state, which a checkpoint restores; an unseeded one
            draws from PyTorch's process-wide generator on that backend, so a resumed run would draw
            other masks than a run never stopped.
        fused_batch_norm: bool. The heads' BatchNorm on the backend's fused kernel. Defaults to `True`.

    Returns:
        A functional `keras.Model` mapping images to `{"logits": ...}` and, with `aux`,
        `"aux_logits"`, each float32 (batch, height, width, num_classes).
    """
    images = backbone.inputs[0]
    pyramid = backbone.pyramid_outputs
    main_logits = fcn_head(pyramid["P5"], num_classes, dropout, "head", seed, fused_batch_norm)
    outputs = {MAIN_OUTPUT: _full_size(main_logits, images, MAIN_OUTPUT)}
    if aux:
        aux_logits = fcn_head(pyramid["P4"], num_classes, dropout, "aux_head", seed + 1, fused_batch_norm)
        outputs[AUX_OUTPUT] = _full_size(aux_logits, images, AUX_OUTPUT)
    return keras.Model(images, outputs, name=name)


def _full_size(logits, images, name):
    return ResizeLike(dtype="float32", name=name)(logits, images)


def segmentation_loss():
    """Pixel-wise cross-entropy on logits, averaged over the pixels not labelled `IGNORE_LABEL`.

    `from_logits=True` also avoids a Keras >= 3.14 torch-backend failure in the backward
    pass of the probability form on 4-D outputs.
    """
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE_LABEL)


def compile_losses(model, aux_weight=AUX_LOSS_WEIGHT):
    """Loss and loss-weight dicts for `model.compile`, covering the auxiliary head when present.

    Args:
        model: a model from `build_fcn`.
        aux_weight: float. Weight of the auxiliary loss. Defaults to 0.2 (GluonCV).
    """
    losses = {MAIN_OUTPUT: segmentation_loss()}
    weights = {MAIN_OUTPUT: 1.0}
    if AUX_OUTPUT in model.output:
        losses[AUX_OUTPUT] = segmentation_loss()
        weights[AUX_OUTPUT] = aux_weight
    return losses, weights
