"""RoIAlign (Mask R-CNN) in `keras.ops`, single level and over FPN levels.

Sampling follows torchvision's `roi_align` / Detectron2's `ROIAlign`: each
output bin averages `sampling_ratio` x `sampling_ratio` bilinear samples at
the sub-bin centres; with `aligned=True` box corners are shifted by half a
pixel so a box's pixel coordinates line up with the feature grid. A sample
more than one cell outside the map reads 0; samples in the last cell clamp
to the border. The adaptive `sampling_ratio=0` of torchvision depends on the
box size, which static shapes cannot express, so it is not offered.
"""

from keras import ops


def roi_align(features, boxes, output_size, spatial_scale, sampling_ratio=2, aligned=True):
    """Pool a fixed-size feature patch per box from one feature map.

    Args:
        features: tensor (B, H, W, C).
        boxes: tensor (B, R, 4), xyxy in input-image pixels.
        output_size: int. Bins per side.
        spatial_scale: float. Feature cells per image pixel (1 / stride).
        sampling_ratio: int > 0. Samples per bin side.
        aligned: bool. Shift by -0.5 cell (torchvision's `aligned=True`).

    Returns:
        tensor (B, R, output_size, output_size, C).
    """
    batch, height, width, channels = ops.shape(features)
    num_boxes = boxes.shape[1]
    table = ops.reshape(features, (-1, channels))
    image = ops.arange(batch, dtype="int32")[:, None] * ops.ones((1, num_boxes), "int32")
    ones = ops.ones_like(boxes[..., 0])
    return _sample(table, boxes, image * (height * width), ones * height, ones * width, ones * spatial_scale,
                   output_size, sampling_ratio, aligned)


LEVEL_RULES = ("detectron2", "torchvision")


def assign_levels(boxes, min_level, max_level, canonical_size=224.0, canonical_level=4, rule="detectron2"):
    """FPN level of each box (Lin et al., eq. 1): floor(k0 + log2(sqrt(area) / 224)), clamped.

    The two references differ in where the guard against rounding goes: Detectron2 takes
    floor(k0 + log2(sqrt(area) / s0 + 1e-8)), torchvision's `LevelMapper` floor(k0 + log2(sqrt(area) / s0) + 1e-6).

    Args:
        boxes: tensor (..., 4) xyxy pixels.
        min_level: int. Finest level, e.g. 2 for P2.
        max_level: int. Coarsest level, e.g. 5 for P5.
        canonical_size: float. Box size that maps to `canonical_level`.
        canonical_level: int.
        rule: "detectron2" or "torchvision".

    Returns:
        int32 tensor (...) in [min_level, max_level].
    """
    if rule not in LEVEL_RULES:
        raise ValueError(f"rule must be one of {list(LEVEL_RULES)}. Received: rule={rule!r}")
    area = ops.maximum(boxes[..., 2] - boxes[..., 0], 0.0) * ops.maximum(boxes[..., 3] - boxes[..., 1], 0.0)
    scale = ops.sqrt(area) / canonical_size
    if rule == "torchvision":
        level = ops.floor(canonical_level + ops.log2(scale) + 1e-6)
    else:
        level = ops.floor(canonical_level + ops.log2(scale + 1e-8))
    return ops.cast(ops.clip(level, min_level, max_level), "int32")


