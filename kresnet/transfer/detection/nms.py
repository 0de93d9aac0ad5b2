"""Greedy non-maximum suppression with a fixed-size, padded output, in `keras.ops` (jit-friendly)."""

from keras import ops

from kresnet.transfer.detection.boxes import box_iou


def non_max_suppression(boxes, scores, max_output_size, iou_threshold=0.5, score_threshold=None):
    """Indices of the boxes greedy NMS keeps, best first, padded to `max_output_size`.

    Greedy NMS keeps box i (in score order, tied scores in index order as
    torchvision's CPU kernel ranks them) iff no kept box before it overlaps
    it by more than `iou_threshold`. This solves that recurrence as a fixed
    point over the whole IoU matrix: each sweep fixes at least one more
    position, so the loop is exact and usually ends after a few sweeps.

    Args:
        boxes: tensor (B, N, 4) xyxy.
        scores: tensor (B, N).
        max_output_size: int. Static output length K.
        iou_threshold: float. Boxes overlapping a kept box by more are removed.
        score_threshold: float or None. Boxes scoring at most this are never kept.

    Returns:
        (indices (B, K) int32 into N, 0 where padded; valid (B, K) bool).
    """
    boxes = ops.cast(boxes, "float32")
    scores = ops.cast(scores, "float32")
    num_boxes = boxes.shape[1]
    order = _descending_order(scores)
    sorted_boxes = ops.take_along_axis(boxes, order[..., None], axis=1)
    sorted_scores = ops.take_along_axis(scores, order, axis=1)
    position = ops.arange(num_boxes)
    earlier = position[None, :] < position[:, None]  # [i, j]: j comes before i
    suppresses = ops.logical_and(box_iou(sorted_boxes, sorted_boxes) > iou_threshold, earlier[None])
    candidate = ops.isfinite(sorted_scores)
    if score_threshold is not None:
        candidate = ops.logical_and(candidate, sorted_scores > score_threshold)

    def sweep(keep, _changed):
        suppressed = ops.any(ops.logical_and(suppresses, keep[:, None, :]), axis=-1)
        new_keep = ops.logical_and(candidate, ops.logical_not(suppressed))
        return new_keep, ops.any(ops.not_equal(new_keep, keep))

    keep, _ = ops.while_loop(lambda _keep, changed: changed, sweep,
                             (candidate, ops.convert_to_tensor(True)), maximum_iterations=num_boxes)
    # The first K kept positions, in order: rank kept boxes by how early they come.
    earliness = ops.where(keep, ops.cast(num_boxes - position, "float32")[None, :], 0.0)
    count = min(max_output_size, num_boxes)
    rank_values, picked = ops.top_k(earliness, k=count)
    indices = ops.take_along_axis(order, picked, axis=1)
    valid = rank_values > 0
    indices = ops.where(valid, indices, 0)
    if count < max_output_size:
        padding = max_output_size - count
        indices = ops.concatenate([indices] + [ops.zeros_like(indices[:, :1])] * padding, axis=1)
        valid = ops.concatenate([valid] + [ops.zeros_like(valid[:, :1])] * padding, axis=1)
    return ops.cast(indices, "int32"), valid


def _descending_order(scores):
    """Indices sorting `scores` (B, N) from best to worst, ties in index order, alike on every backend.

    `ops.argsort` has no stable mode and breaks ties differently on each
    backend, so which of two tied overlapping boxes survives would depend on
    it. Each box's position is counted instead (boxes scoring more, plus tied
    boxes of lower index): a permutation of 0..N-1, whose inverse any sort
    finds exactly. The (B, N, N) comparison is the size of the IoU matrix NMS
    builds anyway.
    """
    num_boxes = scores.shape[1]
    scores = ops.where(ops.isnan(scores), float("-inf"), scores)  # NaN compares false to everything
    index = ops.arange(num_boxes)
    mine, other = scores[:, :, None], scores[:, None, :]  # [b, i, j]: box i against box j
    before = ops.logical_or(other > mine, ops.logical_and(other == mine, index[None, None, :] < index[None, :, None]))
    position = ops.sum(ops.cast(before, "int32"), axis=-1)
    return ops.argsort(position, axis=-1)
