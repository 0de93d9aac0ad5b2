"""The paper's image transforms as per-image TensorFlow functions (He et al. 2019, section 2.1).

Training: random crop (area U[8%, 100%] of the image, aspect ratio log-uniform in
[3/4, 4/3], 10 tries, then a centre crop) resized to the train size; horizontal
flip with p=0.5; brightness, saturation and hue scaled by factors from U[0.6, 1.4];
PCA lighting noise with std 0.1; normalisation. Evaluation: shorter side to
`resize_size` (256 for 224), centre crop, normalisation.

"Hue scaled by f" follows the authors' code (MXNet `HueJitterAug`, used by
GluonCV): a rotation of the chroma plane in YIQ space by (f - 1) * pi radians,
i.e. up to +-72 degrees (with the exact inverse of MXNet's YIQ matrix). Brightness (x * b) and saturation (lerp to luma) are the
MXNet definitions too. All three are linear maps of the RGB vector, so they are
fused with the lighting offset into one 3x3 matrix and one offset per image, and
they commute (up to MXNet's luma weights summing to 1), so their order does not
matter. Like MXNet, values are not clipped between steps.

Every random function takes a stateless `seed` (int tensor of shape [2]), so a
pipeline with a seed is reproducible and tests can measure the distributions.
"""

import math

import numpy as np
import tensorflow as tf

from kresnet.data.imagenet_stats import MEAN_RGB, STD_RGB

# AlexNet's PCA of ImageNet RGB pixels (0-255 scale), as used by the authors' code.
EIGVAL = (55.46, 4.794, 1.148)
EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
AREA_RANGE = (0.08, 1.0)
RATIO_RANGE = (3 / 4, 4 / 3)
CROP_ATTEMPTS = 10
JITTER_RANGE = (0.6, 1.4)
LIGHTING_STD = 0.1
_LUMA = (0.299, 0.587, 0.114)
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.321), (0.211, -0.523, 0.311))
# MXNet rounds the inverse to 3 decimals (so hue 1.0 shifts colours by up to 1%); the exact inverse keeps it the identity.
_YIQ_TO_RGB = np.linalg.inv(np.array(_RGB_TO_YIQ))


def _colour_basis():
    """Six constant matrices whose combination is any colour matrix (a handful of ops per image, not dozens).

    hue(t) = YIQ^-1 (P0 + cos t P1 + sin t P2) YIQ and saturation(s) = L + s (I - L), with L
    the luma projection, so brightness * hue @ saturation = b * sum_j c_j K_j over the
    coefficients c = (1, s, cos t, s cos t, sin t, s sin t).
    """
    yiq, yiq_inverse = np.array(_RGB_TO_YIQ), _YIQ_TO_RGB
    keep_y, chroma = np.diag([1.0, 0.0, 0.0]), np.diag([0.0, 1.0, 1.0])
    quarter_turn = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    luma = np.outer(np.ones(3), _LUMA)
    hue_parts = [yiq_inverse @ part @ yiq for part in (keep_y, chroma, quarter_turn)]
    return np.stack([hue @ saturation_part for hue in hue_parts for saturation_part in (luma, np.eye(3) - luma)]).astype(np.float32)


_COLOUR_BASIS = _colour_basis()


def split_seed(seed, num):
    """`num` independent stateless seeds from one."""
    return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=num))


