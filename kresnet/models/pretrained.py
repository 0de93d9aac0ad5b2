"""The one loader of pretrained weights: `weights=` of `create_model` / `create_backbone`, and the transfer tasks.

`weights` is a tag of the model name (`"gluon_in1k"`), a full name, kresnet's or timm's (`"resnet50d.gluon_in1k"`,
`"resnet50.a1_in1k"`), a Hub id (`"hf-hub:timm/resnet50d.gluon_in1k"`), or a local file: a PyTorch state dict (`.safetensors`, `.pth`),
a Keras `.weights.h5` / `.keras`, or a keras-hub preset folder (kresnet's, or keras-hub's ResNet v1 / vd:
see `keras_hub_preset`). The number of classes comes from the file. Asked for the file's classes, the
head loads too; asked for others, only the backbone loads and the head is fresh (as in timm).
"""

import dataclasses
import pathlib
import sys

from kresnet.errors import UserError
from kresnet.models import hub, keras_hub_preset, presets, registry

STATE_DICT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    """What `weights=` names: a local path or a Hub id, and its published preset when it has one."""

    text: str
    path: pathlib.Path = None
    hub_id: str = None
    preset: presets.Preset = None


def resolve(name, weights):
    """The `WeightsSource` of `weights` for model `name`; unknown tags and layout mismatches are errors."""
    text = str(weights)
    path = pathlib.Path(text).expanduser()
    if path.exists():
        return WeightsSource(text, path=path)
    if text.startswith(presets.HUB_PREFIX):
        preset = presets.find_preset(text)
        if preset is not None:
            presets.check_layout(name, preset)
        return WeightsSource(text, hub_id=text[len(presets.HUB_PREFIX) :], preset=preset)
    if "/" in text or text.endswith((*STATE_DICT_SUFFIXES, ".h5", ".keras")):
        raise UserError("file not found (expected a tag such as 'gluon_in1k', 'hf-hub:<repo>' or a file)")
    preset = presets.find_preset(text)
    if preset is None:
        preset = presets.preset_for(name, text)
    presets.check_layout(name, preset)
    return WeightsSource(text, hub_id=preset.hub_id, preset=preset)


def load_pretrained(name, weights, *, num_classes=None, backbone_only=False, label="weights", how_to_set=None, **kwargs):
    """A classifier (or, with `backbone_only`, a backbone) of `name` holding `weights`.

    Args:
        name: str. kresnet model name.
        weights: see the module docstring.
        num_classes: int or None. None: the file's classes (1000 for the Hub tags).
        backbone_only: bool. Return the `ResNetBackbone` only.
        label: str. How errors name the setting, e.g. `"model.backbone_weights"`.
        how_to_set: callable or None. `(argument, value) -> str`: how the caller's user sets a backbone
            size that the file has otherwise (`weight_import.recipe_keys("model.")`, `cli_flags(...)`);
            default: the Python keyword.
        **kwargs: `ResNetBackbone` arguments (e.g. `stage_depths`, `output_stride`, `dtype`).
    """
    from kresnet.models.weight_import import SizeMismatch, python_keywords

    try:
        source = resolve(name, weights)
        model = _source_model(name, source, kwargs)
    except SizeMismatch as error:
        raise UserError(f"{label}={str(weights)!r}: {error.with_hint(how_to_set or python_keywords)}") from None
    except UserError as error:
        raise UserError(f"{label}={str(weights)!r}: {error}") from None
    if backbone_only:
        return getattr(model, "backbone", model)
    file_classes = getattr(model, "num_classes", None)
    if num_classes is None or num_classes == file_classes:
        if file_classes is None:
            raise UserError(f"{label}={source.text!r}: holds a backbone only; pass num_classes for a fresh head")
        return model
    from kresnet.models.resnet_classifier import ResNetClassifier

    what = f"its {file_classes}-class head is not used" if file_classes else "it has no head"
    print(f"{source.text}: loaded the backbone only; the {num_classes}-class head is fresh ({what})", file=sys.stderr)
    return ResNetClassifier(model.backbone if file_classes else model, num_classes=num_classes, name=name)


def _source_model(name, source, kwargs):
    """The model the file describes (its classes, or a backbone), built as `name` with `kwargs`, weights loaded."""
    if source.hub_id is not None:
        return _from_hub(name, source.hub_id, kwargs)
    path = source.path
    if path.is_dir():
        return keras_hub_preset.read_preset_folder(name, path, kwargs)
    if path.suffix in STATE_DICT_SUFFIXES:
        from kresnet.models.weight_import import load_state_dict

        return _from_state_dict(name, load_state_dict(path), kwargs)
    if path.name.endswith(".weights.h5"):
        return _from_weights_h5(name, path, kwargs)
    if path.suffix == ".keras":
        return _from_keras_file(name, path, kwargs)
    raise UserError(f"{path}: expected .safetensors, .pth, .weights.h5, .keras or a keras-hub preset folder")


