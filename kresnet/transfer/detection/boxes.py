"""Box arithmetic in `keras.ops`: pairwise IoU, Faster R-CNN delta encoding/decoding, clipping.

Boxes are `[xmin, ymin, xmax, ymax]` in continuous pixel coordinates, in the
last axis; any leading batch axes broadcast.
"""

import math

from keras import ops

# Detectron2's clamp: a decoded box is at most 1000/16 times its anchor's size.
DELTA_SCALE_CLAMP = math.log(1000.0 / 16)


def box_area(boxes):
    """Area of xyxy boxes, (..., 4) -> (...).

    Args:
        boxes: tensor (..., 4).
    """
    return ops.maximum(boxes[..., 2] - boxes[..., 0], 0.0) * ops.maximum(boxes[..., 3] - boxes[..., 1], 0.0)


def box_iou(boxes, others):
    """Pairwise IoU, (..., N, 4) x (..., M, 4) -> (..., N, M); 0 where the union is empty.

    Args:
        boxes: tensor (..., N, 4).
        others: tensor (..., M, 4).
    """
    boxes, others = ops.convert_to_tensor(boxes), ops.convert_to_tensor(others)
    left = ops.maximum(boxes[..., :, None, 0], others[..., None, :, 0])
    top = ops.maximum(boxes[..., :, None, 1], others[..., None, :, 1])
    right = ops.minimum(boxes[..., :, None, 2], others[..., None, :, 2])
    bottom = ops.minimum(boxes[..., :, None, 3], others[..., None, :, 3])
    intersection = ops.maximum(right - left, 0.0) * ops.maximum(bottom - top, 0.0)
    union = box_area(boxes)[..., :, None] + box_area(others)[..., None, :] - intersection
    return ops.where(union > 0, intersection / ops.maximum(union, 1e-9), ops.zeros_like(union))


def _centres(boxes):
    width = boxes[..., 2] - boxes[..., 0]
    height = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * width, boxes[..., 1] + 0.5 * height, width, height


def encode_boxes(boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    """Regression targets (dx, dy, dw, dh) that move `anchors` onto `boxes`.

    dx = wx (x - xa) / wa, dy = wy (y - ya) / ha, dw = ww log(w / wa), dh = wh log(h / ha).

    Args:
        boxes: tensor (..., 4), target boxes.
        anchors: tensor (..., 4), reference boxes (positive size).
        weights: 4 floats. Detectron2 uses (1, 1, 1, 1) for the RPN and (10, 10, 5, 5) for the box head.
    """
    boxes, anchors = ops.convert_to_tensor(boxes), ops.convert_to_tensor(anchors)
    x, y, w, h = _centres(boxes)
    xa, ya, wa, ha = _centres(anchors)
    # Degenerate boxes (padding, unsampled slots) must give finite targets, not NaN.
    w, h = ops.maximum(w, 1e-6), ops.maximum(h, 1e-6)
    wa, ha = ops.maximum(wa, 1e-6), ops.maximum(ha, 1e-6)
    return ops.stack([weights[0] * (x - xa) / wa, weights[1] * (y - ya) / ha,
                      weights[2] * ops.log(w / wa), weights[3] * ops.log(h / ha)], axis=-1)


def decode_boxes(deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    """Inverse of `encode_boxes`; dw and dh are clamped so `exp` cannot overflow.

    Args:
        deltas: tensor (..., 4).
        anchors: tensor (..., 4).
        weights: 4 floats, as given to `encode_boxes`.
    """
    deltas, anchors = ops.convert_to_tensor(deltas), ops.convert_to_tensor(anchors)
    xa, ya, wa, ha = _centres(anchors)
    dx, dy = deltas[..., 0] / weights[0], deltas[..., 1] / weights[1]
    dw = ops.minimum(deltas[..., 2] / weights[2], DELTA_SCALE_CLAMP)
    dh = ops.minimum(deltas[..., 3] / weights[3], DELTA_SCALE_CLAMP)
    x, y = xa + dx * wa, ya + dy * ha
    half_w, half_h = 0.5 * wa * ops.exp(dw), 0.5 * ha * ops.exp(dh)
    return ops.stack([x - half_w, y - half_h, x + half_w, y + half_h], axis=-1)


def clip_boxes(boxes, height, width):
    """Clip xyxy boxes to an image of `height` x `width`.

    Args:
        boxes: tensor (..., 4).
        height: float or tensor broadcastable to (...).
        width: float or tensor broadcastable to (...).
    """
    boxes = ops.convert_to_tensor(boxes)
    x1 = ops.minimum(ops.maximum(boxes[..., 0], 0.0), width)
    y1 = ops.minimum(ops.maximum(boxes[..., 1], 0.0), height)
    x2 = ops.minimum(ops.maximum(boxes[..., 2], 0.0), width)
    y2 = ops.minimum(ops.maximum(boxes[..., 3], 0.0), height)
    return ops.stack([x1, y1, x2, y2], axis=-1)
