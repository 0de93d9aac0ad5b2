"""`precision = "auto"`: bfloat16 on bf16 accelerators, float16 on older GPUs, float32 on CPU; explicit names pass through."""

import keras
import pytest

from kresnet.errors import UserError
from kresnet.tricks import low_precision as precision
from kresnet.classification.config import classification_recipe_from_dict


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


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_with_float32_weights_and_logits(policy):
    import numpy as np

    from kresnet.classification.build import build_training_model
    from tests.training_helpers import tiny_data, tiny_recipe

    model, classifier = build_training_model(tiny_recipe(train={"precision": policy}), steps_per_epoch=4)
    compute = policy.removeprefix("mixed_")
    assert classifier.dtype_policy.compute_dtype == compute
    assert {v.dtype for v in classifier.trainable_variables} == {"float32"}  # master weights stay float32
    assert classifier.output.dtype == "float32"
    # float16 needs loss scaling (Keras' dynamic LossScaleOptimizer); bfloat16 has float32's range and does not.
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
    data = tiny_data()
    losses = model.fit(data.train(0), steps_per_epoch=4, epochs=2, verbose=0).history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    applied = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    # An overflowing float16 batch applies no update (and halves the loss scale); bfloat16 applies all 8.
    assert applied == 8 if policy == "mixed_bfloat16" else 0 < applied <= 8