def _from_state_dict(name, state, kwargs):
    from kresnet.models.weight_import import build_model_for, import_state_dict

    model = build_model_for(state, name, **kwargs)
    return import_state_dict(model, state)


def _from_hub(name, hub_id, kwargs):
    from kresnet.models.weight_import import check_state_dict_layout, load_state_dict, with_file_widths

    hub_file = hub.fetch(hub_id)
    try:
        state = load_state_dict(hub_file.path)
    except UserError:
        hub.evict(hub_file)
        raise UserError(
            f"{hub_file.path} is corrupt or partial; removed it from the Hugging Face cache, run again to download it anew"
        ) from None
    check_state_dict_layout(state, name)
    kwargs = with_file_widths(state, kwargs)
    architecture = f"{name}:{sorted(_architecture_kwargs(kwargs).items())}"
    cached = hub.converted_path(hub_file, architecture)
    if cached.is_file():
        model = _build(name, _num_classes_of_state(state), kwargs)
        try:
            model.load_weights(cached)
            return model
        except Exception:  # noqa: BLE001 - h5py and Keras raise many kinds; all mean "unusable cache entry"
            cached.unlink()
            print(f"{cached}: unreadable cache entry removed; converting again", file=sys.stderr)
    model = _from_state_dict(name, state, kwargs)
    from kresnet.atomic_files import save_weights_atomically

    cached.parent.mkdir(parents=True, exist_ok=True)
    save_weights_atomically(model, cached)
    return model


def _architecture_kwargs(kwargs):
    """The arguments that change weight shapes (output stride, dtype and input size do not)."""
    return {key: value for key, value in kwargs.items() if key in ("stage_depths", "stage_widths", "stem_width", "block_type")}


def _num_classes_of_state(state):
    from kresnet.models.weight_import import infer_num_classes

    return infer_num_classes(state)


def _build(name, num_classes, kwargs):
    if num_classes is None:
        return registry.build_backbone(name, **kwargs)
    return registry.build_classifier(name, num_classes=num_classes, **kwargs)


def _dense_kernels(path):
    import h5py

    kernels = []
    with h5py.File(path, "r") as handle:
        # A `kresnet train` run's model.weights.h5 also holds the optimizer's slots (one per kernel): not layers.
        handle.visititems(lambda key, item: kernels.append(item.shape) if getattr(item, "ndim", 0) == 2 and not key.startswith("optimizer/") else None)
    return kernels


def _from_weights_h5(name, path, kwargs):
    try:
        kernels = _dense_kernels(path)
    except OSError as error:
        raise UserError(f"{path}: not a readable .weights.h5 ({str(error).splitlines()[0]})") from None
    if len(kernels) > 1:
        raise UserError(f"{path}: not a kresnet classifier or backbone ({len(kernels)} dense kernels)")
    return load_trained_weights(_build(name, int(kernels[0][1]) if kernels else None, kwargs), path, name)


def load_trained_weights(model, path, fits):
    """`model.load_weights(path)`, or one line naming the file and what it should have fitted; weights
    holding a NaN or infinity are refused too (they would evaluate to chance with exit status 0).

    Args:
        model: the built model of the recipe (or of the command's options).
        path: a `.weights.h5` file.
        fits: what the weights must fit, for the message ("resnet50d with 10 classes", "the recipe's [model]").
    """
    try:
        model.load_weights(path)
    except ValueError as error:
        lines = str(error).strip().splitlines() or ["no detail"]
        reason = next((line for line in lines if "expected" in line), lines[0])  # Keras' first line is often a count
        raise UserError(f"{path}: does not fit {fits} ({reason.strip()})") from None
    except OSError as error:  # truncated, empty or not HDF5
        raise UserError(f"{path}: not a readable .weights.h5 file ({str(error).splitlines()[0]}); "
                        "a killed save leaves the previous file, so this one was damaged or replaced") from None
    from kresnet.models.finite_weights import first_non_finite

    bad = first_non_finite(model.weights)
    if bad is not None:
        raise UserError(f"{path}: weight {bad} holds NaN or infinite values; these weights cannot be evaluated "
                        "or trained from (kresnet never saves such a state: the file was written elsewhere or damaged)")
    return model


def _from_keras_file(name, path, kwargs):
    saved = registry.load_model(path, compile=False)
    backbone = getattr(saved, "backbone", saved)
    registry.check_saved_layout(name, path, backbone.block_type, {flag: getattr(backbone, flag) for flag in registry.VARIANT_FLAGS})
    model = _build(name, getattr(saved, "num_classes", None), {**_saved_architecture(backbone), **kwargs})
    model.set_weights(saved.get_weights())
    return model


def _saved_architecture(backbone):
    return {"stage_depths": backbone.stage_depths, "stage_widths": backbone.stage_widths, "stem_width": backbone.stem_width}
