"""Anchor boxes for FPN levels, in `keras.ops` (static feature sizes give constant anchors).

Two conventions are in use. kresnet's default centres each anchor in its cell (`offset=0.5`)
at the level's nominal stride. torchvision's `AnchorGenerator` puts it on the cell's corner
(`offset=0`), rounds each cell anchor to whole pixels, and takes the stride of a level as
padded image side // feature side per axis, which is not the nominal 64 on P6 when a side
divided by 32 is odd (800 px: P6 has 13 cells, stride 61).
"""

from keras import ops

GRID_STRIDES = ("level", "image_over_grid")


def cell_anchors(sizes, aspect_ratios, round_to_pixels=False):
    """Anchors centred on (0, 0), one per (size, aspect ratio), size-major: (len(sizes) * len(ratios), 4).

    An anchor of size s and ratio r (height / width) has area s^2: w = s / sqrt(r), h = s sqrt(r).

    Args:
        sizes: list of float, in pixels.
        aspect_ratios: list of float, height / width.
        round_to_pixels: bool. Round every corner to a whole pixel (half to even), as torchvision.
    """
    anchors = []
    for size in sizes:
        for ratio in aspect_ratios:
            half_w, half_h = 0.5 * size / ratio**0.5, 0.5 * size * ratio**0.5
            anchors.append([-half_w, -half_h, half_w, half_h])
    anchors = ops.convert_to_tensor(anchors, dtype="float32")
    return ops.round(anchors) if round_to_pixels else anchors


def level_anchors(feature_height, feature_width, stride, sizes, aspect_ratios, offset=0.5, round_to_pixels=False):
    """All anchors of one level, ordered (y, x, anchor): (H * W * A, 4) in image pixels.

    The order matches a head output of shape (B, H, W, A * k) reshaped to (B, H * W * A, k).

    Args:
        feature_height: int.
        feature_width: int.
        stride: int, or (stride_y, stride_x). Pixels per feature cell.
        sizes: list of float.
        aspect_ratios: list of float.
        offset: float. Anchor centre inside its cell, 0.5 = the cell centre, 0 = its top-left corner.
        round_to_pixels: bool. See `cell_anchors`.
    """
    stride_y, stride_x = stride if isinstance(stride, (tuple, list)) else (stride, stride)
    base = cell_anchors(sizes, aspect_ratios, round_to_pixels)
    xs = (ops.arange(feature_width, dtype="float32") + offset) * stride_x
    ys = (ops.arange(feature_height, dtype="float32") + offset) * stride_y
    grid_y, grid_x = ops.meshgrid(ys, xs, indexing="ij")
    centres = ops.stack([grid_x, grid_y, grid_x, grid_y], axis=-1)  # (H, W, 4)
    anchors = centres[:, :, None, :] + base[None, None, :, :]
    return ops.reshape(anchors, (-1, 4))


def grid_strides(feature_shapes, strides, image_shape, rule="level"):
    """The (stride_y, stride_x) of each level's anchor grid.

    Args:
        feature_shapes: list of (height, width) ints, one per level.
        strides: list of int, the nominal stride of each level.
        image_shape: (height, width) of the padded input.
        rule: "level" (the nominal stride) or "image_over_grid" (padded side // feature side, torchvision's).
    """
    if rule not in GRID_STRIDES:
        raise ValueError(f"rule must be one of {list(GRID_STRIDES)}. Received: rule={rule!r}")
    if rule == "level":
        return [(stride, stride) for stride in strides]
    return [(image_shape[0] // height, image_shape[1] // width) for height, width in feature_shapes]


def multilevel_anchors(feature_shapes, strides, sizes, aspect_ratios, offset=0.5, round_to_pixels=False):
    """Anchors of every level concatenated, and the number per level.

    Args:
        feature_shapes: list of (height, width) ints, one per level.
        strides: list, one per level, of int or (stride_y, stride_x).
        sizes: list (per level) of lists of float.
        aspect_ratios: list of float, shared by all levels.
        offset: float. See `level_anchors`.
        round_to_pixels: bool. See `cell_anchors`.

    Returns:
        (anchors (total, 4), counts list of int).
    """
    levels = [level_anchors(h, w, s, level_sizes, aspect_ratios, offset, round_to_pixels)
              for (h, w), s, level_sizes in zip(feature_shapes, strides, sizes)]
    counts = [h * w * len(level_sizes) * len(aspect_ratios) for (h, w), level_sizes in zip(feature_shapes, sizes)]
    return ops.concatenate(levels, axis=0), counts
