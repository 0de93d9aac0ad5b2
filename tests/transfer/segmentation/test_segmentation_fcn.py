"""FCN on dilated kresnet backbones: shapes, float32 logits, ignore-label loss, a training step, keras-hub."""

import keras
import keras_hub
import numpy as np
import pytest

import kresnet
from kresnet.data.synthetic import SceneGenerator
from kresnet.transfer.segmentation.config import Model, SegmentationRecipe
from kresnet.transfer.segmentation.fcn import AUX_OUTPUT, MAIN_OUTPUT, build_fcn, compile_losses, segmentation_loss
from kresnet.runs.task import build_task_optimizer
from kresnet.transfer.segmentation.train import build_segmenter, compile_segmenter

TINY = dict(stage_depths=[1, 1, 1, 1], stage_widths=[8, 16, 32, 64])


def tiny_backbone(output_stride=8, name="resnet18"):
    return kresnet.create_backbone(name, output_stride=output_stride, **TINY)


@pytest.mark.parametrize("output_stride", [8, 16])
def test_dilated_backbone_pyramid_strides(output_stride):
    # Keras' shape inference of the functional graph; the FCN tests run the stride-8 backbone for real.
    backbone = kresnet.create_backbone("resnet18", output_stride=output_stride, input_shape=[64, 64, 3], **TINY)
    expected_strides = {"P2": 4, "P3": 8, "P4": min(16, output_stride), "P5": output_stride}
    for key, stride in expected_strides.items():
        assert tuple(backbone.pyramid_outputs[key].shape[1:3]) == (64 // stride, 64 // stride), key
    assert backbone.pyramid_outputs["P5"].shape[-1] == 64


def test_fcn_outputs_full_size_float32_logits_and_trains_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    model = build_fcn(tiny_backbone(), num_classes=5)
    outputs = model(np.random.rand(1, 20, 28, 3).astype("float32"), training=False)  # not multiples of 8
    assert set(outputs) == {MAIN_OUTPUT, AUX_OUTPUT}
    for logits in outputs.values():
        assert tuple(logits.shape) == (1, 20, 28, 5) and keras.backend.standardize_dtype(logits.dtype) == "float32"
    head_conv = model.get_layer("head_conv")
    assert head_conv.compute_dtype == "float16" and head_conv.filters == 64 // 4  # GluonCV: quarter of the channels
    without_aux = build_fcn(tiny_backbone(), num_classes=3, aux=False)
    assert set(without_aux.output) == {MAIN_OUTPUT}
    # One training step as a recipe runs it: the recipe's SGD (coupled L2), with Keras' loss scaling.
    config = SegmentationRecipe()
    config.train.batch_size = 2
    compile_segmenter(model, build_task_optimizer(config, steps_per_epoch=10), config.model.aux_weight)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    images, masks = _scene_batch(2, size=24, num_classes=4)
    kernel_before = np.array(model.get_layer("head_classifier").kernel)
    logs = model.train_on_batch(images, {MAIN_OUTPUT: masks, AUX_OUTPUT: masks}, return_dict=True)
    assert np.isfinite(logs["loss"]) and not np.allclose(kernel_before, model.get_layer("head_classifier").kernel)


def test_fcn_heads_are_gluoncv_layers_in_order_on_stages_4_and_3_upsampled_bilinearly():
    backbone = tiny_backbone()
    model = build_fcn(backbone, num_classes=5, dropout=0.1)
    for head, level in (("head", "P5"), ("aux_head", "P4")):
        conv, bn, relu, dropout, classifier = (
            model.get_layer(f"{head}_{part}") for part in ("conv", "bn", "relu", "dropout", "classifier")
        )
        assert conv.input is backbone.pyramid_outputs[level]  # P5: stage 4, P4: stage 3
        chain = [conv, bn, relu, dropout, classifier]
        assert all(later.input is earlier.output for earlier, later in zip(chain, chain[1:]))
        assert conv.kernel_size == (3, 3) and classifier.kernel_size == (1, 1) and classifier.filters == 5
        assert isinstance(bn, keras.layers.BatchNormalization) and dropout.rate == 0.1
    # The logits are the classifier's output (stride 8) resized bilinearly to the input size.
    images = np.random.default_rng(0).normal(size=(1, 24, 32, 3)).astype("float32")
    classifier_output = keras.Model(model.input, model.get_layer("head_classifier").output).predict_on_batch(images)
    expected = keras.ops.image.resize(classifier_output, (24, 32), interpolation="bilinear")
    logits = model.predict_on_batch(images)[MAIN_OUTPUT]
    np.testing.assert_allclose(logits, keras.ops.convert_to_numpy(expected), atol=1e-5)


def test_loss_is_mean_cross_entropy_over_labelled_pixels():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(2, 4, 5))
    labels[0, :2] = 255
    loss = float(segmentation_loss()(labels, logits))
    log_probabilities = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    keep = labels != 255
    expected = -np.take_along_axis(log_probabilities, np.where(keep, labels, 0)[..., None], -1)[..., 0][keep].mean()
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def _scene_batch(count, size=32, num_classes=3):
    generator = SceneGenerator(num_classes=num_classes, image_size=size, seed=1)
    scenes = [generator.scene(i) for i in range(count)]
    images = np.stack([(s.image.astype("float32") - 127.5) / 64.0 for s in scenes])
    masks = np.stack([s.mask.astype("int32") for s in scenes])
    masks[:, :2] = 255  # an ignored band: must not break training
    return images, masks


