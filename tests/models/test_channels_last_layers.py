"""kresnet's `Conv2D`, `MaxPooling2D` and `AveragePooling2D` (kresnet.models.channels_last_layers)
against their references, Keras' own layers.

On PyTorch with channels_last inputs the layers call `F.conv2d` / `F.max_pool2d` / `F.avg_pool2d`
on permuted views instead of Keras' copies; the kernels and the memory they read are the same, so
outputs and gradients must be equal, bit for bit. Every other backend and layout runs Keras'
path, which the same tests check is unchanged. Whole models: weights move between the two both ways.
"""

import keras
import numpy as np
import pytest

import kresnet
from kresnet.models import channels_last_layers

SHAPE = (2, 13, 11, 6)  # odd sizes: stride-2 outputs round down as Keras' do
CASES = {
    "3x3 same": dict(kernel_size=3, padding="same"),
    "3x3 stride 2 valid": dict(kernel_size=3, strides=2),
    "1x1": dict(kernel_size=1),
    "1x1 stride 2": dict(kernel_size=1, strides=2),
    "3x3 same dilated": dict(kernel_size=3, padding="same", dilation_rate=2),
    "7x7 stride 2 valid, bias": dict(kernel_size=7, strides=2, use_bias=True),
    "2x2 same (uneven: Keras' path)": dict(kernel_size=2, padding="same"),
    "3x3 stride 2 same (uneven: Keras' path)": dict(kernel_size=3, strides=2, padding="same"),
    "grouped": dict(kernel_size=3, padding="same", groups=2),
}

POOL_CASES = {
    "max 3x3 stride 2 valid (the stem)": (channels_last_layers.MaxPooling2D, keras.layers.MaxPooling2D,
                                          dict(pool_size=3, strides=2)),
    "max 1x1 stride 2 (FPN's P6)": (channels_last_layers.MaxPooling2D, keras.layers.MaxPooling2D,
                                    dict(pool_size=1, strides=2)),
    "max 3x3 same": (channels_last_layers.MaxPooling2D, keras.layers.MaxPooling2D,
                     dict(pool_size=3, strides=1, padding="same")),
    "average 2x2 stride 2 same (ResNet-D's shortcut)": (channels_last_layers.AveragePooling2D, keras.layers.AveragePooling2D,
                                                        dict(pool_size=2, strides=2, padding="same")),
    "average 3x3 same": (channels_last_layers.AveragePooling2D, keras.layers.AveragePooling2D,
                         dict(pool_size=3, strides=1, padding="same")),
    "average 2x2 stride 1 same (uneven: Keras' path)": (channels_last_layers.AveragePooling2D,
                                                       keras.layers.AveragePooling2D,
                                                       dict(pool_size=2, strides=1, padding="same")),
}
# Even sizes: no padding for the shortcut's pool; odd sizes (SHAPE): Keras pads it at the end, its own path.
POOL_SHAPES = {"even": (2, 12, 10, 6), "odd": SHAPE}


def _numpy(tensor):
    return keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32"))


def _pair(options, data_format, shape):
    options = {"use_bias": False, **options}
    rng = np.random.default_rng(1)
    layers = [cls(8, data_format=data_format, **options) for cls in (channels_last_layers.Conv2D, keras.layers.Conv2D)]
    for layer in layers:
        layer.build(shape)
    weights = [rng.normal(size=w.shape).astype("float32") for w in layers[1].get_weights()]
    for layer in layers:
        layer.set_weights(weights)
    return layers


def _outputs_and_gradients(layer, x, upstream):
    """(outputs, d sum(outputs * upstream) / d inputs, / d each weight) on the current backend."""
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        def loss(weights, inputs):
            outputs, _ = layer.stateless_call(weights, [], inputs)
            return keras.ops.sum(outputs * upstream), outputs

        (_, outputs), (weight_grads, input_grad) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
            [v.value for v in layer.trainable_variables], keras.ops.convert_to_tensor(x))
        return outputs, [input_grad, *weight_grads]
    if backend == "torch":
        import torch

        inputs = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        outputs = layer(inputs)
        grads = torch.autograd.grad(torch.sum(outputs * torch.as_tensor(upstream)),
                                    [inputs, *[v.value for v in layer.trainable_variables]])
        return outputs, list(grads)
    import tensorflow as tf

    inputs = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs)
        loss = tf.reduce_sum(outputs * upstream)
    return outputs, tape.gradient(loss, [inputs, *[v.value for v in layer.trainable_variables]])


def _data_formats():
    formats = ["channels_last"]
    if keras.config.backend() != "tensorflow":  # TensorFlow's CPU convolutions are NHWC only
        formats.append("channels_first")
    return formats


