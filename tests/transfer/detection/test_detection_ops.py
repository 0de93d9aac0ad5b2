"""Detection ops in keras.ops against NumPy references: IoU, box coding, anchors, NMS, RoIAlign."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from kresnet.transfer.detection.anchors import level_anchors, multilevel_anchors
from kresnet.transfer.detection.boxes import box_iou, clip_boxes, decode_boxes, encode_boxes
from kresnet.transfer.detection.nms import non_max_suppression
from kresnet.transfer.detection.roi_align import assign_levels, multilevel_roi_align, roi_align
from kresnet.transfer.detection.voc_eval import box_iou_numpy


def random_boxes(rng, count, size=64.0, min_side=2.0, max_side=30.0):
    corner = rng.uniform(-5, size, (count, 2))
    sides = rng.uniform(min_side, max_side, (count, 2))
    return np.concatenate([corner, corner + sides], axis=1).astype(np.float32)


def test_box_iou_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = random_boxes(rng, 7), random_boxes(rng, 5)
    b[0] = a[0]
    got = ops.convert_to_numpy(box_iou(a, b))
    np.testing.assert_allclose(got, box_iou_numpy(a, b), atol=1e-6)
    assert got[0, 0] == pytest.approx(1.0)
    batched = ops.convert_to_numpy(box_iou(np.stack([a, a]), np.stack([b, b])))
    np.testing.assert_allclose(batched[1], got, atol=1e-6)


def test_encode_matches_formula_and_decode_round_trips():
    rng = np.random.default_rng(1)
    anchors, boxes = random_boxes(rng, 20), random_boxes(rng, 20)
    weights = (10.0, 10.0, 5.0, 5.0)
    deltas = ops.convert_to_numpy(encode_boxes(boxes, anchors, weights))
    wa, ha = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    expected_dx = 10 * ((boxes[:, 0] + w / 2) - (anchors[:, 0] + wa / 2)) / wa
    np.testing.assert_allclose(deltas[:, 0], expected_dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(deltas[:, 3], 5 * np.log(h / ha), rtol=1e-5, atol=1e-5)
    decoded = ops.convert_to_numpy(decode_boxes(deltas, anchors, weights))
    np.testing.assert_allclose(decoded, boxes, atol=1e-3)
    # Huge deltas are clamped instead of overflowing.
    huge = ops.convert_to_numpy(decode_boxes(np.full((1, 4), 1e4, np.float32), anchors[:1]))
    assert np.isfinite(huge).all()


def test_clip_boxes():
    clipped = ops.convert_to_numpy(clip_boxes(np.array([[-3, 5, 70, 90]], np.float32), 64.0, 60.0))
    np.testing.assert_allclose(clipped, [[0, 5, 60, 64]])


def test_anchors_centres_sizes_and_order():
    anchors = ops.convert_to_numpy(level_anchors(2, 3, 8, sizes=[16], aspect_ratios=[0.5, 1.0, 2.0]))
    assert anchors.shape == (2 * 3 * 3, 4)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    # (y, x, anchor) order, centres at the cell middles.
    np.testing.assert_allclose(centres[:3], [[4, 4]] * 3)
    np.testing.assert_allclose(centres[3], [12, 4])
    np.testing.assert_allclose(centres[9], [4, 12])
    sides = anchors[:3, 2:] - anchors[:3, :2]
    np.testing.assert_allclose(sides[:, 0] * sides[:, 1], [256] * 3, rtol=1e-5)
    np.testing.assert_allclose(sides[:, 1] / sides[:, 0], [0.5, 1.0, 2.0], rtol=1e-5)
    everything, counts = multilevel_anchors([(4, 4), (2, 2)], [4, 8], [[8], [16]], [1.0])
    assert counts == [16, 4] and ops.shape(everything) == (20, 4)


def numpy_nms(boxes, scores, iou_threshold, score_threshold=None):
    order = np.argsort(-scores, kind="stable")
    keep = []
    for index in order:
        if score_threshold is not None and scores[index] <= score_threshold:
            continue
        if all(box_iou_numpy(boxes[index], boxes[kept])[0, 0] <= iou_threshold for kept in keep):
            keep.append(index)
    return keep


@pytest.mark.parametrize("max_output", [5, 60])
def test_nms_matches_numpy(max_output):
    rng = np.random.default_rng(2)
    boxes = np.stack([random_boxes(rng, 40, size=40), random_boxes(rng, 40, size=40)])
    scores = rng.permutation(80).reshape(2, 40).astype(np.float32) / 80  # no ties
    indices, valid = non_max_suppression(boxes, scores, max_output, iou_threshold=0.3, score_threshold=0.1)
    indices, valid = ops.convert_to_numpy(indices), ops.convert_to_numpy(valid)
    assert indices.shape == (2, max_output) and valid.shape == (2, max_output)
    for image in range(2):
        expected = numpy_nms(boxes[image], scores[image], 0.3, 0.1)[:max_output]
        assert len(expected) > 3  # overlaps happen, so suppression is exercised
        assert list(indices[image][valid[image]]) == expected
        assert not valid[image][len(expected):].any() and (indices[image][~valid[image]] == 0).all()


def test_nms_compiles_inside_a_model():
    class Suppress(keras.layers.Layer):
        def call(self, inputs):
            indices, valid = non_max_suppression(inputs[..., :4], inputs[..., 4], 4, 0.5)
            return ops.where(valid, indices, -1)

    data = np.zeros((2, 6, 5), np.float32)
    data[:, :, :4] = [[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [21, 20, 30, 30], [40, 40, 50, 50], [0, 0, 9, 9]]
    data[:, :, 4] = [0.9, 0.8, 0.7, 0.6, 0.5, 0.95]
    model = keras.Sequential([keras.Input((6, 5)), Suppress()])
    got = model.predict(data, verbose=0, batch_size=2)
    np.testing.assert_array_equal(got, [[5, 2, 4, -1]] * 2)


def numpy_roi_align(features, box, output_size, scale, sampling_ratio, aligned):
    """A direct loop over bins and samples, written from torchvision's roi_align description."""
    height, width, channels = features.shape
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = [v * scale for v in box]
    x1, y1, x2, y2 = x1 - offset, y1 - offset, x2 - offset, y2 - offset
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_w, bin_h = roi_w / output_size, roi_h / output_size
    out = np.zeros((output_size, output_size, channels))

    def bilinear(y, x):
        if y < -1.0 or y > height or x < -1.0 or x > width:
            return np.zeros(channels)
        y, x = max(y, 0.0), max(x, 0.0)
        y_low, x_low = int(y), int(x)
        if y_low >= height - 1:
            y_high = y_low = height - 1
            y = float(y_low)
        else:
            y_high = y_low + 1
        if x_low >= width - 1:
            x_high = x_low = width - 1
            x = float(x_low)
        else:
            x_high = x_low + 1
        ly, lx = y - y_low, x - x_low
        hy, hx = 1 - ly, 1 - lx
        return (hy * hx * features[y_low, x_low] + hy * lx * features[y_low, x_high]
                + ly * hx * features[y_high, x_low] + ly * lx * features[y_high, x_high])

    for ph in range(output_size):
        for pw in range(output_size):
            total = np.zeros(channels)
            for iy in range(sampling_ratio):
                for ix in range(sampling_ratio):
                    y = y1 + ph * bin_h + (iy + 0.5) * bin_h / sampling_ratio
                    x = x1 + pw * bin_w + (ix + 0.5) * bin_w / sampling_ratio
                    total += bilinear(y, x)
            out[ph, pw] = total / sampling_ratio**2
    return out


