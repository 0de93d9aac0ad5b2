"""Every recipe in recipes/ parses, names its paper row and numbers, changes only its own trick, and builds without training."""

import keras
import pytest

from kresnet.bundled_recipes import BUNDLED_RECIPES
from kresnet.recipe import recipe_to_dict
from kresnet.classification.build import build_classifier, build_training_model
from kresnet.runs.task import learning_rate_schedule
from kresnet.classification.config import load_classification_recipe
from kresnet.tricks.distillation import DistillationModel
from kresnet.tricks.optimizer import NesterovL2SGD

RECIPES = sorted(BUNDLED_RECIPES.glob("*.toml"))
TINY = ["model.stage_depths=[1, 1, 1, 1]", "model.stage_widths=[4, 4, 4, 4]", "model.num_classes=4"]


def test_the_paper_rows_are_all_there():
    names = {path.stem for path in RECIPES}
    expected = {"r50d", "baseline", "demo", "teacher_r152d"}
    expected |= {f"table4_{n}" for n in ["linear_scaling", "warmup", "zero_gamma", "no_bias_decay", "fp16"]}
    expected |= {f"table5_resnet50{v}" for v in ["", "b", "c", "d"]}
    expected |= {f"table6_{n}" for n in ["efficient", "cosine", "label_smoothing", "distill", "mixup", "distill_mixup"]}
    assert expected <= names


# `finetune` reproduces no paper row and starts from Hub weights: tests/classification/test_finetune.py runs it.
PAPER_RECIPES = [path for path in RECIPES if path.stem != "finetune"]


@pytest.mark.parametrize("path", PAPER_RECIPES, ids=lambda p: p.stem)
def test_recipe_parses_and_builds(path):
    config = load_classification_recipe(path, TINY)
    assert config.meta.paper_table and config.meta.paper_row, "every recipe names the paper row it reproduces"
    teacher = None
    if config.distillation.teacher_model:
        assert config.distillation.temperature == 20.0
        teacher = build_classifier(config.model)  # stands in for the trained teacher file
    model, classifier = build_training_model(config, steps_per_epoch=10, teacher=teacher)
    assert isinstance(model, DistillationModel) == (teacher is not None)
    optimizer = model.optimizer
    if config.train.precision == "mixed_float16":
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        optimizer = optimizer.inner_optimizer
    assert isinstance(optimizer, NesterovL2SGD) and optimizer.nesterov
    assert classifier.dtype_policy.name == config.train.precision
    schedule = learning_rate_schedule(config, steps_per_epoch=10)
    peak_step = int(config.schedule.warmup_epochs * 10)
    peak = config.optimizer.lr_per_256 * config.train.batch_size / 256
    assert float(keras.ops.convert_to_numpy(schedule(peak_step))) == pytest.approx(peak, rel=1e-5)
    assert tuple(classifier.output.shape) == (None, 4) and classifier.output.dtype == "float32"


# Tables 4, 5 and 6 of He et al. 2019 (arXiv v2): (table, top-1, top-5) per recipe.
PAPER = {
    "baseline": ("Table 4", 75.87, 92.70),
    "table4_linear_scaling": ("Table 4", 75.17, 92.54),
    "table4_warmup": ("Table 4", 75.93, 92.90),
    "table4_zero_gamma": ("Table 4", 76.37, 92.93),
    "table4_no_bias_decay": ("Table 4", 76.03, 92.86),
    "table4_fp16": ("Table 4", 76.21, 92.97),
    "table5_resnet50": ("Table 5", 76.21, 92.97),
    "table5_resnet50b": ("Table 5", 76.66, 93.28),
    "table5_resnet50c": ("Table 5", 76.87, 93.48),
    "table5_resnet50d": ("Table 5", 77.16, 93.52),
    "table6_efficient": ("Table 6", 77.16, 93.52),
    "table6_cosine": ("Table 6", 77.91, 93.81),
    "table6_label_smoothing": ("Table 6", 78.31, 94.09),
    "table6_distill": ("Table 6", 78.67, 94.36),
    "table6_mixup": ("Table 6", 79.15, 94.58),
    "table6_distill_mixup": ("Table 6", 79.29, 94.63),
    "r50d": ("Table 6", 79.29, 94.63),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_meta_names_the_paper_row_and_its_numbers(name):
    meta = load_classification_recipe(BUNDLED_RECIPES / f"{name}.toml").meta
    assert (meta.paper_table, meta.expected_top1, meta.expected_top5) == PAPER[name]


def _settings(name):
    tables = recipe_to_dict(load_classification_recipe(BUNDLED_RECIPES / f"{name}.toml"))
    return {f"{table}.{key}": value for table, values in tables.items() if table != "meta" for key, value in values.items()}


# Each paper row is its predecessor plus exactly its own trick.
ROW_CHANGES = [
    ("baseline", "table4_linear_scaling", {"train.batch_size": 1024}),
    ("table4_linear_scaling", "table4_warmup", {"schedule.warmup_epochs": 5.0}),
    ("table4_warmup", "table4_zero_gamma", {"model.zero_gamma": True}),
    ("table4_zero_gamma", "table4_no_bias_decay", {"optimizer.no_bias_decay": True}),
    ("table4_no_bias_decay", "table4_fp16", {"train.precision": "mixed_float16"}),
    ("table4_fp16", "table5_resnet50", {}),
    ("table5_resnet50", "table5_resnet50b", {"model.name": "resnet50b"}),
    ("table5_resnet50b", "table5_resnet50c", {"model.name": "resnet50c"}),
    ("table5_resnet50c", "table5_resnet50d", {"model.name": "resnet50d"}),
    ("table5_resnet50d", "table6_efficient", {}),
    ("table6_efficient", "table6_cosine", {"schedule.kind": "cosine"}),
    ("table6_cosine", "table6_label_smoothing", {"tricks.label_smoothing": 0.1}),
    ("table6_label_smoothing", "table6_distill", {"distillation.teacher_model": "resnet152d",
                                                  "distillation.teacher_weights": "runs/teacher_r152d/model.weights.h5"}),
    ("table6_label_smoothing", "table6_mixup", {"tricks.mixup_alpha": 0.2, "train.epochs": 200}),
    ("table6_mixup", "table6_distill_mixup", {"distillation.teacher_model": "resnet152d",
                                              "distillation.teacher_weights": "runs/teacher_r152d/model.weights.h5"}),
    ("table6_distill_mixup", "r50d", {}),
    ("table6_label_smoothing", "teacher_r152d", {"model.name": "resnet152d"}),
]


@pytest.mark.parametrize("before, after, changes", ROW_CHANGES, ids=[row[1] for row in ROW_CHANGES])
def test_each_row_adds_exactly_its_trick(before, after, changes):
    old, new = _settings(before), _settings(after)
    assert {key: value for key, value in new.items() if old.get(key) != value} == changes
    assert set(old) - set(new) == set()
