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

from kresnet.data.imagenet_stats import MEAN_RGB, STD_RGB
from kresnet.models.channels_last_layers import conv2d_layer
from kresnet.transfer.detection import losses
from kresnet.transfer.detection.anchors import grid_strides, multilevel_anchors
from kresnet.transfer.detection.boxes import encode_boxes
from kresnet.transfer.detection.fpn import build_fpn_extractor, build_single_level_extractor
from kresnet.transfer.detection.proposals import detect, propose
from kresnet.transfer.detection.roi_align import multilevel_roi_align
from kresnet.transfer.detection.targets import gather, match_boxes, sample_balanced

STRIDES = (4, 8, 16, 32, 64)  # P2..P6
C4_STRIDE = 16  # the single feature map without FPN
RCNN_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
LOSS_NAMES = ("rpn_cls_loss", "rpn_box_loss", "rcnn_cls_loss", "rcnn_box_loss")
DETECTION_OUTPUTS = ("boxes", "scores", "labels", "valid")


class FasterRCNN(keras.Model):
    """Two-stage detector: FPN, RPN, RoIAlign and a two-fc box head (Detectron2's and torchvision's R50-FPN layout).

    The defaults follow Detectron2 where the two references differ; the `[model]` table of the bundled recipe
    `coco_faster_rcnn_resnet50_fpn_torchvision` holds the arguments that make it torchvision's
    `fasterrcnn_resnet50_fpn` number for number (`config.detector_arguments` turns a recipe into them).

    Args:
        backbone: `kresnet.ResNetBackbone` with a static `input_shape` whose sides divide by 32.
        num_classes: int. Object classes (background excluded).
        fpn_channels: int. Defaults to `256`.
        anchor_sizes: list of 5 floats, one per level P2..P6 (without FPN: any number, all on C4).
            Defaults to `[32, 64, 128, 256, 512]`.
        aspect_ratios: list of float (height / width). Defaults to `[0.5, 1.0, 2.0]`.
        anchor_offset: float. Anchor centre in its cell: 0.5 the centre (default), 0 the corner (torchvision).
        round_anchors: bool. Round the cell anchors to whole pixels (torchvision). Defaults to `False`.
        anchor_grid_stride: str. "level" (nominal stride, default) or "image_over_grid" (torchvision).
        pixel_mean / pixel_std: 3 floats each on the 0-255 scale; the paper's ImageNet statistics by default.
        rpn_batch_size: int. Sampled anchors per image. Defaults to `256`.
        rpn_pre_nms_topk_train / rpn_pre_nms_topk_test: int. Candidates per level before NMS.
        rpn_post_nms_topk_train / rpn_post_nms_topk_test: int. Proposals per image.
        rpn_nms_threshold: float. Defaults to `0.7`.
        rpn_min_size: float. Proposals not wider and taller than this (pixels) are dropped. Defaults to `0`.
        rpn_box_loss_beta / rcnn_box_loss_beta: float. Smooth-L1 beta of the box losses; 0 (default) is L1.
        roi_batch_size: int. Sampled RoIs per image. Defaults to `512`.
        roi_positive_fraction: float. Defaults to `0.25`.
        head_dim: int. Width of the two fc layers. Defaults to `1024`.
        pooler_size: int. RoIAlign output side. Defaults to `7`.
        pooler_sampling_ratio: int. Defaults to `2`.
        roi_aligned: bool. RoIAlign's half-pixel shift (`aligned=True`, default); False is torchvision's v1.
        roi_canonical_size / roi_canonical_level / roi_level_rule: the FPN level of a RoI (see `assign_levels`).
        score_threshold / nms_threshold / max_detections / detections_pre_nms_topk / detection_min_size:
            final detection settings (see `detect`).
        freeze_bn: bool. Backbone BatchNorm uses its moving statistics and is not trained.
        freeze_stem: bool. The backbone's stem is not trained.
        fpn: bool. Feature pyramid (P2..P6) when True; one C4 map (stride 16) when False.
        seed: int. Seed of the target sampling.
    """

    def __init__(self, backbone, num_classes, fpn_channels=256, anchor_sizes=(32, 64, 128, 256, 512),
                 aspect_ratios=(0.5, 1.0, 2.0), anchor_offset=0.5, round_anchors=False, anchor_grid_stride="level",
                 pixel_mean=MEAN_RGB, pixel_std=STD_RGB, rpn_batch_size=256, rpn_pre_nms_topk_train=2000,
                 rpn_pre_nms_topk_test=1000, rpn_post_nms_topk_train=1000, rpn_post_nms_topk_test=1000,
                 rpn_nms_threshold=0.7, rpn_min_size=0.0, rpn_box_loss_beta=0.0, roi_batch_size=512,
                 roi_positive_fraction=0.25, head_dim=1024, pooler_size=7, pooler_sampling_ratio=2, roi_aligned=True,
                 roi_canonical_size=224.0, roi_canonical_level=4, roi_level_rule="detectron2", rcnn_box_loss_beta=0.0,
                 score_threshold=0.05, nms_threshold=0.5, max_detections=100, detections_pre_nms_topk=1000,
                 detection_min_size=0.0, freeze_bn=True, freeze_stem=True, fpn=True, seed=0, dtype=None, **kwargs):
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
            rpn_min_size=rpn_min_size, rpn_box_loss_beta=rpn_box_loss_beta, roi_batch_size=roi_batch_size,
            roi_positive_fraction=roi_positive_fraction, pooler_size=pooler_size,
            pooler_sampling_ratio=pooler_sampling_ratio, roi_aligned=roi_aligned, roi_canonical_size=roi_canonical_size,
            roi_canonical_level=roi_canonical_level, roi_level_rule=roi_level_rule,
            rcnn_box_loss_beta=rcnn_box_loss_beta, score_threshold=score_threshold, nms_threshold=nms_threshold,
            max_detections=max_detections, detections_pre_nms_topk=detections_pre_nms_topk,
            detection_min_size=detection_min_size)
        self.pixel_mean = tuple(float(value) for value in pixel_mean)  # the input pipeline pads with it
        normalisation = dict(pixel_mean=pixel_mean, pixel_std=pixel_std)
        if fpn:
            self.extractor = build_fpn_extractor(backbone, fpn_channels, dtype=dtype, **normalisation)
            self.strides, level_sizes = STRIDES, [[size] for size in anchor_sizes]
        else:
            self.extractor = build_single_level_extractor(backbone, dtype=dtype, **normalisation)
            self.strides, level_sizes = (C4_STRIDE,), [list(anchor_sizes)]
        self.fpn = fpn
        num_anchors = len(aspect_ratios) * len(level_sizes[0])
        self.rpn_conv = conv2d_layer()(fpn_channels, 3, padding="same", activation="relu", dtype=dtype,
                                      kernel_initializer=keras.initializers.RandomNormal(stddev=0.01), name="rpn_conv")
        self.rpn_objectness = conv2d_layer()(num_anchors, 1, dtype=dtype, name="rpn_objectness",
                                            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))
        self.rpn_deltas = conv2d_layer()(4 * num_anchors, 1, dtype=dtype, name="rpn_deltas",
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
        strides = grid_strides(feature_shapes, self.strides, self.image_shape, anchor_grid_stride)
        anchors, self.level_counts = multilevel_anchors(feature_shapes, strides, level_sizes, list(aspect_ratios),
                                                        anchor_offset, round_anchors)
        self.anchors = ops.convert_to_numpy(anchors)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES}

    @property
    def metrics(self):
        return super().metrics + list(self.loss_trackers.values())

    def sampling_priority(self, stage, labels, boxes):
        """Priorities (B, N) in [0, 1] of the labelled boxes in the balanced sampling of `stage`; highest first.

        Uniform random numbers: a random sample, as torchvision's and Detectron2's samplers draw. A subclass
        can return fixed priorities to replay another implementation's sample (the parity tests do).

        Args:
            stage: str. "rpn" (the boxes are the anchors, (N, 4)) or "roi" (proposals then ground truth, (B, N, 4)).
            labels: int tensor (B, N): 1 positive, 0 negative, -1 ignored.
            boxes: tensor, the boxes `labels` labels.
        """
        del stage, boxes
        return keras.random.uniform(ops.shape(labels), seed=self.seed_generator)

    def rpn_head(self, features):
        """RPN objectness logits (B, A) and deltas (B, A, 4) of the anchors of every level, in `self.anchors` order."""
        logits, deltas = [], []
        for feature, count in zip(features, self.level_counts):
            hidden = self.rpn_conv(feature)
            logits.append(ops.reshape(ops.cast(self.rpn_objectness(hidden), "float32"), (-1, count)))
            deltas.append(ops.reshape(ops.cast(self.rpn_deltas(hidden), "float32"), (-1, count, 4)))
        return ops.concatenate(logits, axis=1), ops.concatenate(deltas, axis=1)

    def region_proposals(self, rpn_logits, rpn_deltas, image_sizes, training=False):
        """Proposals (B, R, 4), their objectness logits and validity from the RPN outputs (see `propose`)."""
        s = self.settings
        suffix = "train" if training else "test"
        logits, deltas = (ops.stop_gradient(ops.convert_to_tensor(x, "float32")) for x in (rpn_logits, rpn_deltas))
        return propose(ops.convert_to_tensor(self.anchors), logits, deltas, self.level_counts,
                       ops.convert_to_tensor(image_sizes, "float32"), s[f"rpn_pre_nms_topk_{suffix}"],
                       s[f"rpn_post_nms_topk_{suffix}"], s["rpn_nms_threshold"], s["rpn_min_size"])

    def roi_head(self, features, rois, training=False):
        """Pooled RoI features (B, R, S, S, C), class logits (B, R, K + 1) and class box deltas (B, R, K, 4)."""
        # With FPN, RoIs read P2..P5 (P6 only serves the RPN); without, the one map.
        pooled_levels = 4 if self.fpn else 1
        s = self.settings
        pooled = multilevel_roi_align(features[:pooled_levels], self.strides[:pooled_levels], rois, s["pooler_size"],
                                      s["pooler_sampling_ratio"], aligned=s["roi_aligned"],
                                      canonical_size=s["roi_canonical_size"], canonical_level=s["roi_canonical_level"],
                                      level_rule=s["roi_level_rule"])
        num_rois = rois.shape[1]
        hidden = self.box_head(ops.reshape(pooled, (-1,) + tuple(pooled.shape[2:])), training=training)
        class_logits = ops.reshape(ops.cast(self.class_logits(hidden), "float32"), (-1, num_rois, self.num_classes + 1))
        box_deltas = ops.reshape(ops.cast(self.box_deltas(hidden), "float32"), (-1, num_rois, self.num_classes, 4))
        return pooled, class_logits, box_deltas

    def detections(self, proposals, proposal_valid, class_logits, box_deltas, image_sizes):
        """The final `boxes`, `scores`, `labels` and `valid` from the box head's outputs (see `detect`)."""
        s = self.settings
        return detect(proposals, proposal_valid, class_logits, box_deltas, image_sizes, RCNN_BOX_WEIGHTS,
                      s["score_threshold"], s["nms_threshold"], s["detections_pre_nms_topk"], s["max_detections"],
                      s["detection_min_size"])

    def call(self, inputs, training=False):
        if "gt_boxes" not in inputs:
            outputs = self._forward(inputs, training)
            return {key: outputs[key] for key in DETECTION_OUTPUTS}
        return self._forward(inputs, training)

    def trace(self, inputs):
        """Every intermediate of inference on `inputs` (images, optional image_sizes), for checks against a reference.

        Returns:
            dict: `features` (list P2..P6), `rpn_logits` (B, A), `rpn_deltas` (B, A, 4) of `self.anchors`, `proposals`,
            `proposal_scores` (logits), `proposal_valid`, `pooled` (B, R, S, S, C), `class_logits`, `box_deltas`
            and the detections (`boxes`, `scores`, `labels`, `valid`) that `call` returns.
        """
        return self._forward({key: inputs[key] for key in ("images", "image_sizes") if key in inputs}, training=False)

    def _forward(self, inputs, training):
        images = inputs["images"]
        batch = ops.shape(images)[0]
        if "image_sizes" in inputs:
            image_sizes = ops.cast(inputs["image_sizes"], "float32")
        else:
            image_sizes = ops.ones((batch, 2), "float32") * ops.convert_to_tensor(self.image_shape, "float32")
        features = self.extractor(images, training=training)
        if not isinstance(features, (list, tuple)):  # a one-output functional model returns a bare tensor
            features = [features]
        rpn_logits, rpn_deltas = self.rpn_head(features)
        with_targets = "gt_boxes" in inputs
        proposals, proposal_scores, proposal_valid = self.region_proposals(rpn_logits, rpn_deltas, image_sizes,
                                                                           training=with_targets)
        proposals = ops.stop_gradient(proposals)
        if not with_targets:
            pooled, class_logits, box_deltas = self.roi_head(features, proposals, training)
            detections = self.detections(proposals, proposal_valid, class_logits, box_deltas, image_sizes)
            return dict(detections, features=features, rpn_logits=rpn_logits, rpn_deltas=rpn_deltas,
                        proposals=proposals, proposal_scores=proposal_scores, proposal_valid=proposal_valid,
                        pooled=pooled, class_logits=class_logits, box_deltas=box_deltas)
        gt_boxes = ops.cast(inputs["gt_boxes"], "float32")
        gt_labels = ops.cast(inputs["gt_labels"], "int32")
        gt_valid = ops.cast(inputs["gt_valid"], "bool")
        outputs = self._rpn_targets(ops.convert_to_tensor(self.anchors), rpn_logits, rpn_deltas, gt_boxes, gt_valid)
        rois, roi_classes, roi_box_targets, roi_picked = self._roi_targets(
            proposals, proposal_valid, gt_boxes, gt_labels, gt_valid)
        _, class_logits, box_deltas = self.roi_head(features, rois, training)
        outputs.update(class_logits=class_logits, box_deltas=box_deltas, roi_classes=roi_classes,
                       roi_box_targets=roi_box_targets, roi_picked=roi_picked)
        return outputs

    def _rpn_targets(self, anchors, rpn_logits, rpn_deltas, gt_boxes, gt_valid):
        labels, matched, _ = match_boxes(anchors, gt_boxes, gt_valid, 0.7, 0.3, allow_low_quality=True)
        indices, is_positive, picked = sample_balanced(labels, self.settings["rpn_batch_size"], 0.5,
                                                       self.sampling_priority("rpn", labels, anchors))
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
        indices, is_positive, picked = sample_balanced(labels, self.settings["roi_batch_size"],
                                                       self.settings["roi_positive_fraction"],
                                                       self.sampling_priority("roi", labels, candidates))
        rois = ops.stop_gradient(gather(candidates, indices))
        matched = gather(matched, indices)
        classes = ops.where(is_positive, gather(gt_labels, matched) + 1, 0)
        box_targets = encode_boxes(gather(gt_boxes, matched), rois, RCNN_BOX_WEIGHTS)
        box_targets = ops.where(is_positive[..., None], box_targets, 0.0)
        return rois, classes, ops.stop_gradient(box_targets), picked

    def loss_terms(self, outputs):
        """The four losses (`LOSS_NAMES`) of a training forward's `outputs`, normalised as torchvision and Detectron2 do."""
        y_pred = outputs
        values = {
            "rpn_cls_loss": losses.objectness_loss(y_pred["rpn_logits"], y_pred["rpn_positive"], y_pred["rpn_picked"]),
            "rpn_box_loss": losses.box_regression_loss(y_pred["rpn_deltas"], y_pred["rpn_box_targets"],
                                                       y_pred["rpn_positive"], y_pred["rpn_picked"],
                                                       self.settings["rpn_box_loss_beta"]),
            "rcnn_cls_loss": losses.classification_loss(y_pred["class_logits"], y_pred["roi_classes"],
                                                        y_pred["roi_picked"]),
        }
        chosen_deltas = ops.take_along_axis(
            y_pred["box_deltas"], ops.maximum(y_pred["roi_classes"] - 1, 0)[..., None, None], axis=2)[:, :, 0]
        values["rcnn_box_loss"] = losses.box_regression_loss(
            chosen_deltas, y_pred["roi_box_targets"], y_pred["roi_classes"] > 0, y_pred["roi_picked"],
            self.settings["rcnn_box_loss_beta"])
        return values

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Sum of the RPN and box-head losses (see `loss_terms`), plus any regularisation losses."""
        total = 0.0
        for name, value in self.loss_terms(y_pred).items():
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
