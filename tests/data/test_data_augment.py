"""The paper's transforms: distributions inside the paper's ranges, colour maps against NumPy, exact eval crop."""

import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kresnet.data import augment, decode, pillow_baseline

DRAWS = 2000


def _draw(fn, n=DRAWS, dtype=tf.float32):
    """`fn(seed)` for n different stateless seeds, in one graph call."""
    seeds = tf.stack([tf.zeros([n], tf.int64), tf.range(n, dtype=tf.int64)], axis=1)
    return tf.function(lambda s: tf.map_fn(fn, s, fn_output_signature=dtype))(seeds).numpy()


def _windows(height, width, n=DRAWS, **kwargs):
    return _draw(lambda s: augment.sample_crop_window(height, width, s, **kwargs), n, tf.int32)


def test_crop_windows_lie_inside_the_image_with_the_paper_area_and_ratio():
    height, width = 300, 400
    windows = _windows(height, width)
    top, left, h, w = windows.T
    assert np.all(top >= 0) and np.all(left >= 0) and np.all(top + h <= height) and np.all(left + w <= width)
    area = h * w / (height * width)
    ratio = w / h
    assert area.min() >= 0.08 - 0.01 and area.max() <= 1.0
    assert ratio.min() >= 0.75 * 0.97 and ratio.max() <= 4 / 3 * 1.03
    # Same procedure, independently in NumPy: the area distributions agree.
    rng = np.random.default_rng(0)
    reference = np.array([pillow_baseline.sample_crop_window(rng, height, width) for _ in range(DRAWS)])
    reference_area = reference[:, 2] * reference[:, 3] / (height * width)
    assert abs(area.mean() - reference_area.mean()) < 0.03
    assert 0.4 < area.mean() < 0.56
    # Wide crops fit a landscape image more often, so compare the ratio with the reference, not with 1.
    reference_ratio = reference[:, 3] / reference[:, 2]
    assert abs(np.mean(np.log(ratio)) - np.mean(np.log(reference_ratio))) < 0.02
    # Positions are uniform: the crop centre is on average the image centre.
    assert abs(np.mean(left + w / 2) - width / 2) < 6 and abs(np.mean(top + h / 2) - height / 2) < 6


def test_crop_falls_back_to_the_ratio_clamped_centre_crop():
    window = augment.sample_crop_window(300, 600, tf.constant([1, 2]), area_range=(1.5, 2.0)).numpy()
    np.testing.assert_array_equal(window, [0, 100, 300, 400])
    rng = np.random.default_rng(0)
    assert pillow_baseline.sample_crop_window(rng, 300, 600, area_range=(1.5, 2.0)) == (0, 100, 300, 400)
    window = augment.sample_crop_window(200, 100, tf.constant([1, 2]), area_range=(1.5, 2.0)).numpy()
    np.testing.assert_array_equal(window, [(200 - 133) // 2, 0, 133, 100])


def test_flip_rate_is_one_half():
    image = tf.constant([[[0.0], [1.0]]])
    flipped = _draw(lambda s: augment.random_flip(image, s)[0, 0, 0])
    assert abs(flipped.mean() - 0.5) < 0.04


def test_colour_factors_are_uniform_on_the_paper_range():
    factors = _draw(augment.sample_colour_factors)
    assert factors.min() >= 0.6 and factors.max() <= 1.4
    np.testing.assert_allclose(factors.mean(0), 1.0, atol=0.02)
    np.testing.assert_allclose(factors.std(0), 0.8 / math.sqrt(12), atol=0.015)


@pytest.mark.parametrize("factors", [(1.0, 1.0, 1.0), (1.3, 0.7, 1.2), (0.6, 1.4, 0.6), (1.1, 0.0, 1.0)])
def test_colour_matrix_matches_the_numpy_reference(factors):
    got = augment.colour_matrix(*[tf.constant(f, tf.float32) for f in factors]).numpy()
    np.testing.assert_allclose(got, pillow_baseline.colour_matrix(*factors), atol=1e-5)


def test_colour_factors_mean_what_they_say():
    grey = np.array([100.0, 100.0, 100.0])
    red = np.array([200.0, 40.0, 30.0])
    # Brightness scales; saturation leaves greys alone and 0 gives the luma grey; hue 1 is the identity.
    np.testing.assert_allclose(pillow_baseline.colour_matrix(1.3, 1.0, 1.0) @ red, 1.3 * red, rtol=1e-6)
    np.testing.assert_allclose(pillow_baseline.colour_matrix(1.0, 0.6, 1.0) @ grey, grey, atol=1e-6)
    luma = 0.299 * 200 + 0.587 * 40 + 0.114 * 30
    np.testing.assert_allclose(pillow_baseline.colour_matrix(1.0, 0.0, 1.0) @ red, [luma] * 3, rtol=1e-6)
    np.testing.assert_allclose(pillow_baseline.colour_matrix(1.0, 1.0, 1.0) @ red, red, rtol=1e-6)
    # A hue rotation keeps luma and chroma magnitude (YIQ rotation) but moves the colour.
    yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.321], [0.211, -0.523, 0.311]])
    rotated = pillow_baseline.colour_matrix(1.0, 1.0, 1.4) @ red
    assert abs((yiq @ rotated)[0] - (yiq @ red)[0]) < 0.5
    assert abs(np.linalg.norm((yiq @ rotated)[1:]) - np.linalg.norm((yiq @ red)[1:])) < 0.5
    assert np.linalg.norm(rotated - red) > 50


