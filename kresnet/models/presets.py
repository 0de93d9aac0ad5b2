"""The pretrained-weights table: per model name, each tag's Hub file, origin, published accuracy and eval transform.

The data lives in `pretrained_presets.json` (taken from timm's `default_cfgs` and
`results/results-imagenet.csv`). timm's bottleneck `resnet50/101/152` is the B layout, so its tags
sit under kresnet's `resnet50b/101b/152b`; its basic-block `resnet18/34` equal kresnet's (a basic
block has no 1x1 conv, so A and B are one layout).
"""

import dataclasses
import functools
import importlib.resources
import json

from kresnet.errors import UserError
from kresnet.models import registry

HUB_PREFIX = "hf-hub:"


@dataclasses.dataclass(frozen=True)
class Preset:
    """One published checkpoint of a kresnet model name."""

    name: str
    tag: str
    hub_id: str
    origin: str
    top1: float
    top5: float
    eval_size: int
    crop_pct: float
    interpolation: str
    mean: tuple
    std: tuple
    license: str

    @property
    def resize_size(self):
        """timm's `scale_size`: the shorter side before the centre crop."""
        return int(self.eval_size / self.crop_pct)

    @property
    def full_name(self):
        return f"{self.name}.{self.tag}"


@functools.lru_cache(maxsize=1)
def _table():
    text = importlib.resources.files("kresnet.models").joinpath("pretrained_presets.json").read_text()
    models = json.loads(text)["models"]
    return {
        name: {
            tag: Preset(name=name, tag=tag, **{**entry, "mean": tuple(entry["mean"]), "std": tuple(entry["std"])})
            for tag, entry in tags.items()
        }
        for name, tags in models.items()
    }


def all_presets():
    """Every `Preset`, in `list_models()` order."""
    table = _table()
    return [preset for name in registry.list_models() for preset in table.get(name, {}).values()]


def same_layout_names(name):
    """Names whose weights fit `name`: itself, and for basic blocks its A/B twin (no 1x1 conv, one layout)."""
    spec = registry.model_spec(name)
    if spec.block_type == "basic" and spec.variant in ("", "b"):
        return [f"resnet{spec.depth}", f"resnet{spec.depth}b"]
    return [name]


def presets_of(name):
    """The tags published for `name` (and its same-layout twin), tag -> `Preset`."""
    table = _table()
    return {tag: preset for twin in same_layout_names(name) for tag, preset in table.get(twin, {}).items()}


def find_preset(text):
    """The `Preset` of `"resnet50d.gluon_in1k"` or `"hf-hub:timm/resnet50d.gluon_in1k"`, or None."""
    hub_id = text[len(HUB_PREFIX) :] if text.startswith(HUB_PREFIX) else None
    for preset in all_presets():
        if text == preset.full_name or hub_id == preset.hub_id:
            return preset
    return None


def preset_for(name, tag):
    """The `Preset` of a tag of `name`; an unknown tag is an error listing that name's tags."""
    tags = presets_of(name)
    if tag in tags:
        return tags[tag]
    spec = registry.model_spec(name)
    same_tag = [p for p in all_presets() if p.tag == tag and p.name not in same_layout_names(name)]
    same_tag.sort(key=lambda p: registry.model_spec(p.name).depth != spec.depth)
    known = ", ".join(tags) or "none"
    hint = f"; {tag!r} is published for {same_tag[0].name}" if same_tag else ""
    raise UserError(f"no such tag for {name}; its tags are: {known}{hint}")


def check_layout(name, preset):
    """A one-line error when a preset's weights are for another layout than `name` (same shapes, wrong model)."""
    if preset.name not in same_layout_names(name):
        ours, theirs = registry.model_spec(name), registry.model_spec(preset.name)
        raise UserError(
            f"{preset.full_name} is the {theirs.variant_label} layout ({theirs.block_type} blocks) "
            f"but {name} is {ours.variant_label} ({ours.block_type} blocks); use create_model({preset.name!r}, ...)"
        )


def format_table(match=None):
    """`kresnet models --weights`: one row per tag."""
    header = f"{'model':<12}{'tag':<26}{'origin':<22}{'top-1':>7}{'top-5':>7}{'size':>6}{'crop':>7}  {'interp':<9}{'licence':<14}hub id"
    rows = [header]
    for p in all_presets():
        if match is None or match in p.full_name:
            rows.append(
                f"{p.name:<12}{p.tag:<26}{p.origin:<22}{p.top1:>7.2f}{p.top5:>7.2f}{p.eval_size:>6}{p.crop_pct:>7.3f}"
                f"  {p.interpolation:<9}{p.license:<14}{p.hub_id}"
            )
    return rows
