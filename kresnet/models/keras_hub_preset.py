"""keras-hub preset folders -> kresnet models: kresnet's own exports and keras-hub's ResNet (v1 and vd).

A preset folder holds `config.json` (the backbone) and `model.weights.h5`; a task preset adds
`task.json` and `task.weights.h5` (the classifier head). keras-hub's `ResNetBackbone` is kresnet's
network under other layer names in these layouts:

| keras-hub `block_type` | stem | kresnet |
|---|---|---|
| `basic_block` | 7x7 | ResNet / ResNet-B (`resnet18`, `resnet34`: one layout) |
| `bottleneck_block` | 7x7 | ResNet-B (`resnet50b`: the stride sits in the 3x3 conv) |
| `bottleneck_block_vd` | three 3x3 | ResNet-D (`resnet50d`) |

`basic_block_vd` (PaddleClas' ResNet-vd) adds a 1x1 projection to the first block of the first
stage, which ResNet-D (timm's `resnet18d`) lacks, and `use_pre_activation` is ResNetV2: neither
loads. keras-hub names `conv{i}_conv`/`conv{i}_bn` (stem) and `stack{s}_block{b}_{k}_conv` (k = 0 the
shortcut, 1-3 the residual branch) are kresnet's `stem_conv{i}` and `stage{s+1}_block{b}_conv{k}` /
`_shortcut_conv`.
"""

import json
import re

from kresnet.errors import UserError
from kresnet.models import registry

KRESNET_BACKBONE = "kresnet>ResNetBackbone"
KERAS_HUB_BACKBONE = "keras_hub>ResNetBackbone"
_KERAS_HUB_BLOCK = re.compile(r"^stack(\d+)_block(\d+)_(\d)_(conv|bn)$")
_KERAS_HUB_STEM = re.compile(r"^conv(\d)_(conv|bn)$")


def _read_json(folder, name):
    try:
        return json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"{folder / name}: unreadable ({str(error).splitlines()[0]})") from None


def preset_layout(folder):
    """(block type, variant flags, architecture kwargs) of the backbone in a preset folder; one-line errors
    for anything kresnet cannot build."""
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder}: not a keras-hub preset folder (no config.json)")
    config = _read_json(folder, "config.json")
    registered, settings = config.get("registered_name"), config.get("config", {})
    if registered == KRESNET_BACKBONE:
        architecture = {key: settings[key] for key in ("stage_depths", "stage_widths", "stem_width") if key in settings}
        return settings["block_type"], {flag: settings.get(flag, False) for flag in registry.VARIANT_FLAGS}, architecture
    if registered == KERAS_HUB_BACKBONE:
        return _keras_hub_layout(folder, settings)
    raise UserError(f"{folder}: holds a {registered} backbone; kresnet reads ResNet presets (kresnet's, or keras-hub's ResNetBackbone)")


def _keras_hub_layout(folder, settings):
    block = settings["block_type"]
    filters, kernels = list(settings["input_conv_filters"]), list(settings["input_conv_kernel_sizes"])
    widths, depths, strides = (list(settings[key]) for key in ("stackwise_num_filters", "stackwise_num_blocks", "stackwise_num_strides"))
    problem = None
    if settings.get("use_pre_activation"):
        problem = "use_pre_activation=True (ResNetV2, BatchNorm before the convs); kresnet builds post-activation ResNets"
    elif block == "basic_block_vd":
        problem = "basic_block_vd, whose first block has a 1x1 projection that ResNet-D (timm's resnet18d) lacks"
    elif len(widths) != 4 or strides != [1, 2, 2, 2]:
        problem = f"{len(widths)} stages with strides {strides}; kresnet builds 4 stages with strides [1, 2, 2, 2]"
    elif block.endswith("_vd") and (kernels != [3, 3, 3] or filters[1] != filters[0] or filters[2] != 2 * filters[0]):
        problem = f"a deep stem of {filters} filters, {kernels} kernels; kresnet's is three 3x3 convs of [w, w, 2w]"
    elif not block.endswith("_vd") and (kernels != [7] or filters != [64]):
        problem = f"a stem of {filters} filters, {kernels} kernels; kresnet's is one 7x7 conv of 64"
    if problem:
        raise UserError(f"{folder}: keras-hub ResNet with {problem}; it loads only as keras_hub.models.ResNetBackbone")
    deep = block.endswith("_vd")
    flags = {"stride_in_1x1": False, "deep_stem": deep, "avg_down": deep}
    architecture = {"stage_depths": depths, "stage_widths": widths, **({"stem_width": filters[0]} if deep else {})}
    return block.removesuffix("_vd").removesuffix("_block"), flags, architecture