def test_training_step_then_loss_falls_on_tiny_synthetic_scenes():
    model = build_fcn(tiny_backbone(), num_classes=4)
    losses, weights = compile_losses(model)
    assert weights == {MAIN_OUTPUT: 1.0, AUX_OUTPUT: 0.2}
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=losses, loss_weights=weights)
    images, masks = _scene_batch(4)
    targets = {MAIN_OUTPUT: masks, AUX_OUTPUT: masks}
    before = [np.array(w) for w in model.get_layer("head_classifier").get_weights()]
    logs = model.train_on_batch(images, targets, return_dict=True)
    np.testing.assert_allclose(logs["loss"], logs["logits_loss"] + 0.2 * logs["aux_logits_loss"], rtol=1e-4)
    after = model.get_layer("head_classifier").get_weights()
    assert any(not np.allclose(b, a) for b, a in zip(before, after))
    first = logs["logits_loss"]
    for _ in range(30):
        logs = model.train_on_batch(images, targets, return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["logits_loss"] < 0.6 * first, (first, logs["logits_loss"])


def test_backbone_weights_come_from_a_classifier_checkpoint(tmp_path):
    classifier = kresnet.create_model("resnet18", num_classes=7, **TINY)
    path = tmp_path / "classifier.weights.h5"
    classifier.save_weights(path)
    config = Model(backbone="resnet18", backbone_weights=str(path), **TINY)  # 7 classes: read from the file
    segmenter = build_segmenter(config, num_classes=3)
    conv = "stage4_block0_conv1"
    source = classifier.backbone.get_layer(conv)
    target = segmenter.get_layer(conv)
    np.testing.assert_array_equal(target.get_weights()[0], source.get_weights()[0])
    assert target.dilation_rate != source.dilation_rate or target.strides != source.strides  # dilated copy


def test_keras_hub_deeplab_v3_head_on_the_dilated_backbone():
    # keras-hub derives its last upsampling from the key (Pn -> stride 2**n); at output stride 16
    # "P4" keeps stride 16, so ASPP on the dilated stage 3 fits (tests/models covers stride 32 / "P5").
    encoder = kresnet.create_backbone("resnet18", output_stride=16, input_shape=[32, 32, 3], **TINY)
    deeplab_backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=encoder,
        spatial_pyramid_pooling_key="P4",
        upsampling_size=4,
        dilation_rates=[6, 12, 18],
        low_level_feature_key="P2",
        projection_filters=16,
    )
    segmenter = keras_hub.models.DeepLabV3ImageSegmenter(backbone=deeplab_backbone, num_classes=4)
    logits = segmenter(np.random.rand(2, 32, 32, 3).astype("float32"), training=False)
    assert tuple(logits.shape) == (2, 32, 32, 4)
