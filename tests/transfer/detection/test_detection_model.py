"""Faster R-CNN on a tiny backbone: training steps through `fit` on every backend, the loss falls on
synthetic VOC scenes, predictions are well-formed and evaluate; mixed precision trains."""

import keras
import numpy as np
import pytest

import kresnet
from kresnet.transfer.detection.faster_rcnn import FasterRCNN
from kresnet.transfer.detection.inference import detect_records, ground_truths
from kresnet.transfer.detection.pipeline import make_dataset
from kresnet.transfer.detection.synthetic_voc import synthetic_class_names, write_synthetic_voc
from kresnet.transfer.detection.voc import read_voc
from kresnet.transfer.detection.voc_eval import evaluate_voc

SIZE = 64
TINY = dict(fpn_channels=16, anchor_sizes=[8, 16, 32, 64, 128], rpn_batch_size=64, rpn_pre_nms_topk_train=100,
            rpn_pre_nms_topk_test=100, rpn_post_nms_topk_train=50, rpn_post_nms_topk_test=50, roi_batch_size=32,
            head_dim=32, pooler_size=4, max_detections=20, detections_pre_nms_topk=100)


def tiny_detector(num_classes, dtype=None):
    backbone = kresnet.create_backbone("resnet18d", input_shape=[SIZE, SIZE, 3], stage_depths=[1, 1, 1, 1],
                                       dtype=dtype)
    return FasterRCNN(backbone, num_classes, dtype=dtype, **TINY)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    devkit = write_synthetic_voc(tmp_path_factory.mktemp("voc") / "VOCdevkit", num_classes=2, image_size=SIZE,
                                 train_images=4, test_images=2, seed=0, max_objects=2)
    train = read_voc(devkit, "synthetic/trainval", synthetic_class_names(2))
    test = read_voc(devkit, "synthetic/test", synthetic_class_names(2))
    assert not train.problems and len(train) == 4 and len(test) == 2
    return train, test


def test_synthetic_voc_round_trips_the_generator_boxes(synthetic):
    from kresnet.data.synthetic import SceneGenerator

    train, _ = synthetic
    scene = SceneGenerator(num_classes=2, image_size=SIZE, seed=0).scene(0, 1, 2)
    np.testing.assert_allclose(train.records[0].boxes, np.round(scene.boxes))
    np.testing.assert_array_equal(train.records[0].labels, scene.labels)


def test_pipeline_flips_boxes_with_the_image(synthetic):
    train, _ = synthetic
    record = train.records[0]
    plain = next(make_dataset([record], 1, SIZE, SIZE, max_boxes=4, training=True, flip=False).as_numpy_iterator())
    assert plain["images"].shape == (1, SIZE, SIZE, 3) and plain["gt_boxes"].shape == (1, 4, 4)
    count = len(record.boxes)
    np.testing.assert_allclose(plain["gt_boxes"][0, :count], record.boxes)
    assert plain["gt_valid"][0].sum() == count
    for seed in range(8):  # some seed flips
        batch = next(make_dataset([record], 1, SIZE, SIZE, max_boxes=4, training=True, seed=seed).as_numpy_iterator())
        if not np.allclose(batch["images"], plain["images"]):
            np.testing.assert_allclose(batch["images"][0], plain["images"][0][:, ::-1], atol=1e-3)
            np.testing.assert_allclose(batch["gt_boxes"][0, :count, 0], SIZE - record.boxes[:, 2])
            return
    pytest.fail("no seed flipped the image")


def _backbone_layer(model, name):
    return model.extractor.get_layer("backbone_pyramid").get_layer(name)


def test_fine_tuning_options_free_or_freeze_bn_and_stem():
    free = FasterRCNN(kresnet.create_backbone("resnet18d", input_shape=[SIZE, SIZE, 3], stage_depths=[1, 1, 1, 1]),
                      2, freeze_bn=False, freeze_stem=False, **TINY)
    trainable = {id(v) for v in free.trainable_weights}
    assert id(_backbone_layer(free, "stem_conv1").kernel) in trainable
    assert id(_backbone_layer(free, "stage2_block0_bn1").gamma) in trainable


def test_fit_lowers_the_loss_and_predictions_evaluate(synthetic):
    train, test = synthetic
    model = tiny_detector(2)  # frozen BN and stem, the defaults
    frozen = {name: [keras.ops.convert_to_numpy(v) for v in _backbone_layer(model, name).weights]
              for name in ("stem_conv1", "stem_bn1", "stage2_block0_bn1")}
    trained_kernel = keras.ops.convert_to_numpy(_backbone_layer(model, "stage2_block0_conv1").kernel)
    model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9))
    data = make_dataset(train.records, 2, SIZE, SIZE, max_boxes=4, training=True, seed=0)
    history = model.fit(data, epochs=4, verbose=0).history
    for name, before in frozen.items():  # weights and BN moving statistics untouched
        for old, new in zip(before, _backbone_layer(model, name).weights):
            np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new), err_msg=name)
    assert not np.array_equal(trained_kernel, keras.ops.convert_to_numpy(_backbone_layer(model, "stage2_block0_conv1").kernel))
    assert set(history) >= {"loss", "rpn_cls_loss", "rpn_box_loss", "rcnn_cls_loss", "rcnn_box_loss"}
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < 0.9 * history["loss"][0], history["loss"]
    detections = detect_records(model, test.records, 2, SIZE, SIZE)
    assert len(detections) == 2
    for detection in detections:
        assert detection["boxes"].shape[1:] == (4,) and len(detection["scores"]) <= TINY["max_detections"]
        assert ((detection["labels"] >= 0) & (detection["labels"] < 2)).all()
        assert (detection["boxes"] >= 0).all() and (detection["boxes"] <= SIZE).all()
    result = evaluate_voc(detections, ground_truths(test.records), test.class_names)
    assert 0.0 <= result["map_voc07"] <= 1.0


def test_mixed_precision_training_step(synthetic):
    train, _ = synthetic
    model = tiny_detector(2, dtype="mixed_float16")
    model.compile(optimizer=keras.optimizers.SGD(0.01))  # auto_scale_loss wraps it in a LossScaleOptimizer
    data = make_dataset(train.records, 2, SIZE, SIZE, max_boxes=4, training=True).take(1)
    history = model.fit(data, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert model.rpn_conv.compute_dtype == "float16" and model.rpn_conv.kernel.dtype == "float32"


def test_without_fpn_the_detector_trains_and_detects_on_c4(synthetic):
    train, test = synthetic
    backbone = kresnet.create_backbone("resnet18d", input_shape=[SIZE, SIZE, 3], stage_depths=[1, 1, 1, 1])
    model = FasterRCNN(backbone, 2, **{**TINY, "anchor_sizes": [8, 16, 32]}, fpn=False)
    assert [tuple(output.shape[1:3]) for output in model.extractor.outputs] == [(SIZE // 16, SIZE // 16)]
    assert model.level_counts == [(SIZE // 16) ** 2 * 3 * 3]  # one map, 3 sizes x 3 ratios per cell
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    data = make_dataset(train.records, 2, SIZE, SIZE, max_boxes=4, training=True, seed=0)
    history = model.fit(data, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all() and history["rcnn_cls_loss"][0] > 0
    detections = detect_records(model, test.records, 2, SIZE, SIZE)
    assert len(detections) == 2 and all(d["boxes"].shape[1:] == (4,) for d in detections)
