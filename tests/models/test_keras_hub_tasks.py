"""kresnet backbones plug into keras-hub's detection and segmentation tasks through `pyramid_outputs`."""

import keras
import keras_hub
import numpy as np

import kresnet


def test_retinanet_object_detector_accepts_the_backbone():
    backbone = kresnet.create_backbone("resnet50d", stage_depths=[1, 1, 1, 1], stage_widths=[8, 8, 16, 16])
    retinanet_backbone = keras_hub.models.RetinaNetBackbone(image_encoder=backbone, min_level=3, max_level=5, use_p5=False)
    detector = keras_hub.models.RetinaNetObjectDetector(
        backbone=retinanet_backbone,
        num_classes=3,
        anchor_generator=keras_hub.layers.AnchorGenerator(
            bounding_box_format="yxyx", min_level=3, max_level=5, num_scales=1, aspect_ratios=[1.0], anchor_size=4
        ),
    )
    outputs = detector(np.random.rand(1, 64, 64, 3).astype("float32"))
    boxes, classes = outputs["bbox_regression"], outputs["cls_logits"]
    anchors = 8 * 8 + 4 * 4 + 2 * 2
    assert tuple(boxes.shape) == (1, anchors, 4)
    assert tuple(classes.shape) == (1, anchors, 3)


def test_deeplabv3_segmenter_accepts_the_dilated_backbone():
    backbone = kresnet.create_backbone("resnet50d", output_stride=8, stage_depths=[1, 1, 1, 1], stage_widths=[8, 8, 16, 16])
    deeplab_backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=backbone, spatial_pyramid_pooling_key="P5", upsampling_size=8, dilation_rates=[6, 12, 18],
        low_level_feature_key="P2",
    )
    segmenter = keras_hub.models.DeepLabV3ImageSegmenter(backbone=deeplab_backbone, num_classes=4)
    masks = keras.ops.convert_to_numpy(segmenter(np.random.rand(1, 64, 64, 3).astype("float32")))
    assert masks.shape == (1, 64, 64, 4)
