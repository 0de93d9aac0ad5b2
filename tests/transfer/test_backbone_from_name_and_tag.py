"""Transfer from a model name and a tag alone: `--set model.backbone=resnet50d --set model.backbone_weights=gluon_in1k`.

The stage sizes a recipe sets belong to its own backbone: naming another one with `--set` brings that
name's sizes (widths from the weights file), and a size mismatch names the recipe key that fixes it.
"""

import json

import keras
import kresnet
import pytest

from kresnet.bundled_recipes import BUNDLED_RECIPES
from kresnet.transfer.detection.config import load_detection_recipe
from kresnet.transfer.segmentation.config import load_segmentation_recipe
from tests.models.hub_cache import make_offline_hub, timm_state_dict_bytes

DEMOS = {"detection": ("demo_detect", load_detection_recipe), "segmentation": ("demo_segment", load_segmentation_recipe)}
NAME_AND_TAG = ["--set", "model.backbone=resnet50d", "--set", "model.backbone_weights=gluon_in1k"]
# resnet50d's own blocks per stage, narrow: what timm would save for such a model, written into the Hub cache.
NARROW_WIDTHS = [8, 8, 16, 16]
# Only the amount of data and training; nothing about the model.
TINY_RUN = ["--set", "data.synthetic_train_images=4", "--set", "data.synthetic_test_images=2", "--set", "train.epochs=1",
            "--set", "train.steps_per_epoch=1", "--set", "train.batch_size=2", "--set", "eval.batch_size=2"]


def _load(task, overrides):
    recipe, load = DEMOS[task]
    return load(BUNDLED_RECIPES / "transfer" / f"{recipe}.toml", overrides).model


@pytest.mark.parametrize("task", sorted(DEMOS))
def test_naming_another_backbone_resets_the_sizes_the_recipe_set_for_its_own(task):
    demo = _load(task, [])
    assert (demo.backbone, demo.stage_depths) == ("resnet18d", [1, 1, 1, 1]) and demo.stage_widths
    other = _load(task, [arg for arg in NAME_AND_TAG if arg != "--set"])
    assert (other.backbone, other.backbone_weights, other.stage_depths, other.stage_widths) == ("resnet50d", "gluon_in1k", None, None)
    # Sizes set beside the new name stay; naming the recipe's own backbone again changes nothing.
    kept = _load(task, ["model.backbone=resnet50d", "model.stage_depths=[1,1,1,1]"])
    assert (kept.stage_depths, kept.stage_widths) == ([1, 1, 1, 1], None)
    same = _load(task, ["model.backbone=resnet18d"])
    assert (same.stage_depths, same.stage_widths) == (demo.stage_depths, demo.stage_widths)


@pytest.fixture
def narrow_gluon_hub(testdata, tmp_path, monkeypatch):
    """An offline Hub cache whose `timm/resnet50d.gluon_in1k` is a narrow resnet50d (the name's depths)."""
    model = kresnet.create_model("resnet50d", num_classes=1000, stage_widths=NARROW_WIDTHS)
    make_offline_hub(tmp_path, monkeypatch, testdata / "reference", files={"timm/resnet50d.gluon_in1k": timm_state_dict_bytes(model)})
    monkeypatch.chdir(tmp_path)
    keras.backend.clear_session()


def test_transfer_detect_from_a_name_and_a_tag_alone(narrow_gluon_hub, tmp_path, run_cli, capsys):
    out = tmp_path / "run"
    assert run_cli(["transfer", "detect", "demo_detect", *NAME_AND_TAG, *TINY_RUN, "--out", out]) == 0
    assert f"backbone: weights from gluon_in1k [resnet50d, blocks [3, 4, 6, 3], widths {NARROW_WIDTHS}]" in capsys.readouterr().err
    assert "map_voc07" in json.loads((out / "metrics.json").read_text())
    recipe = (out / "recipe.toml").read_text()
    assert 'backbone = "resnet50d"' in recipe and "stage_depths" not in recipe


@pytest.mark.parametrize("sizes, hint", [
    (["model.stage_depths=[1,1,1,1]"], "[3, 4, 6, 3] blocks per stage but resnet50d is built with [1, 1, 1, 1]; "
                                       "--set model.stage_depths=[3,4,6,3]"),
    (["model.stage_depths=[1,1,1,1]", "model.stage_widths=[16,32,64,128]"],
     "--set model.stage_depths=[3,4,6,3], --set model.stage_widths=[8,8,16,16]"),
])
def test_a_size_the_weights_do_not_have_is_one_line_naming_the_recipe_key(narrow_gluon_hub, tmp_path, run_cli, capsys, sizes, hint):
    argv = ["transfer", "detect", "demo_detect", *NAME_AND_TAG, *TINY_RUN, "--out", tmp_path / "run"]
    assert run_cli([*argv, *(arg for size in sizes for arg in ("--set", size))]) == 2
    # The data is prepared (one progress line) before the model is built; the error is the last line, whole.
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: model.backbone_weights='gluon_in1k': the state dict has") and hint in error
    assert "--depths" not in error


def test_backbone_weights_take_timms_full_name(testdata, tmp_path, monkeypatch):
    from kresnet.transfer.backbone import build_backbone

    make_offline_hub(tmp_path, monkeypatch, testdata / "reference")
    messages = []
    backbone = build_backbone("resnet50b", "resnet50.gluon_in1k", log=messages.append, stage_depths=[1, 1, 1, 1])
    reference = kresnet.create_backbone("resnet50b", weights="resnet50b.gluon_in1k", stage_depths=[1, 1, 1, 1])
    conv = "stage4_block0_conv2"
    assert (backbone.get_layer(conv).get_weights()[0] == reference.get_layer(conv).get_weights()[0]).all()
    assert messages == ["backbone: weights from resnet50.gluon_in1k [resnet50b, blocks [1, 1, 1, 1], widths [8, 16, 24, 32]]"]
