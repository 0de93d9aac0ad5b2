"""Import a torchvision `fasterrcnn_resnet50_fpn` (v1) state dict into kresnet's `FasterRCNN`.

The module layout is the same: ResNet-50 with the stride on the 3x3 conv (kresnet's `resnet50b`) and
frozen BatchNorm, an FPN with 1x1 laterals and 3x3 outputs on stages 1-4 and a max-pooled P6, a
one-conv RPN head shared by the levels, RoIAlign on P2..P5, two fc layers and a linear predictor.
What differs is conventions, each a recipe key of `[model]` (the bundled recipe
`coco_faster_rcnn_resnet50_fpn_torchvision` sets them all): the pixel statistics, the anchor grid
(`anchor_offset`, `round_anchors`, `anchor_grid_stride`), RoIAlign (`roi_aligned`, `roi_level_rule`),
the small-box filters (`rpn_min_size`, `detection_min_size`), the RPN's training-time proposal count and
the smooth-L1 betas. The weights themselves need three rearrangements, done here: the first fc layer
reads the pooled features in PyTorch's (C, H, W) order and kresnet's in (H, W, C); torchvision's predictor
has a row for the background's box deltas, which kresnet does not; and torchvision's class indices are
the dataset's own label ids (COCO category ids 1..90 with gaps) where kresnet's are contiguous.
"""

import re

import numpy as np

from kresnet.errors import UserError
from kresnet.models.weight_import import import_state_dict
from kresnet.transfer.detection.fpn import LEVELS

_PREDICTOR = "roi_heads.box_predictor"
HEAD_NAMES = {
    **{f"fpn_lateral{level}": f"backbone.fpn.inner_blocks.{index}.0" for index, level in enumerate(LEVELS)},
    **{f"fpn_output{level}": f"backbone.fpn.layer_blocks.{index}.0" for index, level in enumerate(LEVELS)},
    "rpn_conv": "rpn.head.conv.0.0",
    "rpn_objectness": "rpn.head.cls_logits",
    "rpn_deltas": "rpn.head.bbox_pred",
    "fc1": "roi_heads.box_head.fc6",
    "fc2": "roi_heads.box_head.fc7",
    "class_logits": f"{_PREDICTOR}.cls_score",
    "box_deltas": f"{_PREDICTOR}.bbox_pred",
}
# Files saved by torchvision before 0.13 (the published COCO weights among them) name two modules without
# the Conv2dNormActivation level torchvision now has; it renames them on load, and so does this importer.
_LEGACY_NAMES = (
    (re.compile(r"^backbone\.fpn\.(inner|layer)_blocks\.(\d)\.(weight|bias)$"), r"backbone.fpn.\1_blocks.\2.0.\3"),
    (re.compile(r"^rpn\.head\.conv\.(weight|bias)$"), r"rpn.head.conv.0.0.\1"),
)


def current_names(state):
    """The state dict with pre-0.13 torchvision module names renamed as torchvision renames them on load."""
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in _LEGACY_NAMES:
            key = pattern.sub(replacement, key)
        renamed[key] = value
    return renamed


def torchvision_detector_classes(state):
    """Object classes of a torchvision Faster R-CNN state dict: its predictor's outputs less the background."""
    key = f"{_PREDICTOR}.cls_score.weight"
    if key not in state:
        raise UserError(f"the state dict has no key {key!r}: not a torchvision Faster R-CNN (fasterrcnn_resnet50_fpn)")
    return int(state[key].shape[0]) - 1


def import_torchvision_faster_rcnn(model, state, class_ids=None):
    """Copy a torchvision Faster R-CNN state dict into a kresnet `FasterRCNN` in place; returns the model.

    Args:
        model: `FasterRCNN` on a `resnet50b` backbone with FPN, built from a recipe whose `[model]` matches
            the file (widths, `fpn_channels`, `head_dim`, `pooler_size`).
        state: dict. The state dict from `kresnet.models.weight_import.load_state_dict`.
        class_ids: list of int or None. torchvision's label id of each of the model's classes, in the
            model's order; for COCO, the category ids of kresnet's classes (`DetectionDataset.category_ids`).
            Defaults to 1..num_classes.
    """
    state = current_names(state)
    file_classes = torchvision_detector_classes(state)
    class_ids = list(range(1, model.num_classes + 1)) if class_ids is None else [int(i) for i in class_ids]
    if len(class_ids) != model.num_classes:
        raise UserError(f"{len(class_ids)} class ids for a detector of {model.num_classes} classes")
    if any(not 1 <= i <= file_classes for i in class_ids):
        raise UserError(f"class ids {class_ids[:5]}...: torchvision's file has labels 1..{file_classes} "
                        "(0 is the background); check the dataset the weights were trained on")
    state = dict(state)
    rows = [0, *class_ids]
    for suffix in ("weight", "bias"):
        key = f"{_PREDICTOR}.cls_score.{suffix}"
        state[key] = state[key][rows]
        key = f"{_PREDICTOR}.bbox_pred.{suffix}"
        deltas = state[key].reshape((file_classes + 1, 4) + state[key].shape[1:])
        state[key] = deltas[class_ids].reshape((-1,) + state[key].shape[1:])
    key = "roi_heads.box_head.fc6.weight"
    if key in state:
        size = model.settings["pooler_size"]
        width, inputs = state[key].shape
        channels = inputs // (size * size)
        state[key] = np.ascontiguousarray(
            state[key].reshape(width, channels, size, size).transpose(0, 2, 3, 1).reshape(width, inputs))
    _build(model)
    return import_state_dict(model, state, backbone_prefix="backbone.body.", head_names=HEAD_NAMES)


def _build(model):
    """Create the detector's variables (one prediction on a blank image) so weights can be set."""
    if not model.built:
        model({"images": np.zeros((1, *model.image_shape, 3), np.float32)})