@pytest.mark.parametrize("data_format", _data_formats())
@pytest.mark.parametrize("case", list(CASES))
def test_outputs_and_gradients_equal_keras_conv2d(case, data_format):
    rng = np.random.default_rng(0)
    shape = SHAPE if data_format == "channels_last" else (SHAPE[0], SHAPE[3], SHAPE[1], SHAPE[2])
    x = rng.normal(size=shape).astype("float32")
    ours, reference = _pair(CASES[case], data_format, shape)
    upstream = rng.normal(size=reference.compute_output_shape(shape)).astype("float32")
    expected, expected_grads = _outputs_and_gradients(reference, x, upstream)
    got, got_grads = _outputs_and_gradients(ours, x, upstream)
    # The same kernel on the same memory: equal bits, not just close.
    np.testing.assert_array_equal(_numpy(got), _numpy(expected))
    for index, (g, e) in enumerate(zip(got_grads, expected_grads)):
        np.testing.assert_array_equal(_numpy(g), _numpy(e), err_msg=f"gradient {index}")


@pytest.mark.parametrize("sizes", list(POOL_SHAPES))
@pytest.mark.parametrize("data_format", _data_formats())
@pytest.mark.parametrize("case", list(POOL_CASES))
def test_pool_outputs_and_gradients_equal_keras_pools(case, data_format, sizes):
    ours_class, keras_class, options = POOL_CASES[case]
    rng = np.random.default_rng(0)
    shape = POOL_SHAPES[sizes]
    if data_format == "channels_first":
        shape = (shape[0], shape[3], shape[1], shape[2])
    x = rng.normal(size=shape).astype("float32")
    ours, reference = (cls(data_format=data_format, **options) for cls in (ours_class, keras_class))
    upstream = rng.normal(size=reference.compute_output_shape(shape)).astype("float32")
    expected, (expected_grad,) = _outputs_and_gradients(reference, x, upstream)
    got, (got_grad,) = _outputs_and_gradients(ours, x, upstream)
    np.testing.assert_array_equal(_numpy(got), _numpy(expected))
    np.testing.assert_array_equal(_numpy(got_grad), _numpy(expected_grad))


def _copies(layer, x):
    """aten::copy_ calls of a forward and backward pass (an NHWC upstream gradient, as in a model:
    `.sum()` alone would hand back a broadcast gradient that any kernel must copy first)."""
    import torch

    upstream = torch.randn(tuple(layer.compute_output_shape(tuple(x.shape))))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        (layer(x) * upstream).sum().backward()
    return sum(event.count for event in profile.key_averages() if event.key == "aten::copy_")


@pytest.mark.skipif(keras.config.backend() != "torch", reason="the copy-free path is PyTorch's; other backends run Keras' pools")
@pytest.mark.parametrize("case", ["max 3x3 stride 2 valid (the stem)", "average 2x2 stride 2 same (ResNet-D's shortcut)"])
def test_torch_channels_last_pools_copy_nothing(case):
    import torch

    ours_class, keras_class, options = POOL_CASES[case]
    x = torch.randn(POOL_SHAPES["even"], requires_grad=True)
    counts = {label: _copies(cls(**options), x) for label, cls in (("ours", ours_class), ("keras", keras_class))}
    assert counts["keras"] >= 1, f"Keras' pool no longer copies its input ({counts}); this path may be retired"
    assert counts["ours"] == 0, counts


@pytest.mark.skipif(keras.config.backend() != "torch", reason="the copy-free path is PyTorch's; other backends run Keras' conv")
def test_torch_channels_last_path_copies_no_activation():
    import torch

    x = torch.randn(SHAPE, requires_grad=True)
    counts = {}
    for label, cls in (("ours", channels_last_layers.Conv2D), ("keras", keras.layers.Conv2D)):
        layer = cls(8, 3, padding="same", use_bias=False)
        layer.build(SHAPE)
        counts[label] = _copies(layer, x)
    assert counts["keras"] >= 2, f"Keras' conv no longer copies its input ({counts}); this module may be retired"
    # No activation copy, no kernel copy forward: the one left is PyTorch's convolution_backward
    # reordering the weight for itself, as it does in timm's step.
    assert counts["ours"] <= 1, counts


@pytest.mark.skipif(keras.config.backend() != "torch", reason="kernel memory layouts are PyTorch's; Keras' variables elsewhere")
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_torch_kernel_memory_is_in_the_convolution_order_and_stays_there(data_format, tmp_path):
    import torch

    from kresnet.tricks.optimizer import NesterovL2SGD

    shape = (2, 10, 10, 6) if data_format == "channels_last" else (2, 6, 10, 10)
    memory_format = torch.channels_last if data_format == "channels_last" else torch.contiguous_format
    model = keras.Sequential([keras.Input(shape[1:]),
                              channels_last_layers.Conv2D(8, 3, padding="same", data_format=data_format),
                              keras.layers.GlobalAveragePooling2D(data_format=data_format)])
    kernel = model.layers[0].kernel

    def in_convolution_order():
        return kernel.value.permute(3, 2, 0, 1).is_contiguous(memory_format=memory_format)

    assert tuple(kernel.shape) == (3, 3, shape[-1] if data_format == "channels_last" else shape[1], 8)
    assert in_convolution_order()
    model.compile(optimizer=NesterovL2SGD(0.1, l2=1e-4), loss="mse")
    x, y = np.random.default_rng(0).normal(size=shape).astype("float32"), np.ones((2, 8), "float32")
    model.train_on_batch(x, y)
    # In-place updates keep the layout, and the momentum buffer shares it (mixed layouts are slow).
    buffer = model.optimizer.momentum_buffers[model.optimizer._get_variable_index(kernel)]
    assert in_convolution_order() and buffer.value.stride() == kernel.value.stride()
    model.save_weights(tmp_path / "m.weights.h5")
    saved = kernel.numpy().copy()
    kernel.assign(np.zeros(kernel.shape, "float32"))
    model.load_weights(tmp_path / "m.weights.h5")
    assert in_convolution_order()
    np.testing.assert_array_equal(kernel.numpy(), saved)


