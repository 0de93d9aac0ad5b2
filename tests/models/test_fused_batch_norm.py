"""The fused `BatchNormalization` (kresnet.models.fused_batch_norm) against its reference, Keras' generic `BatchNormalization`.

Outputs (training and inference), gradients w.r.t. the input, gamma and beta, the moving statistics
after several training steps, a frozen layer, both channel axes, float32 and mixed_bfloat16; and
whole models: weights trained a step with one layer load into a model of the other and evaluate to
the same outputs. On JAX the fused layer is the generic layer (XLA fuses it; docs/speed.md), so the
same tests check that the subclass changes nothing there.
"""

import keras
import numpy as np
import pytest

import kresnet
from kresnet.models import fused_batch_norm
from kresnet.tricks.zero_gamma_init import residual_batchnorms

SHAPE_LAST = (4, 6, 5, 8)  # batch, height, width, channels
# float32 rounding of values of order 1 after a handful of reductions over 120 values per channel.
FLOAT32_TOLERANCE = dict(rtol=1e-5, atol=2e-6)
# One bfloat16 step (8 significant bits) of the bfloat16 outputs and input gradients.
BFLOAT16_TOLERANCE = dict(rtol=2**-7, atol=2**-7)
STEPS = 3


@pytest.fixture(params=["float32", "mixed_bfloat16"])
def policy(request):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy(previous)


def _numpy(tensor):
    return keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32"))


def _pair(axis, shape):
    """A fused and a generic layer with the same random gamma, beta and moving statistics."""
    rng = np.random.default_rng(1)
    channels = shape[axis]
    weights = [rng.uniform(0.5, 1.5, channels), rng.normal(0.0, 0.5, channels),
               rng.normal(0.0, 0.5, channels), rng.uniform(0.5, 2.0, channels)]
    layers = []
    for cls in (fused_batch_norm.BatchNormalization, keras.layers.BatchNormalization):
        layer = cls(axis=axis, momentum=0.9, epsilon=1e-5)
        layer.build(shape)
        layer.set_weights([w.astype("float32") for w in weights])
        layers.append(layer)
    return layers


def _batches(axis, count=STEPS):
    rng = np.random.default_rng(0)
    shape = SHAPE_LAST if axis == -1 else (SHAPE_LAST[0], SHAPE_LAST[3], SHAPE_LAST[1], SHAPE_LAST[2])
    return [rng.normal(1.0, 2.0, shape).astype("float32") for _ in range(count)]


def _tolerance(policy):
    return BFLOAT16_TOLERANCE if policy == "mixed_bfloat16" else FLOAT32_TOLERANCE


def _gradients(layer, x, upstream, training):
    """(d sum(outputs * upstream) / d x, / d gamma, / d beta) on the current backend."""
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        def loss(trainable, inputs):
            outputs, _ = layer.stateless_call(trainable, [v.value for v in layer.non_trainable_variables], inputs,
                                              training=training)
            return keras.ops.sum(keras.ops.cast(outputs, "float32") * upstream)

        trainable = [v.value for v in layer.trainable_variables]
        weight_gradients, input_gradient = jax.grad(loss, argnums=(0, 1))(trainable, keras.ops.convert_to_tensor(x))
        return [input_gradient, *weight_gradients]
    if backend == "torch":
        import torch

        inputs = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        loss = torch.sum(layer(inputs, training=training).float() * torch.as_tensor(upstream))
        return torch.autograd.grad(loss, [inputs, layer.gamma.value, layer.beta.value])
    import tensorflow as tf

    inputs = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        loss = tf.reduce_sum(tf.cast(layer(inputs, training=training), tf.float32) * upstream)
    return tape.gradient(loss, [inputs, layer.gamma.value, layer.beta.value])


@pytest.mark.parametrize("axis", [-1, 1])
def test_training_outputs_and_moving_statistics_equal_the_generic_layer(axis, policy):
    batches = _batches(axis)
    fused, generic = _pair(axis, batches[0].shape)
    start = _numpy(generic.moving_variance)
    for x in batches:
        x = keras.ops.cast(x, fused.compute_dtype)
        np.testing.assert_allclose(_numpy(fused(x, training=True)), _numpy(generic(x, training=True)), **_tolerance(policy))
    assert np.abs(_numpy(generic.moving_variance) - start).max() > 0.1, "the steps moved the statistics"
    for name in ("moving_mean", "moving_variance"):
        # Statistics stay float32 under mixed precision, so they agree to float32 rounding on every policy.
        assert getattr(fused, name).dtype == "float32"
        np.testing.assert_allclose(_numpy(getattr(fused, name)), _numpy(getattr(generic, name)), **FLOAT32_TOLERANCE)


