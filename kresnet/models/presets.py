"""The pretrained-weights table: per model name, each tag's Hub file, origin, published accuracy and eval transform.

The data lives in `pretrained_presets.json` (taken from timm's `default_cfgs` and
`results/results-imagenet.csv`). timm's bottleneck `resnet50/101/152` is the B layout, so its tags
sit under kresnet's `resnet50b/101b/152b`; its basic-block `resnet18/34` equal kresnet's (a basic
block has no 1x1 conv, so A and B are one layout). A checkpoint answers to kresnet's full name
(`resnet50b.a1_in1k`), timm's (`resnet50.a1_in1k`) and its Hub id (`hf-hub:timm/resnet50.a1_in1k`).
"""

import dataclasses
import difflib
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

    @property
    def timm_name(self):
        """timm's name of the checkpoint (`resnet50.a1_in1k`): its Hub repository's name."""
        return self.hub_id.split("/", 1)[-1]

    @property
    def names(self):
        """Every name that selects this checkpoint: kresnet's, timm's and the Hub id."""
        return (self.full_name, self.timm_name, f"{HUB_PREFIX}{self.hub_id}")

    def described(self):
        """kresnet's full name, with timm's beside it where they differ."""
        return self.full_name if self.timm_name == self.full_name else f"{self.full_name} (timm: {self.timm_name})"


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


@functools.lru_cache(maxsize=1)
def _by_name():
    return {name: preset for preset in all_presets() for name in preset.names}


def find_preset(text):
    """The `Preset` that `text` names (`"resnet50d.gluon_in1k"`, `"resnet50.a1_in1k"`,
    `"hf-hub:timm/resnet50d.gluon_in1k"`), or None."""
    return _by_name().get(text)


def _did_you_mean(text, candidates):
    """"; close matches: ..." with up to five candidates spelled like `text` (difflib), or ""."""
    close = difflib.get_close_matches(text, list(dict.fromkeys(candidates)), n=5, cutoff=0.6)
    return f"; close matches: {', '.join(close)}" if close else ""


def _full_names():
    """kresnet's and timm's full name of every checkpoint."""
    return [name for preset in all_presets() for name in preset.names[:2]]


def preset_for(name, tag):
    """The `Preset` of a tag of `name`; an unknown tag is an error naming the close matches and that name's tags."""
    tags = presets_of(name)
    if tag in tags:
        return tags[tag]
    spec = registry.model_spec(name)
    same_tag = [p for p in all_presets() if p.tag == tag and p.name not in same_layout_names(name)]
    same_tag.sort(key=lambda p: registry.model_spec(p.name).depth != spec.depth)
    known = ", ".join(tags) or "none"
    if same_tag:
        hint = f"; {tag!r} is published for {same_tag[0].name}"
    else:
        # A misspelt full name (it has a dot), or a misspelt tag of this name, else of any name.
        hint = _did_you_mean(tag, _full_names() if "." in tag else tags) or _did_you_mean(tag, _full_names())
    raise UserError(f"no such tag for {name}{hint}; its tags are: {known}")


def preset_named(text):
    """The `Preset` of a name that needs no model name (kresnet's or timm's full name, a Hub id).

    Raises:
        UserError: `text` is a bare tag of several models (the error lists them), or no name at all
            (the error lists the close matches).
    """
    preset = find_preset(text)
    if preset is not None:
        return preset
    same_tag = [p.full_name for p in all_presets() if p.tag == text]
    if same_tag:
        raise UserError(f"{text!r} is a tag, not a full name; give one of: {', '.join(same_tag)}")
    hint = _did_you_mean(text, _full_names()) or _did_you_mean(text, [p.tag for p in all_presets()])
    raise UserError(f"{text!r} is not a pretrained checkpoint{hint} (all: `kresnet models --pretrained`)")


def check_layout(name, preset):
    """A one-line error when a preset's weights are for another layout than `name` (same shapes, wrong model)."""
    if preset.name not in same_layout_names(name):
        ours, theirs = registry.model_spec(name), registry.model_spec(preset.name)
        raise UserError(
            f"{preset.described()} is the {theirs.variant_label} layout ({theirs.block_type} blocks) "
            f"but {name} is {ours.variant_label} ({ours.block_type} blocks); use create_model({preset.name!r}, ...)"
        )


def format_table(match=None):
    """`kresnet models --pretrained`: one row per tag."""
    header = f"{'model':<12}{'tag':<26}{'origin':<22}{'top-1':>7}{'top-5':>7}{'size':>6}{'crop':>7}  {'interp':<9}{'licence':<14}hub id"
    rows = [header]
    for p in all_presets():
        if match is None or any(match in name for name in p.names[:2]):
            rows.append(
                f"{p.name:<12}{p.tag:<26}{p.origin:<22}{p.top1:>7.2f}{p.top5:>7.2f}{p.eval_size:>6}{p.crop_pct:>7.3f}"
                f"  {p.interpolation:<9}{p.license:<14}{p.hub_id}"
            )
    return rows
