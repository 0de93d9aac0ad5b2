"""The backbone of a transfer task: random, or from `model.backbone_weights` through kresnet's one loader."""

import pathlib

from kresnet.errors import UserError

# `runs/demo/model.weights.h5?`: use the file when it exists, else start from random init. This lets the
# transfer demos pick up the classification demo's backbone without failing for a user who has not trained it.
IF_PRESENT_SUFFIX = "?"
LOCAL_WEIGHT_SUFFIXES = (".weights.h5", ".keras", ".safetensors", ".pth", ".pt", ".bin")


def optional_weights_path(weights):
    """The path of a `PATH?` value of `model.backbone_weights`, or None when `weights` has no `?` suffix.

    Raises:
        UserError: the `?` marks something that is not a local weights file (a tag, a Hub id, nothing).
    """
    text = str(weights)
    if not text.endswith(IF_PRESENT_SUFFIX):
        return None
    path = text[: -len(IF_PRESENT_SUFFIX)]
    if IF_PRESENT_SUFFIX in path or not path.endswith(LOCAL_WEIGHT_SUFFIXES) or path.startswith("hf-hub:"):
        raise UserError(
            f"model.backbone_weights={text!r}: a trailing '?' marks an optional local file "
            f"(expected PATH{IF_PRESENT_SUFFIX} with PATH ending in {', '.join(LOCAL_WEIGHT_SUFFIXES)})"
        )
    return pathlib.Path(path).expanduser()


def build_backbone(name, weights, log=None, **kwargs):
    """A `ResNetBackbone` of `name`, initialised from `weights` when it is not empty.

    Blocks per stage are the name's and widths the weights file's (else the name's) unless
    `stage_depths` / `stage_widths` say otherwise; the log line states the sizes built.

    Args:
        name: str. `model.backbone`.
        weights: str. `model.backbone_weights`: a pretrained tag (`gluon_in1k`), a full name, kresnet's or
            timm's (`resnet50.a1_in1k`), `hf-hub:<repo>`, or a `.weights.h5` / `.keras` / `.safetensors` /
            `.pth` file (its classes come from the file), or `""`.
            A file path ending in `?` is optional: random init when the file does not exist.
        log: callable or None. Told in one line which weights the backbone starts from.
        **kwargs: `ResNetBackbone` arguments (`output_stride`, `input_shape`, `stage_depths`, ...).
    """
    import kresnet
    from kresnet.models.pretrained import load_pretrained
    from kresnet.models.weight_import import recipe_keys

    log = log or (lambda message: None)
    optional = optional_weights_path(weights)
    if optional is not None and not optional.is_file():
        backbone = kresnet.create_backbone(name, **kwargs)
        log(f"backbone: random init (no {optional}; train a classifier there first to start from its backbone) {_sizes(name, backbone)}")
        return backbone
    weights = str(optional) if optional is not None else weights
    if not weights:
        backbone = kresnet.create_backbone(name, **kwargs)
        log(f"backbone: random init (model.backbone_weights is empty) {_sizes(name, backbone)}")
        return backbone
    backbone = load_pretrained(name, weights, backbone_only=True, label="model.backbone_weights", how_to_set=recipe_keys("model."), **kwargs)
    log(f"backbone: weights from {weights} {_sizes(name, backbone)}")
    return backbone


def _sizes(name, backbone):
    return f"[{name}, blocks {list(backbone.stage_depths)}, widths {list(backbone.stage_widths)}]"