@pytest.mark.parametrize("aligned,sampling_ratio", [(True, 2), (False, 1), (True, 3)])
def test_roi_align_matches_numpy(aligned, sampling_ratio):
    rng = np.random.default_rng(3)
    features = rng.normal(size=(2, 9, 11, 3)).astype(np.float32)
    boxes = np.stack([random_boxes(rng, 6, size=40, min_side=0.5), random_boxes(rng, 6, size=40)])
    boxes[0, 0] = [-20, -20, -10, -12]  # entirely outside
    boxes[1, 0] = [30, 20, 60, 50]  # spills over the right and bottom edges
    got = ops.convert_to_numpy(roi_align(features, boxes, 3, 0.25, sampling_ratio, aligned))
    assert got.shape == (2, 6, 3, 3, 3)
    for image in range(2):
        for index in range(6):
            expected = numpy_roi_align(features[image], boxes[image, index], 3, 0.25, sampling_ratio, aligned)
            np.testing.assert_allclose(got[image, index], expected, atol=1e-5)


def test_multilevel_roi_align_reads_the_assigned_level():
    rng = np.random.default_rng(4)
    strides = [4, 8, 16, 32]
    levels = [rng.normal(size=(2, 256 // s, 256 // s, 2)).astype(np.float32) for s in strides]
    sides = np.array([20, 60, 120, 250, 500, 8], np.float32)
    boxes = np.stack([np.stack([np.zeros(6), np.zeros(6), sides, sides], axis=1)] * 2).astype(np.float32)
    boxes[1] += 3.0
    assigned = ops.convert_to_numpy(assign_levels(boxes, 2, 5))
    expected_levels = np.clip(np.floor(4 + np.log2(sides / 224 + 1e-8)), 2, 5)
    np.testing.assert_array_equal(assigned[0], expected_levels)
    got = ops.convert_to_numpy(multilevel_roi_align(levels, strides, boxes, 2, 2, True))
    for image in range(2):
        for index in range(6):
            level = int(assigned[image, index]) - 2
            expected = numpy_roi_align(levels[level][image], boxes[image, index], 2, 1 / strides[level], 2, True)
            np.testing.assert_allclose(got[image, index], expected, atol=1e-5)


def test_roi_align_keeps_half_precision():
    features = np.ones((1, 4, 4, 2), np.float16)
    got = roi_align(ops.convert_to_tensor(features), np.array([[[0, 0, 8, 8]]], np.float32), 2, 0.5)
    assert keras.backend.standardize_dtype(got.dtype) == "float16"
    np.testing.assert_allclose(ops.convert_to_numpy(got), 1.0)
    assert math.isclose(float(ops.convert_to_numpy(got).mean()), 1.0)


def test_nms_keeps_the_lowest_index_of_tied_overlapping_boxes():
    # torchvision's CPU NMS ranks tied scores in index order; an unstable sort made the box kept
    # from a tied overlapping pair differ by backend (and by the number of boxes).
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 64, size=30)[None]
    scores = rng.choice([0.3, 0.6, 0.9], size=(1, 64)).astype(np.float32)  # each score ~21 times
    scores[0, 5] = np.nan  # never kept, and does not disturb the others' order
    for pair in range(3):  # and identical boxes with identical scores, at spread-out indices
        boxes[0, 40 + pair] = boxes[0, 10 * pair + 1]
        scores[0, 40 + pair] = scores[0, 10 * pair + 1]
    indices, valid = non_max_suppression(boxes, scores, 64, iou_threshold=0.5)
    kept = list(ops.convert_to_numpy(indices)[0][ops.convert_to_numpy(valid)[0]])
    expected = numpy_nms(boxes[0], np.where(np.isnan(scores[0]), -np.inf, scores[0]), 0.5)
    expected = [index for index in expected if np.isfinite(scores[0, index])]
    assert kept == expected
    assert not {40, 41, 42} & set(kept)  # the later copy of a tied identical pair never survives