def test_lighting_noise_has_std_point_one_along_the_eigenvectors():
    offsets = _draw(augment.sample_lighting_offset)
    alphas = offsets @ np.asarray(augment.EIGVEC) / np.asarray(augment.EIGVAL)
    np.testing.assert_allclose(alphas.std(0), 0.1, atol=0.01)
    np.testing.assert_allclose(alphas.mean(0), 0.0, atol=0.01)


def test_fused_colour_and_normalise_equals_the_stepwise_numpy_transform():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, (5, 7, 3)).astype(np.float32)
    seed = tf.constant([3, 4], tf.int64)
    got = augment.colour_and_normalise(tf.constant(image), seed).numpy()
    colour_seed, light_seed = augment.split_seed(seed, 2)
    factors = augment.sample_colour_factors(colour_seed).numpy()
    offset = augment.sample_lighting_offset(light_seed).numpy()
    expected = pillow_baseline.normalise(image @ pillow_baseline.colour_matrix(*factors).T + offset)
    np.testing.assert_allclose(got, expected, atol=1e-3)


@pytest.mark.parametrize("height,width", [(224, 224), (5, 6), (5, 7), (None, None)])
def test_pixel_affine_equals_the_per_pixel_product_for_any_pixel_count(height, width):
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 255, (height or 9, width or 11, 3)).astype(np.float32)
    matrix, bias = rng.normal(size=(3, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    # (None, None): shape unknown while tracing, as in a pipeline of mixed-size images.
    affine = tf.function(augment.apply_pixel_affine, input_signature=[tf.TensorSpec([height, width, 3]), tf.TensorSpec([3, 3]), tf.TensorSpec([3])])
    np.testing.assert_allclose(affine(image, matrix, bias).numpy(), image @ matrix + bias, rtol=1e-5, atol=1e-3)


def test_train_transform_output_size_and_scale():
    rng = np.random.default_rng(0)
    encoded = tf.io.encode_jpeg(tf.constant(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)))
    images = _draw(lambda s: decode.train_image(encoded, s, 24), n=50)
    assert images.shape == (50, 24, 24, 3) and images.dtype == np.float32
    # Normalised: roughly zero mean, unit spread (uniform 0..255 noise has std ~74 before the /~58).
    assert abs(images.mean()) < 0.4 and 0.7 < images.std() < 2.0


def test_centre_crop_offsets_are_exact():
    image = tf.reshape(tf.range(9 * 12), [9, 12, 1])
    crop = augment.centre_crop(image, 4).numpy()[..., 0]
    np.testing.assert_array_equal(crop, np.arange(9 * 12).reshape(9, 12)[2:6, 4:8])


def test_eval_transform_resizes_the_shorter_side_and_crops_the_centre():
    assert augment.default_resize_size(224) == 256 and augment.default_resize_size(32) == 37
    image = np.zeros((37, 74, 3), np.uint8)
    image[:, 37 - 16 : 37 + 16] = 255  # a bright band exactly 32 wide around the centre column
    out = augment.eval_transform(tf.constant(image), 32, 37).numpy()
    assert out.shape == (32, 32, 3)
    # Shorter side already 37: no resize, so the centred 32x32 crop is the band, exactly.
    np.testing.assert_allclose(out, pillow_baseline.normalise(np.full((32, 32, 3), 255)), atol=1e-5)
    # Non-trivial resize (80x120 -> 36x54, even margins): output is symmetric about the centre like the input.
    sym = np.zeros((80, 120, 3), np.uint8)
    sym[30:50, 50:70] = 200
    out = augment.eval_transform(tf.constant(sym), 32, 36).numpy()
    np.testing.assert_allclose(out, out[::-1, ::-1], atol=1e-4)
    reference = pillow_baseline.eval_transform(Image.fromarray(sym), 32, 36)
    np.testing.assert_allclose(out, reference, atol=0.1)



def test_the_crop_area_floor_is_a_setting_and_the_paper_default_is_unchanged():
    encoded = tf.io.encode_jpeg(tf.zeros((60, 80, 3), tf.uint8))

    def crop_areas(**kwargs):
        shapes = _draw(lambda s: tf.shape(decode.decode_crop(encoded, s, **kwargs))[:2], n=400, dtype=tf.int32)
        return shapes[:, 0] * shapes[:, 1] / (60 * 80)

    paper, floored = crop_areas(), crop_areas(min_crop_area=0.5)
    assert paper.min() < 0.15  # 8% .. 100%
    # Rounding the window's sides to whole pixels may lose a little area.
    assert floored.min() >= 0.5 - 0.03 and floored.max() <= 1.0
    assert floored.mean() > paper.mean() + 0.2
