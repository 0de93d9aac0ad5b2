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


def _fake_devices(monkeypatch, kind, capability):
    """Make the active backend's own device query report one device of `kind` ("cpu", "gpu", "tpu")."""
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        platform = "gpu" if kind == "gpu" else kind
        device = type("FakeDevice", (), {"platform": platform, "compute_capability": capability})()
        monkeypatch.setattr(jax, "devices", lambda *args: [device])
    elif backend == "torch":
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: kind == "gpu")
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: capability is not None and float(capability) >= 8.0)
    else:
        import tensorflow as tf

        gpus = ["/physical_device:GPU:0"] if kind == "gpu" else []
        monkeypatch.setattr(tf.config, "list_physical_devices", lambda device_type=None: gpus if device_type == "GPU" else [])
        major, minor = (int(part) for part in (capability or "0.0").split("."))
        monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda device: {"compute_capability": (major, minor)})


DEVICES = [("cpu", None, "float32"), ("gpu", "9.0", "mixed_bfloat16"), ("gpu", "8.0", "mixed_bfloat16"), ("gpu", "7.5", "mixed_float16")]


@pytest.mark.parametrize("kind, capability, expected", DEVICES)
def test_auto_reads_the_backends_device_list_and_sets_the_policy(monkeypatch, kind, capability, expected):
    # The machine's own devices do not matter: each backend's device query is faked.
    _fake_devices(monkeypatch, kind, capability)
    assert precision.accelerator()[0] == kind
    try:
        assert precision.set_precision("auto") == expected
        assert keras.config.dtype_policy().name == expected
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
