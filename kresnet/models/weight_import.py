"""Import PyTorch ResNet state dicts (timm, torchvision) into kresnet models.

Both libraries share one naming and one layout (a bottleneck strides on its 3x3 conv), so one
importer serves both. They name their modules `conv1`, `bn1`, `layerN.M.convK`, `layerN.M.downsample.*`
and `fc`; timm's deep stem is `conv1.{0,1,3,4,6}`. The number of classes comes from the
file's `fc.weight` (no `fc` gives a backbone), the blocks per stage from its keys, and the
stage and deep-stem widths from its first convs (so narrow models import too).
"""

import pathlib
import pickle
import re

import numpy as np

from kresnet.errors import UserError
from kresnet.models import registry

IGNORED_SUFFIXES = ("num_batches_tracked",)
_BLOCK_KEY = re.compile(r"^layer([1-4])\.(\d+)\.")


def load_state_dict(path):
    """Read a `.safetensors` or `.pth` PyTorch state dict into float32 NumPy arrays."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        tensors = _read(path, load_file)
    elif path.suffix in (".pth", ".pt", ".bin"):
        import torch

        # weights_only: a state dict is tensors in dicts; anything else (a pickled nn.Module)
        # would run arbitrary code on load, so it is refused with a one-line error.
        loaded = _read(path, lambda name: torch.load(name, map_location="cpu", weights_only=True))
        loaded = loaded.get("state_dict", loaded.get("model", loaded)) if isinstance(loaded, dict) else loaded
        if not isinstance(loaded, dict):
            raise UserError(f"{path}: expected a state dict (name -> tensor), found {type(loaded).__name__}")
        tensors = {key: value.detach().float().numpy() for key, value in loaded.items() if hasattr(value, "detach")}
    else:
        raise UserError(f"{path}: expected a .safetensors or .pth file")
    state = {key: np.asarray(value, dtype=np.float32) for key, value in tensors.items() if not key.endswith(IGNORED_SUFFIXES)}
    # Checkpoints saved from DataParallel / torch.compile prefix every key.
    for prefix in ("module.", "_orig_mod."):
        if state and all(key.startswith(prefix) for key in state):
            state = {key[len(prefix) :]: value for key, value in state.items()}
    return state


def _read(path, reader):
    """`reader(str(path))`, or a one-line error if the file is not what its suffix says."""
    try:
        return reader(str(path))
    except Exception as error:  # noqa: BLE001 - torch and safetensors raise many kinds; all mean "unreadable"
        if isinstance(error, pickle.UnpicklingError):  # torch's multi-paragraph weights_only refusal
            reason = "torch.load(weights_only=True) refused it: a pickled model object, or not a PyTorch file"
        else:
            reason = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise UserError(
            f"{path}: not a readable PyTorch state dict ({reason[:200]}); expected tensors saved with "
            "torch.save(model.state_dict()) or safetensors"
        ) from None


def infer_stage_depths(state):
    """Blocks per stage from the `layerN.M.` keys."""
    depths = [0, 0, 0, 0]
    for key in state:
        match = _BLOCK_KEY.match(key)
        if match:
            stage, block = int(match.group(1)) - 1, int(match.group(2))
            depths[stage] = max(depths[stage], block + 1)
    if 0 in depths:
        raise UserError(f"the state dict has no ResNet stages layer1..layer4 (blocks per stage found: {depths})")
    return depths


def infer_stage_widths(state):
    """Base width of each stage: the output channels of its first block's first conv."""
    keys = [f"layer{stage}.0.conv1.weight" for stage in range(1, 5)]
    missing = [key for key in keys if key not in state]
    if missing:
        raise UserError(f"the state dict has no key {missing[0]!r} (it gives the width of that stage)")
    return [int(state[key].shape[0]) for key in keys]


def with_file_widths(state, kwargs):
    """`kwargs` with the stage and deep-stem widths of the file where the caller set none (narrow files import too)."""
    kwargs = dict(kwargs)
    if kwargs.get("stage_widths") is None:
        kwargs["stage_widths"] = infer_stage_widths(state)
    if "conv1.0.weight" in state and kwargs.get("stem_width") is None:
        kwargs["stem_width"] = int(state["conv1.0.weight"].shape[0])
    return kwargs


def infer_num_classes(state):
    """Classes of the file's `fc` head, or None for a headless (backbone) state dict."""
    return state["fc.weight"].shape[0] if "fc.weight" in state else None