@pytest.mark.skipif(keras.config.backend() != "torch", reason="kernel memory layouts are PyTorch's; Keras' variables elsewhere")
def test_torch_kernel_with_lora_is_laid_out_too():
    import torch

    conv = channels_last_layers.Conv2D(8, 3, padding="same", use_bias=False, lora_rank=2)
    conv.build((2, 10, 10, 6))  # `conv.kernel` is then kernel + lora_a @ lora_b, a tensor; the variable is `_kernel`
    assert conv._kernel.value.permute(3, 2, 0, 1).is_contiguous(memory_format=torch.channels_last)


def test_training_equals_training_on_keras_layers():
    """Two steps of kresnet's optimizer on a model of these layers and on one of Keras' own, from the same weights."""
    from kresnet.tricks.optimizer import NesterovL2SGD

    tiny = dict(stage_depths=[1, 1, 1, 1], stage_widths=[8, 8, 8, 8], stem_width=8, num_classes=3, input_shape=[32, 32, 3])
    ours = kresnet.create_model("resnet18d", **tiny)
    with channels_last_layers.keras_layers():
        reference = kresnet.create_model("resnet18d", **tiny)
    reference.set_weights(ours.get_weights())
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    labels = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    for model in (ours, reference):
        model.compile(optimizer=NesterovL2SGD(0.1, l2=1e-4, no_bias_decay=True),
                      loss=keras.losses.CategoricalCrossentropy(from_logits=True))
        for _ in range(2):
            model.train_on_batch(images, labels)
    for got, expected in zip(ours.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(keras.config.backend() != "torch", reason="the copy-free path is PyTorch's")
def test_torch_path_is_taken_and_falls_back_where_keras_pads_unevenly(monkeypatch):
    calls = []
    original = keras.layers.Conv2D.convolution_op

    def counting(self, inputs, kernel):
        calls.append(self.name)
        return original(self, inputs, kernel)

    monkeypatch.setattr(keras.layers.Conv2D, "convolution_op", counting)
    even, uneven = (channels_last_layers.Conv2D(4, k, padding="same", name=n) for k, n in ((3, "even"), (2, "uneven")))
    x = np.ones(SHAPE, "float32")
    even(x)
    uneven(x)
    assert calls == ["uneven"]


@pytest.mark.skipif(keras.config.backend() != "torch", reason="the copy-free path is PyTorch's")
def test_torch_pool_path_is_taken_and_falls_back_where_keras_pads_unevenly(monkeypatch):
    calls = []
    original = keras.layers.AveragePooling2D.call

    def counting(self, inputs):
        calls.append(tuple(inputs.shape))
        return original(self, inputs)

    monkeypatch.setattr(keras.layers.AveragePooling2D, "call", counting)
    pool = channels_last_layers.AveragePooling2D(2, strides=2, padding="same")
    pool(np.ones(POOL_SHAPES["even"], "float32"))
    pool(np.ones(POOL_SHAPES["odd"], "float32"))
    assert calls == [POOL_SHAPES["odd"]]


def test_models_build_these_layers_and_weights_move_to_and_from_keras_layers(tmp_path):
    tiny = dict(stage_depths=[1, 1, 1, 1], stage_widths=[8, 8, 8, 8], stem_width=8, num_classes=3, input_shape=[32, 32, 3])
    keras.utils.set_random_seed(0)
    ours = kresnet.create_model("resnet18d", **tiny)
    with channels_last_layers.keras_layers():
        reference = kresnet.create_model("resnet18d", **tiny)
    convs = [layer for layer in ours.backbone.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(type(layer) is channels_last_layers.Conv2D for layer in convs)
    pools = [type(layer) for layer in ours.backbone.layers if isinstance(layer, keras.layers.Layer) and "Pooling2D" in type(layer).__name__]
    assert set(pools) == {channels_last_layers.MaxPooling2D, channels_last_layers.AveragePooling2D}, pools
    ours_classes = {channels_last_layers.Conv2D, channels_last_layers.MaxPooling2D, channels_last_layers.AveragePooling2D}
    assert not any(type(layer) in ours_classes for layer in reference.backbone.layers)
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    for source, target in ((ours, reference), (reference, ours)):
        rng = np.random.default_rng(len(target.weights))
        for variable in source.weights:
            variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype("float32"))
        path = tmp_path / "model.weights.h5"
        source.save_weights(path)
        target.load_weights(path)
        np.testing.assert_array_equal(_numpy(target.predict_on_batch(images)), _numpy(source.predict_on_batch(images)))
