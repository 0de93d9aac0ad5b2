"""Structure of the backbones: variants, zero-gamma, dilation, dtype policies, data formats."""

import keras
import numpy as np
import pytest

import kresnet


def tf_has_gpu():
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


TINY = {"stage_widths": [4, 4, 8, 8], "stem_width": 4}


# Every name's structure is pinned by the exact parameter counts in test_registry; a forward
# pass through each variant at two depths (basic and bottleneck blocks) covers the code paths.
@pytest.mark.parametrize("name", [n for n in kresnet.list_models() if n.startswith(("resnet18", "resnet50"))])
def test_every_variant_classifies_a_small_batch(name):
    model = kresnet.create_model(name, num_classes=7, **TINY)
    logits = keras.ops.convert_to_numpy(model(np.random.rand(2, 32, 32, 3).astype("float32")))
    assert logits.shape == (2, 7)
    assert np.isfinite(logits).all()


def _layer_names(model):
    return {layer.name for layer in model.backbone.layers}


def test_variants_differ_only_where_the_paper_says():
    a, b, c, d = (kresnet.create_model(f"resnet50{v}", stage_depths=[1, 1, 1, 1], **TINY) for v in ("", "b", "c", "d"))
    conv = lambda model, name: model.backbone.get_layer(name)  # noqa: E731
    # A strides the first 1x1 conv of a downsampling block; B moves the stride to the 3x3.
    assert conv(a, "stage2_block0_conv1").strides == (2, 2) and conv(a, "stage2_block0_conv2").strides == (1, 1)
    assert conv(b, "stage2_block0_conv1").strides == (1, 1) and conv(b, "stage2_block0_conv2").strides == (2, 2)
    # C replaces the 7x7 stem with three 3x3 convs of 32, 32, 64 channels (here scaled by stem_width).
    assert conv(b, "stem_conv").kernel_size == (7, 7) and "stem_conv1" not in _layer_names(b)
    assert [conv(c, f"stem_conv{i}").filters for i in (1, 2, 3)] == [4, 4, 8]
    # D average-pools in the shortcut and keeps its 1x1 conv at stride 1.
    assert "stage2_block0_shortcut_pool" not in _layer_names(c)
    assert conv(c, "stage2_block0_shortcut_conv").strides == (2, 2)
    assert conv(d, "stage2_block0_shortcut_conv").strides == (1, 1)
    assert "stage2_block0_shortcut_pool" in _layer_names(d)


@pytest.mark.parametrize("name, last_bn", [("resnet50d", "bn3"), ("resnet18d", "bn2")])
def test_zero_gamma_zeroes_the_last_bn_of_every_residual_branch(name, last_bn):
    model = kresnet.create_model(name, zero_gamma=True, **TINY)
    for layer in model.backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and layer.name.startswith("stage"):
            gamma = keras.ops.convert_to_numpy(layer.gamma)
            if layer.name.endswith(last_bn):
                assert np.all(gamma == 0), layer.name
            else:
                assert np.all(gamma == 1), layer.name
    # So at initialisation every block passes its (projected) shortcut through: block 1 of
    # stage 1 has an identity shortcut, so its sum equals its input.
    backbone = model.backbone
    probe = keras.Model(
        backbone.input, [backbone.get_layer("stage1_block0_out").output, backbone.get_layer("stage1_block1_add").output]
    )
    block_input, block_sum = probe(np.random.rand(2, 32, 32, 3).astype("float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(block_sum), keras.ops.convert_to_numpy(block_input), atol=1e-6)


def test_without_zero_gamma_blocks_change_their_input():
    backbone = kresnet.create_backbone("resnet18d", **TINY)
    probe = keras.Model(
        backbone.input, [backbone.get_layer("stage1_block0_out").output, backbone.get_layer("stage1_block1_add").output]
    )
    block_input, block_sum = probe(np.random.rand(2, 32, 32, 3).astype("float32"))
    assert not np.allclose(keras.ops.convert_to_numpy(block_sum), keras.ops.convert_to_numpy(block_input))


@pytest.mark.parametrize(
    "output_stride, expected",
    [(32, [16, 8, 4, 2]), (16, [16, 8, 4, 4]), (8, [16, 8, 8, 8])],
)
def test_output_stride_dilates_the_last_stages(output_stride, expected):
    backbone = kresnet.create_backbone("resnet50d", output_stride=output_stride, stage_depths=[1, 1, 2, 2], **TINY)
    assert list(backbone.pyramid_outputs) == ["P2", "P3", "P4", "P5"]
    extractor = keras.Model(backbone.input, backbone.pyramid_outputs)
    features = extractor(np.random.rand(1, 64, 64, 3).astype("float32"))
    assert [features[key].shape[1] for key in ("P2", "P3", "P4", "P5")] == expected
    assert [features[key].shape[-1] for key in ("P2", "P3", "P4", "P5")] == backbone.pyramid_channels
    if output_stride == 8:
        # The first block of a dilated stage keeps the previous dilation (timm, GluonCV).
        assert backbone.get_layer("stage3_block0_conv2").dilation_rate == (1, 1)
        assert backbone.get_layer("stage3_block1_conv2").dilation_rate == (2, 2)
        assert backbone.get_layer("stage4_block0_conv2").dilation_rate == (2, 2)
        assert backbone.get_layer("stage4_block1_conv2").dilation_rate == (4, 4)


@pytest.mark.parametrize("policy, compute", [("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")])
def test_mixed_precision_keeps_logits_in_float32(policy, compute):
    keras.config.set_dtype_policy(policy)
    model = kresnet.create_model("resnet18d", num_classes=5, **TINY)
    for layer in model.backbone.layers:
        if layer.weights:
            assert layer.compute_dtype == compute, layer.name
            assert layer.variable_dtype == "float32", layer.name
    logits = model(np.random.rand(2, 32, 32, 3).astype("float32"))
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert np.isfinite(keras.ops.convert_to_numpy(logits)).all()


def test_channels_first_gives_the_same_logits_as_channels_last():
    if keras.config.backend() == "tensorflow" and not tf_has_gpu():
        pytest.skip("TensorFlow's CPU Conv2D kernel supports only NHWC; channels_first needs a GPU there")
    last = kresnet.create_model("resnet50d", num_classes=3, stage_depths=[1, 1, 1, 1], **TINY)
    first = kresnet.create_model(
        "resnet50d", num_classes=3, stage_depths=[1, 1, 1, 1], data_format="channels_first", **TINY
    )
    first.set_weights(last.get_weights())
    images = np.random.rand(2, 33, 33, 3).astype("float32")
    expected = keras.ops.convert_to_numpy(last(images, training=False))
    actual = keras.ops.convert_to_numpy(first(images.transpose(0, 3, 1, 2), training=False))
    np.testing.assert_allclose(actual, expected, atol=1e-4)


@pytest.mark.parametrize("initializer", ["glorot_uniform", "he_normal"])
def test_kernel_initializer_sets_the_weight_scale(initializer):
    # The 7x7 stem conv has fan_in 147 and fan_out 3136, where the two schemes differ by ~5x.
    model = kresnet.create_backbone("resnet18", kernel_initializer=initializer, stage_depths=[1, 1, 1, 1], **TINY)
    kernel = keras.ops.convert_to_numpy(model.get_layer("stem_conv").kernel)
    receptive = 7 * 7
    fan_in, fan_out = receptive * 3, receptive * 64
    expected = np.sqrt(2 / fan_in) if initializer == "he_normal" else np.sqrt(2 / (fan_in + fan_out))
    assert abs(kernel.std() - expected) < 0.1 * expected
