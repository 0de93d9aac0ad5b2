"""Region proposals from RPN outputs, and final detections from box-head outputs (static shapes)."""

from keras import ops

from kresnet.transfer.detection.boxes import clip_boxes, decode_boxes
from kresnet.transfer.detection.nms import non_max_suppression
from kresnet.transfer.detection.targets import gather

NEG_INF = -1e9  # a finite "minus infinity" keeps top_k and float16 casts well-defined


def propose(anchors, logits, deltas, level_counts, image_sizes, pre_nms_topk, post_nms_topk,
            nms_threshold=0.7, min_size=0.0):
    """Per level: best `pre_nms_topk` anchors, decode, clip, NMS; then the best `post_nms_topk` overall.

    Args:
        anchors: tensor (A, 4), all levels concatenated.
        logits: tensor (B, A) objectness logits.
        deltas: tensor (B, A, 4).
        level_counts: list of int, anchors per level.
        image_sizes: tensor (B, 2) float, (height, width) of the real image inside the padding.
        pre_nms_topk: int. Candidates per level before NMS.
        post_nms_topk: int. Proposals per image.
        nms_threshold: float.
        min_size: float. Proposals not wider and taller than this (pixels) are dropped.

    Returns:
        (boxes (B, post_nms_topk, 4), scores (B, post_nms_topk), valid bool (B, post_nms_topk)).
    """
    boxes_all, scores_all = [], []
    start = 0
    height, width = image_sizes[:, 0:1], image_sizes[:, 1:2]
    width_k = min(pre_nms_topk, max(level_counts))
    for count in level_counts:
        level_logits = logits[:, start:start + count]
        level_deltas = deltas[:, start:start + count]
        level_anchors = anchors[start:start + count]
        start += count
        k = min(pre_nms_topk, count)
        scores, indices = ops.top_k(level_logits, k=k)
        boxes = decode_boxes(gather(level_deltas, indices), ops.take(level_anchors, indices, axis=0))
        boxes = clip_boxes(boxes, height, width)
        small = ops.logical_or(boxes[..., 2] - boxes[..., 0] <= min_size, boxes[..., 3] - boxes[..., 1] <= min_size)
        scores = ops.where(small, NEG_INF, scores)
        if k < width_k:  # pad small levels so all levels run through one NMS call
            scores = ops.concatenate([scores, ops.full((ops.shape(scores)[0], width_k - k), NEG_INF)], axis=1)
            boxes = ops.concatenate([boxes, ops.zeros((ops.shape(boxes)[0], width_k - k, 4))], axis=1)
        boxes_all.append(boxes)
        scores_all.append(scores)
    # Levels become extra batch entries: (B, L, K) -> (B * L, K), so NMS never mixes levels.
    num_levels = len(level_counts)
    boxes = ops.reshape(ops.stack(boxes_all, axis=1), (-1, width_k, 4))
    scores = ops.reshape(ops.stack(scores_all, axis=1), (-1, width_k))
    candidates = ops.where(scores > NEG_INF / 2, scores, -float("inf"))
    keep, keep_valid = non_max_suppression(boxes, candidates, width_k, nms_threshold)
    boxes = ops.reshape(gather(boxes, keep), (-1, num_levels * width_k, 4))
    scores = ops.reshape(ops.where(keep_valid, gather(scores, keep), NEG_INF), (-1, num_levels * width_k))
    k = min(post_nms_topk, scores.shape[1])
    scores, indices = ops.top_k(scores, k=k)
    boxes = gather(boxes, indices)
    valid = scores > NEG_INF / 2
    return boxes, scores, valid


def detect(proposals, proposal_valid, class_logits, box_deltas, image_sizes, box_weights,
           score_threshold=0.05, nms_threshold=0.5, pre_nms_topk=1000, max_detections=100, min_size=0.0):
    """Class-aware NMS over the box head's per-class boxes; `max_detections` per image, padded.

    Args:
        proposals: tensor (B, R, 4).
        proposal_valid: bool tensor (B, R).
        class_logits: tensor (B, R, K + 1), background first.
        box_deltas: tensor (B, R, K, 4), class-specific.
        image_sizes: tensor (B, 2) float (height, width).
        box_weights: 4 floats of the box coder.
        score_threshold: float. Lower scores are dropped.
        nms_threshold: float.
        pre_nms_topk: int. Best (box, class) candidates that enter NMS. Greedy NMS decides each box from
            the better ones only, so this changes nothing while `max_detections` boxes survive among them.
        max_detections: int.
        min_size: float. Boxes (after clipping) not wider and taller than this (pixels) are dropped.

    Returns:
        dict with `boxes` (B, D, 4), `scores` (B, D), `labels` int32 (B, D) in [0, K), `valid` bool (B, D).
    """
    num_classes = box_deltas.shape[2]
    probabilities = ops.softmax(ops.cast(class_logits, "float32"), axis=-1)[..., 1:]
    probabilities = ops.where(proposal_valid[..., None], probabilities, 0.0)
    boxes = decode_boxes(ops.cast(box_deltas, "float32"), proposals[:, :, None, :], box_weights)
    boxes = clip_boxes(boxes, image_sizes[:, 0, None, None], image_sizes[:, 1, None, None])
    candidates = proposals.shape[1] * num_classes  # static, even when the batch size is not
    flat_scores = ops.reshape(probabilities, (-1, candidates))
    flat_boxes = ops.reshape(boxes, (-1, candidates, 4))
    k = min(pre_nms_topk, flat_scores.shape[1])
    scores, indices = ops.top_k(flat_scores, k=k)
    boxes = gather(flat_boxes, indices)
    labels = ops.cast(indices % num_classes, "int32")
    keep_score = ops.logical_and(scores > score_threshold, boxes[..., 2] - boxes[..., 0] > min_size)
    keep_score = ops.logical_and(keep_score, boxes[..., 3] - boxes[..., 1] > min_size)
    # Boxes of different classes never overlap once shifted apart by more than the image size.
    shift = ops.cast(labels, "float32")[..., None] * (ops.max(image_sizes) + 1.0)
    keep, keep_valid = non_max_suppression(boxes + shift, ops.where(keep_score, scores, -float("inf")),
                                           max_detections, nms_threshold)
    return {
        "boxes": gather(boxes, keep),
        "scores": ops.where(keep_valid, gather(scores, keep), 0.0),
        "labels": gather(labels, keep),
        "valid": keep_valid,
    }
