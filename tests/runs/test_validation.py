"""Checks that come before any heavy work: model names at recipe load, the global batch against the data."""

import subprocess
import sys

import pytest

from kresnet.errors import UserError
from kresnet.runs.fit import epoch_steps
from kresnet.classification.config import load_classification_recipe


def test_an_unknown_model_name_is_caught_at_recipe_load_naming_key_and_recipe():
    from kresnet.bundled_recipes import resolve_recipe
    from kresnet.transfer.detection.config import load_detection_recipe

    demo = resolve_recipe("demo")
    with pytest.raises(UserError, match=rf"^{demo}: model\.name: expected one of 20 names such as .*got 'resnet51'$"):
        load_classification_recipe(demo, ["model.name=resnet51"])
    with pytest.raises(UserError, match=r"distillation\.teacher_model: expected a name from `kresnet models`"):
        load_classification_recipe(demo, ["distillation.teacher_model=resnet51", "distillation.teacher_weights=x"])
    with pytest.raises(UserError, match=r"model\.backbone: expected one of 20 names"):
        load_detection_recipe(resolve_recipe("demo_detect", "transfer"), ["model.backbone=resnet51"])


def test_loading_a_recipe_imports_no_framework():
    code = ("import sys; from kresnet.classification.config import load_classification_recipe as load; "
            "from kresnet.bundled_recipes import resolve_recipe; load(resolve_recipe('demo')); "
            "print(sorted({'keras', 'tensorflow', 'torch', 'jax'} & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_a_global_batch_larger_than_the_training_set_is_a_clear_error():
    with pytest.raises(UserError, match=r"train\.batch_size: the global batch \(64\) is larger than the 40 training images"):
        epoch_steps(40, 64)
    with pytest.raises(UserError, match=r"larger than the 40 training images"):
        epoch_steps(40, 64, steps_per_epoch=10)
    assert epoch_steps(40, 16) == 2 and epoch_steps(40, 16, steps_per_epoch=5) == 5
    with pytest.raises(UserError, match="train.steps_per_epoch: the training set does not state its size"):
        epoch_steps(None, 16)