def check_state_dict_layout(state, name):
    """A one-line error when the file's layout is not `name`'s; weights of another layout often have the same shapes."""
    spec = registry.model_spec(name)
    file_block_type = "bottleneck" if any(re.match(r"layer\d\.\d+\.conv3\.weight$", key) for key in state) else "basic"
    if file_block_type != spec.block_type:
        raise UserError(f"the state dict has {file_block_type} blocks but {name} has {spec.block_type} blocks; check the model name")
    file_deep_stem = "conv1.0.weight" in state
    file_avg_down = any(key.endswith("downsample.2.weight") for key in state)
    if (file_deep_stem, file_avg_down) != (spec.flags["deep_stem"], spec.flags["avg_down"]):
        stem = "a deep 3x3 stem" if file_deep_stem else "a 7x7 stem"
        pool = "an average-pool shortcut" if file_avg_down else "a strided-conv shortcut"
        raise UserError(f"the state dict has {stem} and {pool}, which {name} ({spec.variant_label}) does not; check the model name")
    # timm and torchvision put a bottleneck's stride on its 3x3 conv (ResNet-B, "v1.5"): same shapes as
    # the A layout, different predictions, so the A layout is refused rather than loaded silently.
    if spec.block_type == "bottleneck" and spec.flags["stride_in_1x1"]:
        raise UserError(
            f"timm and torchvision bottleneck weights are the ResNet-B layout (stride on the 3x3 conv) but {name} is "
            f"ResNet (stride on the first 1x1 conv); use resnet{spec.depth}b"
        )


class SizeMismatch(UserError):
    """The file's blocks per stage or stage widths are not those the model is built with.

    `fixes` holds (argument, the file's value) per mismatch, so that the caller can say how its
    user sets that argument (a CLI flag, a recipe key, a Python keyword) and append it.
    """

    def __init__(self, name, mismatches):
        self.fixes = [(argument, found) for argument, found, _ in mismatches]
        described = {"stage_depths": "blocks per stage", "stage_widths": "stage widths"}
        parts = [f"{found} {described[argument]} but {name} is built with {built}" for argument, found, built in mismatches]
        super().__init__(f"the state dict has {' and '.join(parts)}")

    def with_hint(self, how_to_set):
        """The same error, one line, ending in how to set each argument: `how_to_set(argument, value) -> str`."""
        return UserError(f"{self}; {', '.join(how_to_set(argument, value) for argument, value in self.fixes)}")


def python_keywords(argument, value):
    """How a Python caller sets a backbone size, for `SizeMismatch.with_hint`."""
    return f"pass {argument}={value}"


def recipe_keys(prefix):
    """How a recipe's user sets backbone sizes: `recipe_keys("model.")` hints `--set model.stage_depths=[3,4,6,3]`."""
    return lambda argument, value: f"--set {prefix}{argument}=[{','.join(map(str, value))}]"


def cli_flags(**flags):
    """How a command's user sets backbone sizes: `cli_flags(depths="--depths")` hints `pass --depths 3,4,6,3`."""
    def hint(argument, value):
        flag = flags.get(argument.removeprefix("stage_"))
        return f"pass {flag} {','.join(map(str, value))}" if flag else python_keywords(argument, value)

    return hint


def check_file_sizes(state, name, stage_depths=None, stage_widths=None):
    """`SizeMismatch` when given (or, for depths, the name's) sizes are not the file's; widths not given follow the file."""
    depths = infer_stage_depths(state)
    built_depths = list(registry.model_spec(name).stage_depths) if stage_depths is None else list(stage_depths)
    mismatches = [("stage_depths", depths, built_depths)] if built_depths != depths else []
    if stage_widths is not None and list(stage_widths) != infer_stage_widths(state):
        mismatches.append(("stage_widths", infer_stage_widths(state), list(stage_widths)))
    if mismatches:
        raise SizeMismatch(name, mismatches)


def build_model_for(state, name, stage_depths=None, **kwargs):
    """The kresnet model (classifier, or backbone if headless) matching `name` and the file's layout and shape.

    Args:
        state: dict. the state dict.
        name: str. kresnet model name.
        stage_depths: list or None. blocks per stage; must equal the file's.
        **kwargs: other `ResNetBackbone` arguments (e.g. `stage_widths`, `output_stride`, `dtype`); widths
            not given are the file's, widths given must be.
    """
    spec = registry.model_spec(name)
    check_state_dict_layout(state, name)
    check_file_sizes(state, name, stage_depths, kwargs.get("stage_widths"))
    stage_depths = list(spec.stage_depths) if stage_depths is None else list(stage_depths)
    kwargs = with_file_widths(state, kwargs)
    num_classes = infer_num_classes(state)
    if num_classes is None:
        return registry.build_backbone(name, stage_depths=list(stage_depths), **kwargs)
    return registry.build_classifier(name, num_classes=num_classes, stage_depths=list(stage_depths), **kwargs)


