"""`precision = "auto"`: bfloat16 on bf16 accelerators, float16 on older GPUs, float32 on CPU; explicit names pass through."""

import keras
import pytest

from kresnet.errors import UserError
from kresnet.training import precision
from kresnet.training.config import classification_recipe_from_dict


@pytest.mark.parametrize(
    "device,expected",
    [(("tpu", True), "mixed_bfloat16"), (("gpu", True), "mixed_bfloat16"), (("gpu", False), "mixed_float16"), (("cpu", False), "float32")],
)
def test_auto_follows_the_accelerator(device, expected):
    assert precision.resolve_precision("auto", device=device) == expected


def test_explicit_precisions_are_kept_whatever_the_device():
    for name in ("float32", "mixed_float16", "mixed_bfloat16"):
        assert precision.resolve_precision(name, device=("gpu", True)) == name


def test_this_cpu_machine_resolves_auto_to_float32_and_sets_the_policy():
    # The test machines have no accelerator: every backend must report the CPU.
    assert precision.accelerator() == ("cpu", False)
    try:
        assert precision.set_precision("auto") == "float32"
        assert keras.config.dtype_policy().name == "float32"
    finally:
        keras.config.set_dtype_policy("float32")


def test_recipes_accept_auto_and_reject_unknown_precisions():
    assert classification_recipe_from_dict({"train": {"precision": "auto"}}).train.precision == "auto"
    with pytest.raises(UserError, match=r"train\.precision: expected one of 'auto', 'float32', 'mixed_float16', 'mixed_bfloat16', got 'fp8'$"):
        classification_recipe_from_dict({"train": {"precision": "fp8"}})
