"""`zero_gamma(model)` on models it was not written for: every residual block outputs its shortcut."""

import keras
import keras_hub
import numpy as np
import pytest

import kresnet
from kresnet.errors import UserError
from kresnet.tricks.zero_gamma_init import zero_gamma


def _block_probe(model):
    """A model returning, for every Add, (its two inputs, its output)."""
    adds = [layer for layer in model._operations if isinstance(layer, keras.layers.Add)]
    return adds, keras.Model(model.inputs, [[add.input[0], add.input[1], add.output] for add in adds])


def _tiny_keras_hub_resnet():
    # keras-hub requires 64 filters in the first stack; the rest is as small as it allows.
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[8], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 8],
        stackwise_num_blocks=[2, 1], stackwise_num_strides=[1, 2], block_type="bottleneck_block",
        use_pre_activation=False, image_shape=(32, 32, 3),
    )


def test_keras_hub_resnet_blocks_output_their_shortcut():
    backbone = _tiny_keras_hub_resnet()
    adds, probe = _block_probe(backbone)
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    assert all(np.abs(r).max() > 1e-3 for r, _, _ in probe.predict(images, verbose=0))
    changed = zero_gamma(backbone)
    # The residual branch's last BN, never the projection shortcut's BN (stack*_block0_0_bn).
    assert changed == ["stack0_block0_3_bn", "stack0_block1_3_bn", "stack1_block0_3_bn"]
    for shortcut_bn in ("stack0_block0_0_bn", "stack1_block0_0_bn"):
        assert np.all(keras.ops.convert_to_numpy(backbone.get_layer(shortcut_bn).gamma) == 1.0)
    outputs = probe.predict(images, verbose=0)
    assert len(outputs) == len(adds) == 3
    for inputs, (a, b, out) in zip([add.input for add in adds], outputs):
        residual, shortcut = (a, b) if inputs[0]._keras_history.operation.name.endswith("_3_bn") else (b, a)
        np.testing.assert_array_equal(residual, 0.0)
        np.testing.assert_array_equal(out, shortcut)


def test_kresnet_model_matches_its_own_zero_gamma_option():
    """On kresnet's (nested) classifier it zeroes exactly the BNs the model option initialises to zero."""
    kwargs = dict(num_classes=3, input_shape=(32, 32, 3), stage_depths=[1, 1, 1, 1], stage_widths=[4, 4, 8, 8])
    model = kresnet.create_model("resnet50d", **kwargs)
    reference = kresnet.create_model("resnet50d", zero_gamma=True, **kwargs)
    changed = zero_gamma(model, verbose=True)
    expected = [
        layer.name for layer in reference.backbone.layers
        if isinstance(layer, keras.layers.BatchNormalization) and not np.any(keras.ops.convert_to_numpy(layer.gamma))
    ]
    assert sorted(changed) == sorted(expected) and len(changed) == 4


def test_user_resnet_and_a_plain_network():
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    y = keras.layers.Conv2D(4, 3, padding="same")(x)
    y = keras.layers.BatchNormalization(name="branch_bn")(y)
    y = keras.layers.Dropout(0.1)(y)
    x = keras.layers.ReLU()(keras.layers.Add()([x, y]))
    model = keras.Model(inputs, x)
    assert zero_gamma(model) == ["branch_bn"]
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2), keras.layers.BatchNormalization()])
    with pytest.raises(UserError, match="no residual block"):
        zero_gamma(plain)
