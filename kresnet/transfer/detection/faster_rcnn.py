"""Faster R-CNN with FPN (Ren et al., 2015; Lin et al., 2017) on a kresnet backbone, in `keras.ops`.

FPN is the default; `fpn=False` gives the original single-map detector on C4
(stride 16), with every anchor size on that one map.

`FasterRCNN` is a `keras.Model` whose inputs are a dict. With ground truth
(`gt_boxes`, `gt_labels`, `gt_valid`) it returns the two stages' outputs and
targets and `compute_loss` turns them into the four losses, so plain `fit`
trains it on every backend; without ground truth it returns detections.
All shapes are static: images padded to one size, ground truth padded with a
validity mask, NMS with padded outputs.
"""

import keras
from keras import layers, ops

from kresnet.transfer.detection import losses
from kresnet.transfer.detection.anchors import multilevel_anchors
from kresnet.transfer.detection.boxes import encode_boxes
from kresnet.transfer.detection.fpn import build_fpn_extractor, build_single_level_extractor
from kresnet.transfer.detection.proposals import detect, propose
from kresnet.transfer.detection.roi_align import multilevel_roi_align
from kresnet.transfer.detection.targets import gather, match_boxes, sample_balanced

STRIDES = (4, 8, 16, 32, 64)  # P2..P6
C4_STRIDE = 16  # the single feature map without FPN
RCNN_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
LOSS_NAMES = ("rpn_cls_loss", "rpn_box_loss", "rcnn_cls_loss", "rcnn_box_loss")


