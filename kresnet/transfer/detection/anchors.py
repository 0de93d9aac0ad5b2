"""Anchor boxes for FPN levels, in `keras.ops` (static feature sizes give constant anchors)."""

from keras import ops


def cell_anchors(sizes, aspect_ratios):
    """Anchors centred on (0, 0), one per (size, aspect ratio), size-major: (len(sizes) * len(ratios), 4).

    An anchor of size s and ratio r (height / width) has area s^2: w = s / sqrt(r), h = s sqrt(r).

    Args:
        sizes: list of float, in pixels.
        aspect_ratios: list of float, height / width.
    """
    anchors = []
    for size in sizes:
        for ratio in aspect_ratios:
            half_w, half_h = 0.5 * size / ratio**0.5, 0.5 * size * ratio**0.5
            anchors.append([-half_w, -half_h, half_w, half_h])
    return ops.convert_to_tensor(anchors, dtype="float32")


def level_anchors(feature_height, feature_width, stride, sizes, aspect_ratios, offset=0.5):
    """All anchors of one level, ordered (y, x, anchor): (H * W * A, 4) in image pixels.

    The order matches a head output of shape (B, H, W, A * k) reshaped to (B, H * W * A, k).

    Args:
        feature_height: int.
        feature_width: int.
        stride: int. Pixels per feature cell.
        sizes: list of float.
        aspect_ratios: list of float.
        offset: float. Anchor centre inside its cell, 0.5 = the cell centre.
    """
    base = cell_anchors(sizes, aspect_ratios)
    xs = (ops.arange(feature_width, dtype="float32") + offset) * stride
    ys = (ops.arange(feature_height, dtype="float32") + offset) * stride
    grid_y, grid_x = ops.meshgrid(ys, xs, indexing="ij")
    centres = ops.stack([grid_x, grid_y, grid_x, grid_y], axis=-1)  # (H, W, 4)
    anchors = centres[:, :, None, :] + base[None, None, :, :]
    return ops.reshape(anchors, (-1, 4))


def multilevel_anchors(feature_shapes, strides, sizes, aspect_ratios, offset=0.5):
    """Anchors of every level concatenated, and the number per level.

    Args:
        feature_shapes: list of (height, width) ints, one per level.
        strides: list of int, one per level.
        sizes: list (per level) of lists of float.
        aspect_ratios: list of float, shared by all levels.
        offset: float. See `level_anchors`.

    Returns:
        (anchors (total, 4), counts list of int).
    """
    levels = [level_anchors(h, w, s, level_sizes, aspect_ratios, offset)
              for (h, w), s, level_sizes in zip(feature_shapes, strides, sizes)]
    counts = [h * w * len(level_sizes) * len(aspect_ratios) for (h, w), level_sizes in zip(feature_shapes, sizes)]
    return ops.concatenate(levels, axis=0), counts