def torch_name(keras_layer_name, deep_stem):
    """The PyTorch module name of a kresnet conv, BN or dense layer."""
    stem_map = (
        {"stem_conv1": "conv1.0", "stem_bn1": "conv1.1", "stem_conv2": "conv1.3", "stem_bn2": "conv1.4", "stem_conv3": "conv1.6", "stem_bn3": "bn1"}
        if deep_stem
        else {"stem_conv": "conv1", "stem_bn": "bn1"}
    )
    if keras_layer_name in stem_map:
        return stem_map[keras_layer_name]
    if keras_layer_name == "predictions":
        return "fc"
    match = re.fullmatch(r"stage(\d)_block(\d+)_(conv\d|bn\d|shortcut_conv|shortcut_bn)", keras_layer_name)
    if not match:
        return None
    stage, block, part = match.groups()
    return f"layer{stage}.{block}.{part}"


def _shortcut_names(avg_down):
    # timm's D shortcut is Sequential(pool, conv, bn), so conv/bn sit at 1/2; B's is (conv, bn) at 0/1.
    offset = 1 if avg_down else 0
    return {"shortcut_conv": f"downsample.{offset}", "shortcut_bn": f"downsample.{offset + 1}"}


def convert_layer_weights(layer, torch_prefix, state, used):
    """The Keras weight list of one Conv2D, Dense or BatchNormalization layer from the entries under `torch_prefix`.

    Args:
        layer: the Keras layer.
        torch_prefix: str. Its PyTorch module name, e.g. `layer1.0.conv1`.
        state: dict. The state dict (name -> float32 array).
        used: set. The keys taken are added to it.
    """
    from keras import layers

    def take(suffix):
        key = f"{torch_prefix}.{suffix}"
        if key not in state:
            raise UserError(f"the state dict has no key {key!r} (needed by layer {layer.name})")
        used.add(key)
        return key, state[key]

    if isinstance(layer, layers.Conv2D):
        key, kernel = take("weight")
        arrays = [(key, kernel.transpose(2, 3, 1, 0))]  # (out, in, kh, kw) -> (kh, kw, in, out)
        if layer.use_bias:
            arrays.append(take("bias"))
    elif isinstance(layer, layers.Dense):
        key, kernel = take("weight")
        arrays = [(key, kernel.T), take("bias")]
    elif isinstance(layer, layers.BatchNormalization):
        arrays = [take("weight"), take("bias"), take("running_mean"), take("running_var")]
    else:
        raise TypeError(f"no weight conversion for layer {layer.name}")
    for (key, array), variable in zip(arrays, layer.weights):
        if tuple(array.shape) != tuple(variable.shape):
            raise UserError(
                f"shape mismatch for {key!r}: file has {tuple(array.shape)}, layer {layer.name} expects {tuple(variable.shape)}"
            )
    return [array for _, array in arrays]


def torch_modules(model, backbone_prefix="", head_names=None):
    """(Keras layer, timm/torchvision module name) for every weighted layer of a kresnet model.

    Args:
        model: a kresnet classifier or backbone, or a model (FCN, detector) whose layers include a backbone's.
        backbone_prefix: str. Prefix of the backbone's names in the file, e.g. `"backbone."` for a torchvision FCN.
        head_names: dict or None. Keras layer name -> PyTorch module name of the layers outside the backbone.
    """
    from keras import layers

    head_names = head_names or {}
    everything = list(model._flatten_layers(include_self=False, recursive=True))
    # The backbone's layout from its layer names, so a backbone inside a larger model needs no handle on it.
    names = {layer.name for layer in everything}
    deep_stem = "stem_conv1" in names
    shortcut_names = _shortcut_names(any(name.endswith("_shortcut_pool") for name in names))
    weighted = (layers.Conv2D, layers.Dense, layers.BatchNormalization)
    pairs = []
    for layer in everything:
        if not isinstance(layer, weighted):
            continue
        if layer.name in head_names:
            pairs.append((layer, head_names[layer.name]))
            continue
        name = torch_name(layer.name, deep_stem)
        if name is None:
            raise UserError(f"layer {layer.name} has no counterpart in a timm/torchvision ResNet")
        for part, replacement in shortcut_names.items():
            name = name.replace(part, replacement)
        pairs.append((layer, backbone_prefix + name))
    return pairs


def import_state_dict(model, state, backbone_prefix="", head_names=None):
    """Copy a timm/torchvision state dict into a kresnet model (see `torch_modules`), in place.

    Every weight of the model must be found and every tensor of the file used; otherwise
    the error names the first missing or unused key.
    """
    used = set()
    for layer, name in torch_modules(model, backbone_prefix, head_names):
        layer.set_weights(convert_layer_weights(layer, name, state, used))
    unused = sorted(set(state) - used)
    if unused:
        raise UserError(f"unknown key {unused[0]!r} in the state dict ({len(unused)} unused); is it the right model name?")
    return model
