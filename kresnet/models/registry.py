"""Named models: `resnet{18,34,50,101,152}{,b,c,d}` as data, and the factories that build them."""

import dataclasses

from kresnet.errors import UserError

DEPTHS = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
    101: ("bottleneck", [3, 4, 23, 3]),
    152: ("bottleneck", [3, 8, 36, 3]),
}

# Each letter is a set of backbone flags (Figure 2 of the paper); C and D build on B.
VARIANTS = {
    "": {"stride_in_1x1": True, "deep_stem": False, "avg_down": False},
    "b": {"stride_in_1x1": False, "deep_stem": False, "avg_down": False},
    "c": {"stride_in_1x1": False, "deep_stem": True, "avg_down": False},
    "d": {"stride_in_1x1": False, "deep_stem": True, "avg_down": True},
}
VARIANT_FLAGS = tuple(VARIANTS[""])
VARIANT_LABELS = {"": "ResNet", "b": "ResNet-B", "c": "ResNet-C", "d": "ResNet-D"}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What a model name means: depth, block type, blocks per stage and variant flags."""

    name: str
    depth: int
    variant: str
    block_type: str
    stage_depths: tuple
    flags: dict

    @property
    def variant_label(self):
        return VARIANT_LABELS[self.variant]


def _build_specs():
    specs = {}
    for depth, (block_type, stage_depths) in DEPTHS.items():
        for letter, flags in VARIANTS.items():
            name = f"resnet{depth}{letter}"
            specs[name] = ModelSpec(name, depth, letter, block_type, tuple(stage_depths), dict(flags))
    return specs


_SPECS = _build_specs()


def list_models():
    """All model names, shallow to deep, ResNet before B, C, D."""
    return list(_SPECS)


def model_spec(name):
    """The `ModelSpec` of a name; an unknown name is an error that lists the valid ones."""
    if name not in _SPECS:
        raise UserError(f"unknown model {name!r}; expected one of: {', '.join(_SPECS)}")
    return _SPECS[name]


def _same_flags(spec, block_type, flags):
    # A basic block has no 1x1 conv, so stride_in_1x1 does not change its layout.
    relevant = [flag for flag in spec.flags if not (flag == "stride_in_1x1" and block_type == "basic")]
    return spec.block_type == block_type and all(spec.flags[flag] == flags[flag] for flag in relevant)


def check_saved_layout(name, source, block_type, flags):
    """A one-line error when saved weights (`block_type` and variant `flags`) are another layout than `name`."""
    spec = model_spec(name)
    if not _same_flags(spec, block_type, flags):
        found = {flag: flags[flag] for flag in spec.flags}
        raise UserError(f"{source}: holds a {block_type} backbone with {found}, not {name} ({spec.variant_label}, {spec.block_type})")


def name_for_layout(block_type, flags, stage_depths):
    """The model name of saved weights: the one of their layout and depths, else the first of their layout
    (weights of other depths load into it with `stage_depths`); None when no name has the layout."""
    matches = [spec for spec in _SPECS.values() if _same_flags(spec, block_type, flags)]
    exact = [spec for spec in matches if list(spec.stage_depths) == list(stage_depths)]
    candidates = exact or matches
    return candidates[0].name if candidates else None


def backbone_kwargs(name, **overrides):
    """Constructor arguments of `ResNetBackbone` for a name; `None` overrides are dropped (timm's rule)."""
    spec = model_spec(name)
    kwargs = {"block_type": spec.block_type, "stage_depths": list(spec.stage_depths), **spec.flags}
    kwargs.update({key: value for key, value in overrides.items() if value is not None})
    return kwargs


def build_backbone(name, output_stride=32, **kwargs):
    """The untrained `ResNetBackbone` of a named model (weights enter through `kresnet.models.factory`).

    Args:
        name: str. one of `list_models()`.
        output_stride: int. 32, 16 or 8 (dilated last stages, for segmentation).
        **kwargs: any `ResNetBackbone` argument.
    """
    from kresnet.models.resnet_backbone import ResNetBackbone, backbone_arguments, reject_unknown_keywords

    reject_unknown_keywords("create_backbone", kwargs, backbone_arguments())
    return ResNetBackbone(**backbone_kwargs(name, output_stride=output_stride, **kwargs), name=f"{name}_backbone")


def build_classifier(name, num_classes=None, dropout=0.0, **kwargs):
    """The untrained classifier of a named model (float32 logits); `num_classes` defaults to 1000."""
    from kresnet.models.resnet_classifier import ResNetClassifier

    check_num_classes(num_classes)
    backbone = build_backbone(name, **kwargs)
    return ResNetClassifier(backbone, num_classes=num_classes or 1000, dropout=dropout, name=name)


def check_num_classes(num_classes):
    if num_classes is not None and (not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1):
        raise UserError(f"num_classes must be a positive int. Received: num_classes={num_classes!r}")


def load_model(path, **kwargs):
    """Load a `.keras` file of a kresnet classifier or backbone (e.g. from `kresnet import-weights`).

    `import kresnet` does not import Keras (so the CLI starts fast), which leaves kresnet's
    classes unregistered; a bare `keras.saving.load_model` then cannot find them. This
    registers them first.

    Args:
        path: str or path. the `.keras` file.
        **kwargs: passed to `keras.saving.load_model` (e.g. `compile=False`).
    """
    import importlib
    import zipfile

    import keras

    importlib.import_module("kresnet.models.resnet_classifier")  # registers ResNetBackbone and ResNetClassifier
    try:
        return keras.saving.load_model(path, **kwargs)
    except (ValueError, TypeError, OSError, zipfile.BadZipFile) as error:
        if "safe_mode" in str(error):
            raise UserError(f"{path}: holds Python code (a Lambda layer), which Keras' safe mode refuses to load; "
                            "kresnet reads .keras files of kresnet models: save the weights instead "
                            "(model.save_weights('NAME.weights.h5')) and pass that file") from None
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"{path}: not a loadable .keras file of a kresnet model ({reason})") from None