def multilevel_roi_align(features, strides, boxes, output_size, sampling_ratio=2, aligned=True, min_level=2,
                         canonical_size=224.0, canonical_level=4, level_rule="detectron2"):
    """RoIAlign where each box reads the FPN level `assign_levels` picks for it.

    All levels are flattened into one table so each box is sampled once, from its own level.

    Args:
        features: list of tensors (B, H_l, W_l, C), finest first (level `min_level` + i).
        strides: list of int, one per level.
        boxes: tensor (B, R, 4) xyxy pixels.
        output_size: int.
        sampling_ratio: int > 0.
        aligned: bool.
        min_level: int. Level number of `features[0]`.
        canonical_size: float. See `assign_levels`.
        canonical_level: int. See `assign_levels`.
        level_rule: str. See `assign_levels`.

    Returns:
        tensor (B, R, output_size, output_size, C).
    """
    channels = ops.shape(features[0])[-1]
    batch = ops.shape(features[0])[0]
    shapes = [ops.shape(level)[1:3] for level in features]
    sizes = [h * w for h, w in shapes]
    table = ops.concatenate([ops.reshape(level, (-1, channels)) for level in features], axis=0)
    # Level l's block starts after batch * (cells of the finer levels).
    cells_before = [sum(sizes[:index]) for index in range(len(sizes))]
    level = assign_levels(boxes, min_level, min_level + len(features) - 1, canonical_size, canonical_level,
                          level_rule) - min_level
    num_boxes = boxes.shape[1]
    image = ops.arange(batch, dtype="int32")[:, None] * ops.ones((1, num_boxes), "int32")

    def per_level(values, dtype):
        return ops.take(ops.convert_to_tensor(values, dtype=dtype), level, axis=0)

    base = batch * per_level(cells_before, "int32") + image * per_level(sizes, "int32")
    height = per_level([h for h, _ in shapes], "float32")
    width = per_level([w for _, w in shapes], "float32")
    scale = per_level([1.0 / s for s in strides], "float32")
    return _sample(table, boxes, base, height, width, scale, output_size, sampling_ratio, aligned)


def _axis_samples(start, extent, size, output_size, sampling_ratio):
    """Per-box sample coordinates along one axis, with torchvision's edge rules.

    Returns low/high integer indices and their weights (zero outside the map), (B, R, S).
    """
    steps = (ops.arange(output_size * sampling_ratio, dtype="float32") + 0.5) / sampling_ratio
    coords = start[..., None] + (extent / output_size)[..., None] * steps
    size = size[..., None]
    inside = ops.logical_and(coords >= -1.0, coords <= size)
    coords = ops.maximum(coords, 0.0)
    low = ops.floor(coords)
    at_edge = low >= size - 1
    low = ops.where(at_edge, size - 1, low)
    coords = ops.where(at_edge, low, coords)
    high = ops.where(at_edge, low, low + 1)
    high_weight = coords - low
    low_weight = 1.0 - high_weight
    mask = ops.cast(inside, "float32")
    return ops.cast(low, "int32"), ops.cast(high, "int32"), low_weight * mask, high_weight * mask


def _sample(table, boxes, base, height, width, scale, output_size, sampling_ratio, aligned):
    if sampling_ratio <= 0:
        raise ValueError(f"sampling_ratio must be a positive int (static shapes). Received: sampling_ratio={sampling_ratio}")
    boxes = ops.cast(boxes, "float32")
    offset = 0.5 if aligned else 0.0
    x1 = boxes[..., 0] * scale - offset
    y1 = boxes[..., 1] * scale - offset
    roi_width = (boxes[..., 2] - boxes[..., 0]) * scale
    roi_height = (boxes[..., 3] - boxes[..., 1]) * scale
    if not aligned:  # the legacy behaviour forces boxes to at least one cell
        roi_width, roi_height = ops.maximum(roi_width, 1.0), ops.maximum(roi_height, 1.0)
    y_low, y_high, wy_low, wy_high = _axis_samples(y1, roi_height, height, output_size, sampling_ratio)
    x_low, x_high, wx_low, wx_high = _axis_samples(x1, roi_width, width, output_size, sampling_ratio)
    row_width = ops.cast(width, "int32")[..., None, None]
    base = base[..., None, None]
    result = 0.0
    for rows, row_weight in ((y_low, wy_low), (y_high, wy_high)):
        for cols, col_weight in ((x_low, wx_low), (x_high, wx_high)):
            index = base + rows[..., :, None] * row_width + cols[..., None, :]  # (B, R, Sy, Sx)
            weight = ops.cast(row_weight[..., :, None] * col_weight[..., None, :], table.dtype)
            result = result + ops.take(table, index, axis=0) * weight[..., None]
    num_boxes, channels = boxes.shape[1], ops.shape(table)[-1]
    result = ops.reshape(result, (-1, num_boxes, output_size, sampling_ratio, output_size, sampling_ratio, channels))
    return ops.mean(result, axis=(3, 5))
