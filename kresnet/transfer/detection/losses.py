"""Faster R-CNN losses over sampled entries, normalised as Detectron2 does (by the number sampled)."""

from keras import ops


def _normaliser(picked):
    return ops.maximum(ops.sum(picked), 1.0)


def objectness_loss(logits, positive, picked):
    """Binary cross-entropy of the RPN objectness over the sampled anchors.

    Args:
        logits: tensor (B, S).
        positive: bool tensor (B, S). Target 1 where True.
        picked: float tensor (B, S). 1 for sampled anchors.
    """
    targets = ops.cast(positive, "float32")
    # Stable BCE with logits: max(x, 0) - x z + log(1 + exp(-|x|)).
    per_entry = ops.maximum(logits, 0.0) - logits * targets + ops.log1p(ops.exp(-ops.abs(logits)))
    return ops.sum(per_entry * picked) / _normaliser(picked)


def box_regression_loss(deltas, targets, positive, picked, beta=0.0):
    """Smooth-L1 (L1 when `beta` is 0, Detectron2's default) on positives, divided by the number sampled.

    Args:
        deltas: tensor (B, S, 4).
        targets: tensor (B, S, 4).
        positive: bool tensor (B, S).
        picked: float tensor (B, S).
        beta: float. Smooth-L1 transition point.
    """
    difference = ops.abs(deltas - targets)
    if beta > 0:
        difference = ops.where(difference < beta, 0.5 * difference * difference / beta, difference - 0.5 * beta)
    weight = ops.cast(positive, "float32") * picked
    return ops.sum(ops.sum(difference, axis=-1) * weight) / _normaliser(picked)


def classification_loss(logits, classes, picked):
    """Softmax cross-entropy over K + 1 classes (0 = background) of the sampled RoIs.

    Args:
        logits: tensor (B, S, K + 1).
        classes: int tensor (B, S).
        picked: float tensor (B, S).
    """
    log_probabilities = ops.log_softmax(logits, axis=-1)
    chosen = ops.take_along_axis(log_probabilities, ops.cast(classes, "int32")[..., None], axis=-1)[..., 0]
    return -ops.sum(chosen * picked) / _normaliser(picked)