@pytest.mark.parametrize("axis", [-1, 1])
def test_inference_outputs_equal_the_generic_layer(axis, policy):
    x = _batches(axis, 1)[0]
    fused, generic = _pair(axis, x.shape)
    x = keras.ops.cast(x, fused.compute_dtype)
    outputs = fused(x, training=False)
    assert keras.backend.standardize_dtype(outputs.dtype) == fused.compute_dtype
    np.testing.assert_allclose(_numpy(outputs), _numpy(generic(x, training=False)), **_tolerance(policy))


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("axis", [-1, 1])
def test_gradients_equal_the_generic_layer(axis, training, policy):
    x = _batches(axis, 1)[0]
    upstream = np.random.default_rng(2).normal(size=x.shape).astype("float32")
    fused, generic = _pair(axis, x.shape)
    x = keras.ops.cast(x, fused.compute_dtype)
    names = ("input", "gamma", "beta")
    for name, got, expected in zip(names, _gradients(fused, x, upstream, training), _gradients(generic, x, upstream, training)):
        # The input gradient is in the compute dtype; gamma's and beta's are float32 sums of it.
        tolerance = _tolerance(policy) if name == "input" else dict(rtol=1e-4, atol=1e-3 if policy != "float32" else 1e-4)
        np.testing.assert_allclose(_numpy(got), _numpy(expected), err_msg=name, **tolerance)


@pytest.mark.parametrize("axis", [-1, 1])
def test_a_frozen_layer_normalises_with_its_moving_statistics_in_training(axis):
    x = _batches(axis, 1)[0]
    fused, generic = _pair(axis, x.shape)
    fused.trainable = generic.trainable = False
    before = _numpy(fused.moving_mean), _numpy(fused.moving_variance)
    np.testing.assert_allclose(_numpy(fused(x, training=True)), _numpy(generic(x, training=False)), **FLOAT32_TOLERANCE)
    np.testing.assert_array_equal(_numpy(fused.moving_mean), before[0])
    np.testing.assert_array_equal(_numpy(fused.moving_variance), before[1])


def test_one_value_per_channel_in_training_falls_back_to_the_generic_layer():
    x = np.random.default_rng(0).normal(size=(1, 1, 1, 8)).astype("float32")
    fused, generic = _pair(-1, x.shape)
    np.testing.assert_allclose(_numpy(fused(x, training=True)), _numpy(generic(x, training=True)), **FLOAT32_TOLERANCE)


def test_models_build_the_fused_layer_unless_told_not_to():
    tiny = dict(stage_depths=[1, 1, 1, 1], stage_widths=[4, 4, 4, 4], stem_width=4, num_classes=3)
    fused = kresnet.create_model("resnet18d", **tiny)
    generic = kresnet.create_model("resnet18d", fused_batch_norm=False, **tiny)
    fused_layers = [layer for layer in fused.backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert fused_layers and all(isinstance(layer, fused_batch_norm.BatchNormalization) for layer in fused_layers)
    assert not any(isinstance(layer, fused_batch_norm.BatchNormalization) for layer in generic.backbone.layers)
    assert [layer.name for layer in fused_layers] == [
        layer.name for layer in generic.backbone.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert fused.backbone.get_config()["fused_batch_norm"] is True
    assert generic.backbone.get_config()["fused_batch_norm"] is False
    # The zero-gamma trick finds the fused layers as it finds Keras' own.
    assert [layer.name for layer in residual_batchnorms(fused)] == [layer.name for layer in residual_batchnorms(generic)] != []


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("trained_fused", [True, False], ids=["fused_to_generic", "generic_to_fused"])
def test_weights_trained_with_one_layer_evaluate_the_same_with_the_other(tmp_path, trained_fused, data_format):
    if data_format == "channels_first" and keras.config.backend() == "tensorflow":
        pytest.skip("TensorFlow's CPU convolutions take only channels_last (kresnet refuses channels_first there)")
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    shape = [32, 32, 3]
    if data_format == "channels_first":
        images, shape = np.ascontiguousarray(images.transpose(0, 3, 1, 2)), [3, 32, 32]
    labels = np.eye(3, dtype="float32")[[0, 1, 2, 0]]

    def build(fused):
        keras.utils.set_random_seed(0)
        model = kresnet.create_model(
            "resnet18d", stage_depths=[1, 1, 1, 1], stage_widths=[8, 8, 8, 8], stem_width=8, num_classes=3,
            input_shape=shape, data_format=data_format, fused_batch_norm=fused,
        )
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.CategoricalCrossentropy(from_logits=True))
        return model

    trained, other = build(trained_fused), build(not trained_fused)
    reference = build(not trained_fused)
    for _ in range(2):
        trained.train_on_batch(images, labels)
        reference.train_on_batch(images, labels)
    path = tmp_path / "model.weights.h5"
    trained.save_weights(path)
    other.load_weights(path)
    expected = _numpy(trained.predict_on_batch(images))
    np.testing.assert_allclose(_numpy(other.predict_on_batch(images)), expected, rtol=1e-5, atol=1e-5)
    # Trained with the other layer from the same start, the weights are the same to float32 rounding.
    np.testing.assert_allclose(_numpy(reference.predict_on_batch(images)), expected, rtol=1e-3, atol=1e-4)


@pytest.mark.skipif(keras.config.backend() == "jax", reason="JAX keeps Keras' generic arithmetic (XLA fuses it)")
@pytest.mark.parametrize("axis", [-1, 1])
def test_torch_and_tensorflow_take_the_fused_kernel(axis, monkeypatch):
    def generic_call(*args, **kwargs):
        raise AssertionError("the generic BatchNormalization.call ran")

    x = _batches(axis, 1)[0]
    fused, _ = _pair(axis, x.shape)
    monkeypatch.setattr(keras.layers.BatchNormalization, "call", generic_call)
    fused(x, training=True)
    fused(x, training=False)
