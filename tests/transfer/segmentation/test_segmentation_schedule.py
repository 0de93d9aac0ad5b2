"""Poly schedule with warmup against its formula; recipes load and reject bad keys."""

import numpy as np
import pytest

from kresnet.bundled_recipes import BUNDLED_RECIPES
from kresnet.errors import UserError
from kresnet.transfer.segmentation.config import load_segmentation_recipe
from kresnet.runs.task import learning_rate_schedule
from kresnet.tricks.schedules import WarmupPolyDecay

RECIPES = BUNDLED_RECIPES / "transfer"


def test_warmup_poly_matches_formula():
    schedule = WarmupPolyDecay(base_lr=0.02, total_steps=110, warmup_steps=10, power=0.9)
    for step in [0, 5, 10, 11, 60, 109, 110, 200]:
        expected = 0.02 * step / 10 if step < 10 else 0.02 * (1 - min(step - 10, 100) / 100) ** 0.9
        np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-5, atol=1e-9)
    assert WarmupPolyDecay.from_config(schedule.get_config()).get_config() == schedule.get_config()


def test_a_recipe_schedule_is_poly_by_default_and_cosine_on_request():
    config = load_segmentation_recipe(RECIPES / "demo_segment.toml", ["train.batch_size=256", "optimizer.lr_per_256=0.1",
                                                                      "train.epochs=3", "schedule.warmup_epochs=1"])
    assert isinstance(learning_rate_schedule(config, steps_per_epoch=10), WarmupPolyDecay)
    config.schedule.kind = "cosine"
    schedule = learning_rate_schedule(config, steps_per_epoch=10)
    np.testing.assert_allclose(float(schedule(5)), 0.05, rtol=1e-5)
    np.testing.assert_allclose(float(schedule(20)), 0.05, rtol=1e-5)  # halfway through the decay
    np.testing.assert_allclose(float(schedule(30)), 0.0, atol=1e-7)


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*segment*.toml")) + sorted(RECIPES.glob("ade20k_*.toml")), ids=lambda p: p.name)
def test_shipped_recipes_load(path):
    config = load_segmentation_recipe(path)
    assert config.task == "segmentation"
    if path.name.startswith("ade20k_"):
        assert config.model.output_stride == 8 and config.data.source == "ade20k"
        assert config.meta.paper_table == "Table 9"
        assert config.meta.expected_mean_iou is not None or path.stem.endswith("_gluon")  # no paper row for the pretrained tag


TABLE_9 = {  # recipe: (paper row, backbone, backbone run folder, pixAcc, mIoU) from the paper's Table 9
    "ade20k_fcn_r50b_standard": ("B-standard", "resnet50b", "baseline_resnet50b", 78.08, 37.05),
    "ade20k_fcn_r50d_efficient": ("D-efficient", "resnet50d", "table6_efficient", 78.88, 38.88),
    "ade20k_fcn_r50d_cosine": ("+ cosine", "resnet50d", "table6_cosine", 79.25, 39.33),
    "ade20k_fcn_r50d_smooth": ("+ smooth", "resnet50d", "table6_label_smoothing", 78.64, 38.75),
    "ade20k_fcn_r50d_distill": ("+ distill", "resnet50d", "table6_distill", 78.97, 38.90),
    "ade20k_fcn_r50d_mixup": ("+ mixup", "resnet50d", "table6_mixup", 78.47, 37.99),
    "ade20k_fcn_r50d_distill_mixup": ("+ distill w. mixup", "resnet50d", "table6_distill_mixup", 78.72, 38.40),
}


def test_one_recipe_per_table_9_row_with_the_papers_numbers_and_gluoncv_setup():
    # ade20k_fcn_r50d_gluon starts from a pretrained tag, not a Table 6 run (tests/models/test_pretrained.py).
    assert sorted(p.stem for p in RECIPES.glob("ade20k_*.toml") if not p.stem.endswith("_gluon")) == sorted(TABLE_9)
    for name, (row, backbone, backbone_run, pixel_accuracy, mean_iou) in TABLE_9.items():
        config = load_segmentation_recipe(RECIPES / f"{name}.toml")
        assert config.meta.paper_row == row, name
        assert (config.meta.expected_pixel_accuracy, config.meta.expected_mean_iou) == (pixel_accuracy, mean_iou), name
        assert config.model.backbone == backbone, name
        assert config.model.backbone_weights == f"runs/{backbone_run}/model.weights.h5", name
        assert (BUNDLED_RECIPES / f"{backbone_run.replace('baseline_resnet50b', 'baseline')}.toml").is_file(), name
        # The rows differ only in the backbone: GluonCV's FCN setup on ADE20K.
        assert (config.model.output_stride, config.model.aux, config.model.aux_weight) == (8, True, 0.2), name
        assert (config.train.base_size, config.train.crop_size, config.train.scale_range) == (520, 480, [0.5, 2.0])
        assert (config.train.batch_size, config.train.epochs, config.optimizer.lr_per_256) == (16, 120, 0.16)
        assert (config.schedule.kind, config.eval.flip, config.eval.scales[-1]) == ("poly", True, 1.75), name


def test_recipe_errors_name_the_key(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('task = "segmentation"\n[train]\ncrop = 3\n')
    with pytest.raises(UserError, match=r"train\.crop: unknown key"):
        load_segmentation_recipe(recipe)
    recipe.write_text('task = "segmentation"\n[data]\nsource = "folder"\n')
    with pytest.raises(UserError, match=r"data\.class_names"):
        load_segmentation_recipe(recipe)
    recipe.write_text('task = "segmentation"\n')
    with pytest.raises(UserError, match=r"train\.scale_range"):
        load_segmentation_recipe(recipe, ["train.scale_range=[2.0, 1.0]"])
