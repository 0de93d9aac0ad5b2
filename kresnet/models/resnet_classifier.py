"""`ResNetClassifier`: a backbone, global average pooling and a linear layer that returns logits."""

import keras
from keras import layers

from kresnet.errors import UserError
from kresnet.models.resnet_backbone import MODEL_KEYWORDS, ResNetBackbone, reject_unknown_keywords


@keras.saving.register_keras_serializable(package="kresnet")
class ResNetClassifier(keras.Model):
    """Image classifier on a `ResNetBackbone`; outputs float32 logits whatever the dtype policy.

    Args:
        backbone: `ResNetBackbone`.
        num_classes: int. number of classes. Defaults to `1000`.
        dropout: float. dropout rate before the linear layer. Defaults to `0.0`.

    Example:
    ```python
    model = kresnet.create_model("resnet50d", num_classes=1000, zero_gamma=True)
    logits = model(images)  # (batch, 1000), float32
    ```
    """

    def __init__(self, backbone, num_classes=1000, dropout=0.0, **kwargs):
        # === Validate arguments ===
        reject_unknown_keywords(type(self).__name__, kwargs, ["backbone", "num_classes", "dropout", *MODEL_KEYWORDS])
        if not isinstance(backbone, ResNetBackbone):
            raise UserError(f"backbone must be a ResNetBackbone. Received: backbone={type(backbone).__name__}")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise UserError(f"num_classes must be a positive int. Received: num_classes={num_classes!r}")
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0.0 <= dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1). Received: dropout={dropout!r}")

        # === Functional model ===
        inputs = backbone.input
        features = backbone(inputs)
        x = layers.GlobalAveragePooling2D(data_format=backbone.data_format, dtype=backbone.dtype_policy, name="avg_pool")(
            features
        )
        if dropout > 0:
            x = layers.Dropout(dropout, dtype=backbone.dtype_policy, name="head_dropout")(x)
        # The head stays float32 under mixed precision so logits (and the loss) are full precision.
        logits = layers.Dense(
            num_classes, kernel_initializer=backbone.kernel_initializer, dtype="float32", name="predictions"
        )(x)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.num_classes = num_classes
        self.dropout = dropout

    def get_config(self):
        return {
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