def preset_model_name(folder):
    """The kresnet model name of a preset folder's backbone (its layout; its depths when they are a name's)."""
    block_type, flags, architecture = preset_layout(folder)
    return registry.name_for_layout(block_type, flags, architecture.get("stage_depths", []))


def read_preset_folder(name, folder, kwargs):
    """A kresnet model of `name` holding a preset folder's weights: a classifier when it holds a classifier task,
    else a backbone.

    Args:
        name: str. kresnet model name; its layout must be the preset's.
        folder: pathlib.Path. the preset folder.
        kwargs: `ResNetBackbone` arguments (they override the preset's depths and widths).
    """
    block_type, flags, architecture = preset_layout(folder)
    registry.check_saved_layout(name, folder, block_type, flags)
    saved = _load_saved(folder)
    saved_backbone = getattr(saved, "backbone", saved)
    kwargs = {**architecture, **kwargs}
    head = _classifier_head(folder, saved)
    if head is None:
        model = registry.build_backbone(name, **kwargs)
        backbone = model
    else:
        model = registry.build_classifier(name, num_classes=saved.num_classes, **kwargs)
        backbone = model.backbone
        model.get_layer("predictions").set_weights(head.get_weights())
    _copy_backbone_weights(saved_backbone, backbone, folder)
    return model


def _load_saved(folder):
    import keras_hub

    import kresnet.models.keras_hub_classifier  # noqa: F401 - registers kresnet's backbone and task for keras-hub's loader

    try:
        if (folder / "task.json").is_file() and (folder / "task.weights.h5").is_file():
            return keras_hub.models.ImageClassifier.from_preset(str(folder))
        return keras_hub.models.Backbone.from_preset(str(folder))
    except (ValueError, OSError) as error:
        raise UserError(f"{folder}: keras-hub cannot load it ({str(error).splitlines()[0]})") from None


def _classifier_head(folder, saved):
    """The saved task's `predictions` layer when it is a linear head on average pooling, else None (backbone only)."""
    if not hasattr(saved, "backbone"):
        return None
    if getattr(saved, "pooling", "avg") != "avg" or getattr(saved, "activation", None) not in (None, "linear", "softmax"):
        raise UserError(f"{folder}: its classifier pools by {saved.pooling!r} with activation {saved.activation!r}; "
                        "kresnet's head is average pooling and a linear layer")
    return saved.get_layer("predictions")


def kresnet_layer_name(name):
    """kresnet's name of a keras-hub ResNet layer (kresnet's own names map to themselves)."""
    stem = _KERAS_HUB_STEM.match(name)
    if stem:
        return f"stem_{stem.group(2)}{stem.group(1)}"
    block = _KERAS_HUB_BLOCK.match(name)
    if block:
        stack, index, part, kind = block.groups()
        where = "shortcut_" + kind if part == "0" else f"{kind}{part}"
        return f"stage{int(stack) + 1}_block{index}_{where}"
    return name


def _copy_backbone_weights(source, target, folder):
    targets = {layer.name: layer for layer in target.layers if layer.weights}
    # A 7x7 stem is one conv: keras-hub's conv1_* is kresnet's stem_conv / stem_bn.
    single_stem = "stem_conv" in targets
    copied = set()
    for layer in source.layers:
        if not layer.weights:
            continue
        name = kresnet_layer_name(layer.name)
        if single_stem and name in ("stem_conv1", "stem_bn1"):
            name = name[:-1]
        if name not in targets:
            raise UserError(f"{folder}: layer {layer.name} has no place in kresnet's {target.name}")
        targets[name].set_weights(layer.get_weights())
        copied.add(name)
    missing = sorted(set(targets) - copied)
    if missing:
        raise UserError(f"{folder}: holds no weights for {len(missing)} kresnet layers, e.g. {missing[0]}")