class FasterRCNN(keras.Model):
    """Two-stage detector: FPN, RPN, RoIAlign and a two-fc box head (Detectron2's R50-FPN layout).

    Args:
        backbone: `kresnet.ResNetBackbone` with a static `input_shape` whose sides divide by 32.
        num_classes: int. Object classes (background excluded).
        fpn_channels: int. Defaults to `256`.
        anchor_sizes: list of 5 floats, one per level P2..P6 (without FPN: any number, all on C4).
            Defaults to `[32, 64, 128, 256, 512]`.
        aspect_ratios: list of float (height / width). Defaults to `[0.5, 1.0, 2.0]`.
        rpn_batch_size: int. Sampled anchors per image. Defaults to `256`.
        rpn_pre_nms_topk_train / rpn_pre_nms_topk_test: int. Candidates per level before NMS.
        rpn_post_nms_topk_train / rpn_post_nms_topk_test: int. Proposals per image.
        rpn_nms_threshold: float. Defaults to `0.7`.
        roi_batch_size: int. Sampled RoIs per image. Defaults to `512`.
        roi_positive_fraction: float. Defaults to `0.25`.
        head_dim: int. Width of the two fc layers. Defaults to `1024`.
        pooler_size: int. RoIAlign output side. Defaults to `7`.
        pooler_sampling_ratio: int. Defaults to `2`.
        score_threshold / nms_threshold / max_detections: final detection settings.
        freeze_bn: bool. Backbone BatchNorm uses its moving statistics and is not trained.
        freeze_stem: bool. The backbone's stem is not trained.
        fpn: bool. Feature pyramid (P2..P6) when True; one C4 map (stride 16) when False.
        seed: int. Seed of the target sampling.
    """

    def __init__(self, backbone, num_classes, fpn_channels=256, anchor_sizes=(32, 64, 128, 256, 512),
                 aspect_ratios=(0.5, 1.0, 2.0), rpn_batch_size=256, rpn_pre_nms_topk_train=2000,
                 rpn_pre_nms_topk_test=1000, rpn_post_nms_topk_train=1000, rpn_post_nms_topk_test=1000,
                 rpn_nms_threshold=0.7, roi_batch_size=512, roi_positive_fraction=0.25, head_dim=1024,
                 pooler_size=7, pooler_sampling_ratio=2, score_threshold=0.05, nms_threshold=0.5,
                 max_detections=100, detections_pre_nms_topk=1000, freeze_bn=True, freeze_stem=True, fpn=True,
                 seed=0, dtype=None, **kwargs):
        super().__init__(dtype=dtype, **kwargs)
        height, width = backbone.input.shape[1:3]
        if height is None or width is None or height % 32 or width % 32:
            raise ValueError(f"the backbone needs a static input_shape with sides divisible by 32. "
                             f"Received: input_shape={backbone.input.shape[1:]}")
        if fpn and len(anchor_sizes) != len(STRIDES):
            raise ValueError(f"anchor_sizes needs one size per level P2..P6. Received: anchor_sizes={anchor_sizes}")
        _freeze(backbone, freeze_bn, freeze_stem)
        self.num_classes = num_classes
        self.image_shape = (height, width)
        self.settings = dict(
            rpn_batch_size=rpn_batch_size, rpn_pre_nms_topk_train=rpn_pre_nms_topk_train,
            rpn_pre_nms_topk_test=rpn_pre_nms_topk_test, rpn_post_nms_topk_train=rpn_post_nms_topk_train,
            rpn_post_nms_topk_test=rpn_post_nms_topk_test, rpn_nms_threshold=rpn_nms_threshold,
            roi_batch_size=roi_batch_size, roi_positive_fraction=roi_positive_fraction,
            pooler_size=pooler_size, pooler_sampling_ratio=pooler_sampling_ratio,
            score_threshold=score_threshold, nms_threshold=nms_threshold, max_detections=max_detections,
            detections_pre_nms_topk=detections_pre_nms_topk)
        if fpn:
            self.extractor = build_fpn_extractor(backbone, fpn_channels, dtype=dtype)
            self.strides, level_sizes = STRIDES, [[size] for size in anchor_sizes]
        else:
            self.extractor = build_single_level_extractor(backbone, dtype=dtype)
            self.strides, level_sizes = (C4_STRIDE,), [list(anchor_sizes)]
        self.fpn = fpn
        num_anchors = len(aspect_ratios) * len(level_sizes[0])
        self.rpn_conv = layers.Conv2D(fpn_channels, 3, padding="same", activation="relu", dtype=dtype,
                                      kernel_initializer=keras.initializers.RandomNormal(stddev=0.01), name="rpn_conv")
        self.rpn_objectness = layers.Conv2D(num_anchors, 1, dtype=dtype, name="rpn_objectness",
                                            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))
        self.rpn_deltas = layers.Conv2D(4 * num_anchors, 1, dtype=dtype, name="rpn_deltas",
                                        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))
        self.box_head = keras.Sequential([
            layers.Flatten(dtype=dtype),
            layers.Dense(head_dim, activation="relu", dtype=dtype, name="fc1"),
            layers.Dense(head_dim, activation="relu", dtype=dtype, name="fc2"),
        ], name="box_head")
        self.class_logits = layers.Dense(num_classes + 1, dtype=dtype, name="class_logits",
                                         kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))
        self.box_deltas = layers.Dense(4 * num_classes, dtype=dtype, name="box_deltas",
                                       kernel_initializer=keras.initializers.RandomNormal(stddev=0.001))
        feature_shapes = [tuple(output.shape[1:3]) for output in self.extractor.outputs]
        anchors, self.level_counts = multilevel_anchors(feature_shapes, self.strides, level_sizes, list(aspect_ratios))
        self.anchors = ops.convert_to_numpy(anchors)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES}

    @property
    def metrics(self):
        return super().metrics + list(self.loss_trackers.values())

    def _rpn(self, features):
        logits, deltas = [], []
        for feature, count in zip(features, self.level_counts):
            hidden = self.rpn_conv(feature)
            logits.append(ops.reshape(ops.cast(self.rpn_objectness(hidden), "float32"), (-1, count)))
            deltas.append(ops.reshape(ops.cast(self.rpn_deltas(hidden), "float32"), (-1, count, 4)))
        return ops.concatenate(logits, axis=1), ops.concatenate(deltas, axis=1)

    def _box_head(self, features, rois, training):
        # With FPN, RoIs read P2..P5 (P6 only serves the RPN); without, the one map.
        pooled_levels = 4 if self.fpn else 1
        pooled = multilevel_roi_align(features[:pooled_levels], self.strides[:pooled_levels], rois,
                                      self.settings["pooler_size"], self.settings["pooler_sampling_ratio"], aligned=True)
        num_rois = rois.shape[1]
        pooled = ops.reshape(pooled, (-1,) + tuple(pooled.shape[2:]))
        hidden = self.box_head(pooled, training=training)
        class_logits = ops.reshape(ops.cast(self.class_logits(hidden), "float32"), (-1, num_rois, self.num_classes + 1))
        box_deltas = ops.reshape(ops.cast(self.box_deltas(hidden), "float32"), (-1, num_rois, self.num_classes, 4))
        return class_logits, box_deltas

    def call(self, inputs, training=False):
        images = inputs["images"]
        batch = ops.shape(images)[0]
        if "image_sizes" in inputs:
            image_sizes = ops.cast(inputs["image_sizes"], "float32")
        else:
            image_sizes = ops.ones((batch, 2), "float32") * ops.convert_to_tensor(self.image_shape, "float32")
        features = self.extractor(images, training=training)
        if not isinstance(features, (list, tuple)):  # a one-output functional model returns a bare tensor
            features = [features]
        anchors = ops.convert_to_tensor(self.anchors)
        rpn_logits, rpn_deltas = self._rpn(features)
        with_targets = "gt_boxes" in inputs
        suffix = "train" if with_targets else "test"
        proposals, _, proposal_valid = propose(
            anchors, ops.stop_gradient(rpn_logits), ops.stop_gradient(rpn_deltas), self.level_counts, image_sizes,
            self.settings[f"rpn_pre_nms_topk_{suffix}"], self.settings[f"rpn_post_nms_topk_{suffix}"],
            self.settings["rpn_nms_threshold"])
        proposals = ops.stop_gradient(proposals)
        if not with_targets:
            class_logits, box_deltas = self._box_head(features, proposals, training)
            s = self.settings
            return detect(proposals, proposal_valid, class_logits, box_deltas, image_sizes, RCNN_BOX_WEIGHTS,
                          s["score_threshold"], s["nms_threshold"], s["detections_pre_nms_topk"], s["max_detections"])
        gt_boxes = ops.cast(inputs["gt_boxes"], "float32")
        gt_labels = ops.cast(inputs["gt_labels"], "int32")
        gt_valid = ops.cast(inputs["gt_valid"], "bool")
        outputs = self._rpn_targets(anchors, rpn_logits, rpn_deltas, gt_boxes, gt_valid)
        rois, roi_classes, roi_box_targets, roi_picked = self._roi_targets(
            proposals, proposal_valid, gt_boxes, gt_labels, gt_valid)
        class_logits, box_deltas = self._box_head(features, rois, training)
        outputs.update(class_logits=class_logits, box_deltas=box_deltas, roi_classes=roi_classes,
                       roi_box_targets=roi_box_targets, roi_picked=roi_picked)
        return outputs

    def _rpn_targets(self, anchors, rpn_logits, rpn_deltas, gt_boxes, gt_valid):
        labels, matched, _ = match_boxes(anchors, gt_boxes, gt_valid, 0.7, 0.3, allow_low_quality=True)
        indices, is_positive, picked = sample_balanced(labels, self.settings["rpn_batch_size"], 0.5, self.seed_generator)
        sampled_anchors = ops.take(anchors, indices, axis=0)
        targets = encode_boxes(gather(gt_boxes, gather(matched, indices)), sampled_anchors)
        targets = ops.where(is_positive[..., None], targets, 0.0)
        return {"rpn_logits": gather(rpn_logits, indices), "rpn_deltas": gather(rpn_deltas, indices),
                "rpn_positive": is_positive, "rpn_picked": picked, "rpn_box_targets": ops.stop_gradient(targets)}

    def _roi_targets(self, proposals, proposal_valid, gt_boxes, gt_labels, gt_valid):
        # Ground-truth boxes join the proposals, so the head sees positives from the first step.
        candidates = ops.concatenate([proposals, gt_boxes], axis=1)
        candidate_valid = ops.concatenate([proposal_valid, gt_valid], axis=1)
        labels, matched, _ = match_boxes(candidates, gt_boxes, gt_valid, 0.5, 0.5)
        labels = ops.where(candidate_valid, labels, -1)
        indices, is_positive, picked = sample_balanced(
            labels, self.settings["roi_batch_size"], self.settings["roi_positive_fraction"], self.seed_generator)
        rois = ops.stop_gradient(gather(candidates, indices))
        matched = gather(matched, indices)
        classes = ops.where(is_positive, gather(gt_labels, matched) + 1, 0)
        box_targets = encode_boxes(gather(gt_boxes, matched), rois, RCNN_BOX_WEIGHTS)
        box_targets = ops.where(is_positive[..., None], box_targets, 0.0)
        return rois, classes, ops.stop_gradient(box_targets), picked

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Sum of the RPN and box-head losses (see `losses`), plus any regularisation losses."""
        values = {
            "rpn_cls_loss": losses.objectness_loss(y_pred["rpn_logits"], y_pred["rpn_positive"], y_pred["rpn_picked"]),
            "rpn_box_loss": losses.box_regression_loss(y_pred["rpn_deltas"], y_pred["rpn_box_targets"],
                                                       y_pred["rpn_positive"], y_pred["rpn_picked"]),
            "rcnn_cls_loss": losses.classification_loss(y_pred["class_logits"], y_pred["roi_classes"],
                                                        y_pred["roi_picked"]),
        }
        chosen_deltas = ops.take_along_axis(
            y_pred["box_deltas"], ops.maximum(y_pred["roi_classes"] - 1, 0)[..., None, None], axis=2)[:, :, 0]
        values["rcnn_box_loss"] = losses.box_regression_loss(
            chosen_deltas, y_pred["roi_box_targets"], y_pred["roi_classes"] > 0, y_pred["roi_picked"])
        total = 0.0
        for name, value in values.items():
            self.loss_trackers[name].update_state(value)
            total = total + value
        if self.losses:
            total = total + ops.sum(ops.stack([ops.cast(loss, "float32") for loss in self.losses]))
        return total


def _freeze(backbone, freeze_bn, freeze_stem):
    for layer in backbone.layers:
        if freeze_bn and isinstance(layer, layers.BatchNormalization):
            layer.trainable = False  # Keras runs a non-trainable BN in inference mode
        if freeze_stem and layer.name.startswith("stem"):
            layer.trainable = False
