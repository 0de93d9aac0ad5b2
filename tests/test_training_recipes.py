"""Every recipe in recipes/ parses, names its paper row, and builds (model + optimizer) without training."""

import keras
import pytest

from kresnet.bundled_recipes import BUNDLED_RECIPES
from kresnet.training.build import build_classifier, build_training_model, learning_rate_schedule
from kresnet.training.config import load_classification_recipe
from kresnet.training.distillation import DistillationModel
from kresnet.training.optimizer import NesterovL2SGD

RECIPES = sorted(BUNDLED_RECIPES.glob("*.toml"))
TINY = ["model.stage_depths=[1, 1, 1, 1]", "model.stage_widths=[4, 4, 4, 4]", "model.num_classes=4"]


def test_the_paper_rows_are_all_there():
    names = {path.stem for path in RECIPES}
    expected = {"r50d", "baseline", "demo", "teacher_r152d"}
    expected |= {f"table4_{n}" for n in ["linear_scaling", "warmup", "zero_gamma", "no_bias_decay", "fp16"]}
    expected |= {f"table5_resnet50{v}" for v in ["", "b", "c", "d"]}
    expected |= {f"table6_{n}" for n in ["efficient", "cosine", "label_smoothing", "distill", "mixup", "distill_mixup"]}
    assert expected <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
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
