"""Training targets of both stages in `keras.ops`: IoU matching and balanced random sampling (static shapes)."""

from keras import ops

from kresnet.transfer.detection.boxes import box_iou

POSITIVE, NEGATIVE, IGNORE = 1, 0, -1


def match_boxes(candidates, gt_boxes, gt_valid, positive_iou, negative_iou, allow_low_quality=False):
    """Label each candidate box positive / negative / ignored by its best ground-truth IoU.

    Args:
        candidates: tensor (B, N, 4) or (N, 4) (shared, e.g. anchors).
        gt_boxes: tensor (B, G, 4), padded.
        gt_valid: bool tensor (B, G).
        positive_iou: float. IoU >= this is positive.
        negative_iou: float. IoU < this is negative; in between is ignored.
        allow_low_quality: bool. Also make positive the candidates with the
            highest IoU of each ground-truth box (the RPN rule, so every box has an anchor).

    Returns:
        (labels int32 (B, N) in {1, 0, -1}, matched int32 (B, N) index into G, max_iou (B, N)).
    """
    if len(candidates.shape) == 2:
        candidates = candidates[None]
    iou = box_iou(candidates, gt_boxes)  # (B, N, G)
    iou = ops.where(gt_valid[:, None, :], iou, -1.0)
    max_iou = ops.max(iou, axis=-1)
    matched = ops.cast(ops.argmax(iou, axis=-1), "int32")
    labels = ops.full(ops.shape(max_iou), IGNORE, "int32")
    labels = ops.where(max_iou < negative_iou, NEGATIVE, labels)
    labels = ops.where(max_iou >= positive_iou, POSITIVE, labels)
    if allow_low_quality:
        best_per_gt = ops.max(iou, axis=1, keepdims=True)  # (B, 1, G)
        is_best = ops.logical_and(iou >= best_per_gt, best_per_gt > 0)
        labels = ops.where(ops.any(is_best, axis=-1), POSITIVE, labels)
    return labels, matched, max_iou


def sample_balanced(labels, num_samples, positive_fraction, priority):
    """Pick up to `num_samples` labelled entries per image, at most a fraction positive, highest priority first.

    Static shapes: the result has `num_positive + num_samples` slots; slots that
    are not picked have weight 0 (the picked ones never exceed `num_samples`).
    With uniform random priorities this is torchvision's `BalancedPositiveNegativeSampler`
    (a random subset of the positives, then of the negatives, to fill the rest).

    Args:
        labels: int tensor (B, N) in {1, 0, -1}.
        num_samples: int. Samples per image.
        positive_fraction: float. Largest share of positives.
        priority: float tensor (B, N) in [0, 1]: e.g. `keras.random.uniform` for a random sample.

    Returns:
        (indices int32 (B, S) into N, is_positive bool (B, S), picked float32 (B, S)).
    """
    num_entries = labels.shape[1]
    num_positive = min(int(num_samples * positive_fraction), num_entries)
    num_negative = min(num_samples, num_entries)
    noise = priority
    positive_values, positive_indices = ops.top_k(ops.where(labels == POSITIVE, noise, -1.0), k=num_positive)
    negative_values, negative_indices = ops.top_k(ops.where(labels == NEGATIVE, noise, -1.0), k=num_negative)
    positive_picked = positive_values >= 0
    positive_count = ops.sum(ops.cast(positive_picked, "int32"), axis=1, keepdims=True)
    room = ops.arange(num_negative, dtype="int32")[None, :] < num_samples - positive_count
    negative_picked = ops.logical_and(negative_values >= 0, room)
    indices = ops.concatenate([positive_indices, negative_indices], axis=1)
    is_positive = ops.concatenate([positive_picked, ops.zeros_like(negative_picked)], axis=1)
    picked = ops.cast(ops.concatenate([positive_picked, negative_picked], axis=1), "float32")
    return ops.cast(indices, "int32"), is_positive, picked


def gather(values, indices):
    """values (B, N, ...) at indices (B, S) -> (B, S, ...).

    Args:
        values: tensor (B, N) or (B, N, D).
        indices: int tensor (B, S).
    """
    if len(values.shape) == 2:
        return ops.take_along_axis(values, indices, axis=1)
    return ops.take_along_axis(values, indices[..., None], axis=1)
