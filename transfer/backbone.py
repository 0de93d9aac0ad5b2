"""The backbone of a transfer task: random, or from `model.backbone_weights` through kresnet's one loader."""


def build_backbone(name, weights, **kwargs):
    """A `ResNetBackbone` of `name`, initialised from `weights` when it is not empty.

    Args:
        name: str. `model.backbone`.
        weights: str. `model.backbone_weights`: a pretrained tag (`gluon_in1k`), `hf-hub:<repo>`, or a
            `.weights.h5` / `.keras` / `.safetensors` / `.pth` file (its classes come from the file), or `""`.
        **kwargs: `ResNetBackbone` arguments (`output_stride`, `input_shape`, `stage_depths`, ...).
    """
    import kresnet
    from kresnet.models.pretrained import load_pretrained

    if not weights:
        return kresnet.create_backbone(name, **kwargs)
    return load_pretrained(name, weights, backbone_only=True, label="model.backbone_weights", **kwargs)
