"""`create_model` and `create_backbone`: a named model, untrained or with weights.

The one direction of models/ (as timm's `create_model` -> `load_pretrained`): this module calls the
weight loader, the loader builds untrained models through the registry, and the registry never
imports either.
"""

from kresnet.errors import UserError
from kresnet.models import registry


def create_backbone(name, output_stride=32, weights=None, **kwargs):
    """Build the `ResNetBackbone` (a keras-hub `FeaturePyramidBackbone`) of a named model.

    Args:
        name: str. one of `list_models()`.
        output_stride: int. 32, 16 or 8 (dilated last stages, for segmentation).
        weights: None, a tag of `name` (`"gluon_in1k"`, see `kresnet models --pretrained`), a full name,
            kresnet's or timm's (`"resnet50d.gluon_in1k"`, `"resnet50.a1_in1k"`), a Hub id
            (`"hf-hub:timm/resnet50d.gluon_in1k"`), or a local `.safetensors`, `.pth`, `.weights.h5`,
            `.keras` file or keras-hub preset folder. Defaults to `None` (random init).
        **kwargs: any `ResNetBackbone` argument, e.g. `stage_depths=[1, 1, 1, 1]`,
            `zero_gamma=True`, `input_shape=[224, 224, 3]`, `dtype="mixed_bfloat16"`.
    """
    from kresnet.models.resnet_backbone import backbone_arguments, reject_unknown_keywords

    reject_unknown_keywords("create_backbone", kwargs, backbone_arguments())
    if weights is not None:
        from kresnet.models.pretrained import load_pretrained

        return load_pretrained(name, weights, backbone_only=True, output_stride=output_stride, **kwargs)
    return registry.build_backbone(name, output_stride=output_stride, **kwargs)


def create_model(name, num_classes=None, dropout=0.0, weights=None, **kwargs):
    """Build the classifier of a named model; it returns float32 logits.

    Args:
        name: str. one of `list_models()`.
        num_classes: int. number of classes. Defaults to the weights file's classes, else `1000`.
            With `weights` and other classes than the file's, only the backbone loads and the
            head is fresh.
        dropout: float. dropout before the linear layer. Defaults to `0.0`.
        weights: pretrained weights, as for `create_backbone`. Defaults to `None` (random init).
        **kwargs: `ResNetBackbone` arguments (see `create_backbone`).
    """
    from kresnet.models.resnet_backbone import backbone_arguments, reject_unknown_keywords

    registry.check_num_classes(num_classes)
    reject_unknown_keywords("create_model", kwargs, ["num_classes", "dropout", "weights", *backbone_arguments()])
    if weights is not None:
        if dropout:
            raise UserError("create_model: dropout applies to a fresh head; build it without weights and load them after")
        from kresnet.models.pretrained import load_pretrained

        return load_pretrained(name, weights, num_classes=num_classes, **kwargs)
    return registry.build_classifier(name, num_classes=num_classes, dropout=dropout, **kwargs)