def sample_crop_window(height, width, seed, area_range=AREA_RANGE, ratio_range=RATIO_RANGE, attempts=CROP_ATTEMPTS):
    """The random-resized-crop window of an image: (offset_y, offset_x, crop_h, crop_w), int32.

    Draws `attempts` (area, ratio) pairs at once and keeps the first that fits
    inside the image; if none does, takes the largest centred window whose
    aspect ratio is clamped into `ratio_range`.

    Args:
        height: int32 scalar tensor. Image height.
        width: int32 scalar tensor. Image width.
        seed: int tensor [2]. Stateless seed.
        area_range: (min, max) fraction of the image area.
        ratio_range: (min, max) width / height.
        attempts: int. Tries before the centre-crop fallback.
    """
    area_seed, ratio_seed, y_seed, x_seed = split_seed(seed, 4)
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    area = tf.random.stateless_uniform([attempts], area_seed, *area_range) * h * w
    log_ratio = tf.random.stateless_uniform([attempts], ratio_seed, math.log(ratio_range[0]), math.log(ratio_range[1]))
    ratio = tf.exp(log_ratio)
    crop_w = tf.cast(tf.round(tf.sqrt(area * ratio)), tf.int32)
    crop_h = tf.cast(tf.round(tf.sqrt(area / ratio)), tf.int32)
    fits = (crop_w <= width) & (crop_h <= height) & (crop_w > 0) & (crop_h > 0)
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
    # Both candidates are computed and one is kept with a select: a tf.cond per image costs more than this.
    ch, cw = crop_h[first], crop_w[first]
    offset_y = tf.random.stateless_uniform([], y_seed, 0, tf.maximum(height - ch + 1, 1), dtype=tf.int32)
    offset_x = tf.random.stateless_uniform([], x_seed, 0, tf.maximum(width - cw + 1, 1), dtype=tf.int32)
    sampled = tf.stack([offset_y, offset_x, ch, cw])

    image_ratio = w / h
    centre_w = tf.cast(tf.where(image_ratio > ratio_range[1], tf.round(h * ratio_range[1]), w), tf.int32)
    centre_h = tf.cast(tf.where(image_ratio < ratio_range[0], tf.round(w / ratio_range[0]), h), tf.int32)
    centre = tf.stack([(height - centre_h) // 2, (width - centre_w) // 2, centre_h, centre_w])
    return tf.where(tf.reduce_any(fits), sampled, centre)


def random_flip(image, seed):
    """Mirror left-right with probability 0.5."""
    return tf.image.stateless_random_flip_left_right(image, seed)


def sample_colour_factors(seed, jitter_range=JITTER_RANGE):
    """Brightness, saturation and hue factors, each from U[jitter_range]; float32 [3]."""
    return tf.random.stateless_uniform([3], seed, *jitter_range)


def colour_matrix(brightness, saturation, hue):
    """The 3x3 matrix M with rgb_out = M @ rgb_in for the three colour factors.

    Args:
        brightness: float32 tensor, scalar or (B,). Multiplies every channel.
        saturation: float32 tensor, same shape. 1 keeps colours, 0 gives the luma grey.
        hue: float32 tensor, same shape. Rotates the YIQ chroma plane by (hue - 1) * pi.

    Returns:
        float32 (..., 3, 3), one matrix per factor triple.
    """
    brightness, saturation, hue = (tf.convert_to_tensor(f, tf.float32) for f in (brightness, saturation, hue))
    angle = (hue - 1.0) * math.pi
    cos, sin = tf.cos(angle), tf.sin(angle)
    coefficients = tf.stack([tf.ones_like(cos), saturation, cos, saturation * cos, sin, saturation * sin], axis=-1)
    return brightness[..., None, None] * tf.tensordot(coefficients, tf.constant(_COLOUR_BASIS), axes=1)


def sample_lighting_offset(seed, std=LIGHTING_STD):
    """AlexNet PCA lighting: the RGB offset eigvec @ (alpha * eigval), alpha ~ N(0, std); float32 [3]."""
    alpha = tf.random.stateless_normal([3], seed, stddev=std)
    return tf.linalg.matvec(tf.constant(EIGVEC), alpha * tf.constant(EIGVAL))


def normalise(image):
    """(image - mean) / std per RGB channel, for float images in [0, 255]."""
    return (tf.cast(image, tf.float32) - tf.constant(MEAN_RGB)) / tf.constant(STD_RGB)


def colour_and_normalise(image, seed, colour_jitter=True, lighting_std=LIGHTING_STD):
    """Colour jitter, PCA lighting and normalisation fused into one matrix and one offset."""
    colour_seed, light_seed = split_seed(seed, 2)
    matrix = colour_matrix(*tf.unstack(sample_colour_factors(colour_seed))) if colour_jitter else tf.eye(3)
    offset = sample_lighting_offset(light_seed, lighting_std) if lighting_std else tf.zeros([3])
    std = tf.constant(STD_RGB)
    # normalise(M x + o) = (M / std) x + (o - mean) / std, applied as one matmul.
    scaled = tf.transpose(matrix) / std
    bias = (offset - tf.constant(MEAN_RGB)) / std
    return apply_pixel_affine(tf.cast(image, tf.float32), scaled, bias)


def _pixels_per_row(image, preferred=8):
    """The largest k <= `preferred` that divides the (static) pixel count; 1 when unknown."""
    height, width = image.shape[0], image.shape[1]
    if height is None or width is None:
        return 1
    k = preferred
    while (height * width) % k:
        k //= 2
    return k


def apply_pixel_affine(image, matrix, bias):
    """`pixel @ matrix + bias` for every RGB pixel of a float32 (H, W, 3) image.

    A (pixels, 3) @ (3, 3) product leaves the CPU's vector units mostly idle; k pixels
    per row against the block-diagonal kron(I_k, matrix) make it a (pixels / k, 3k) @
    (3k, 3k) product with the same result, about twice as fast for k = 8 (measured
    against the plain product, einsum, a 1x1 conv and broadcasting).
    """
    k = _pixels_per_row(image)
    block = tf.reshape(tf.einsum("ij,ab->iajb", tf.eye(k), matrix), [3 * k, 3 * k])
    pixels = tf.reshape(image, [-1, 3 * k])
    return tf.reshape(pixels @ block + tf.tile(bias, [k]), tf.shape(image))


def resize_shorter_side(image, size, antialias=True):
    """Resize so the shorter side is `size`, keeping the aspect ratio (longer side rounded)."""
    shape = tf.shape(image)
    h = tf.cast(shape[0], tf.float32)
    w = tf.cast(shape[1], tf.float32)
    scale = tf.cast(size, tf.float32) / tf.minimum(h, w)
    new = tf.cast(tf.round(tf.stack([h * scale, w * scale])), tf.int32)
    return tf.image.resize(image, new, method="bilinear", antialias=antialias)


def centre_crop(image, size):
    """The centred `size` x `size` window; odd margins put the extra pixel at the bottom/right."""
    shape = tf.shape(image)
    top = (shape[0] - size) // 2
    left = (shape[1] - size) // 2
    return image[top : top + size, left : left + size]


def eval_transform(image, image_size, resize_size):
    """Evaluation: shorter side to `resize_size`, centre crop `image_size`, normalise."""
    image = resize_shorter_side(image, resize_size)
    image = centre_crop(image, image_size)
    image = tf.ensure_shape(image, [image_size, image_size, 3])
    return normalise(image)


def published_eval_pixels(image, eval_size, resize_size, interpolation):
    """timm's eval geometry for a pretrained tag: shorter side to `resize_size` (longer side truncated, as
    torchvision's `Resize(int)`), centre crop `eval_size` (offset rounded half to even, as its `CenterCrop`),
    antialiased `interpolation` as PIL's resize; float32 whole numbers in [0, 255], as PIL's 8-bit output."""
    shape = tf.shape(image)
    h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    short = tf.minimum(h, w)
    size = tf.cast(resize_size, tf.float32)
    new_h = tf.where(h <= w, size, tf.floor(size * h / short))
    new_w = tf.where(h <= w, tf.floor(size * w / short), size)
    new_h, new_w = tf.cast(new_h, tf.int32), tf.cast(new_w, tf.int32)
    # PIL resizes rows, then columns, storing 8-bit pixels in between: overshoot at sharp edges is
    # clipped after the first pass. Two 1-D passes with rounding reproduce that within one grey level.
    image = _to_uint8_range(tf.image.resize(tf.cast(image, tf.float32), tf.stack([shape[0], new_w]), method=interpolation, antialias=True))
    image = _to_uint8_range(tf.image.resize(image, tf.stack([new_h, new_w]), method=interpolation, antialias=True))
    new_h, new_w = tf.cast(new_h, tf.float32), tf.cast(new_w, tf.float32)
    top = tf.cast(tf.round((new_h - eval_size) / 2), tf.int32)
    left = tf.cast(tf.round((new_w - eval_size) / 2), tf.int32)
    return tf.ensure_shape(image[top : top + eval_size, left : left + eval_size], [eval_size, eval_size, 3])


def _to_uint8_range(image):
    return tf.clip_by_value(tf.round(image), 0.0, 255.0)


def published_eval_transform(image, preset):
    """A pretrained tag's own eval transform (`kresnet.models.presets.Preset`): its geometry, then its mean/std."""
    pixels = published_eval_pixels(image, preset.eval_size, preset.resize_size, preset.interpolation)
    return (pixels / 255.0 - tf.constant(preset.mean, tf.float32)) / tf.constant(preset.std, tf.float32)


def eval_pixels(image, image_size, resize_size, preset=None):
    """The evaluation transform of one decoded image (h, w, 3): the paper's, or a pretrained tag's own
    (`preset`, anything with its `eval_size`, `resize_size`, `interpolation`, `mean` and `std`)."""
    if preset is not None:
        return published_eval_transform(image, preset)
    return eval_transform(image, image_size, resize_size)


def default_resize_size(image_size):
    """The paper's 256 for 224: the shorter side before the centre crop keeps the ratio 256/224."""
    return int(round(image_size * 256 / 224))
