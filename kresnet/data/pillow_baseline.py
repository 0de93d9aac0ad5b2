"""The same training and evaluation transforms written plainly with Pillow and NumPy.

This is the pipeline a user would write by hand: the baseline of `kresnet bench
data`, and a second, independent implementation the tests compare the
TensorFlow transforms against.
"""

import math

import numpy as np
from PIL import Image

from kresnet.data import augment
from kresnet.data.imagenet_stats import normalise_array

_LUMA = np.array([0.299, 0.587, 0.114])
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.321], [0.211, -0.523, 0.311]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def sample_crop_window(rng, height, width, area_range=augment.AREA_RANGE, ratio_range=augment.RATIO_RANGE, attempts=augment.CROP_ATTEMPTS):
    """(top, left, crop_h, crop_w): uniform area, log-uniform ratio, first fitting try, else centre crop."""
    for _ in range(attempts):
        area = rng.uniform(*area_range) * height * width
        ratio = math.exp(rng.uniform(math.log(ratio_range[0]), math.log(ratio_range[1])))
        crop_w = int(round(math.sqrt(area * ratio)))
        crop_h = int(round(math.sqrt(area / ratio)))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            return int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1)), crop_h, crop_w
    crop_w = round(height * ratio_range[1]) if width / height > ratio_range[1] else width
    crop_h = round(width / ratio_range[0]) if width / height < ratio_range[0] else height
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def colour_matrix(brightness, saturation, hue):
    """3x3 M with rgb_out = M @ rgb_in: MXNet's brightness, saturation and YIQ hue rotation."""
    saturate = saturation * np.eye(3) + (1 - saturation) * np.outer(np.ones(3), _LUMA)
    angle = (hue - 1) * math.pi
    rotate = np.array([[1, 0, 0], [0, math.cos(angle), -math.sin(angle)], [0, math.sin(angle), math.cos(angle)]])
    return brightness * (_YIQ_TO_RGB @ rotate @ _RGB_TO_YIQ) @ saturate


def lighting_offset(alpha):
    """AlexNet PCA lighting offset for the three eigen-coefficients `alpha`."""
    return np.asarray(augment.EIGVEC) @ (np.asarray(alpha) * np.asarray(augment.EIGVAL))


def normalise(image):
    return normalise_array(image)


def load_rgb(path):
    """Open any Pillow-readable image as RGB (greyscale, CMYK and palette converted)."""
    with Image.open(path) as image:
        return image.convert("RGB")


def train_transform(image, image_size, rng):
    """Random-resized crop, flip, colour jitter, lighting, normalise; float32 (S, S, 3)."""
    top, left, crop_h, crop_w = sample_crop_window(rng, image.height, image.width)
    image = image.resize((image_size, image_size), Image.BILINEAR, box=(left, top, left + crop_w, top + crop_h))
    if rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    matrix = colour_matrix(*rng.uniform(*augment.JITTER_RANGE, size=3))
    offset = lighting_offset(rng.normal(0, augment.LIGHTING_STD, size=3))
    pixels = np.asarray(image, np.float32) @ matrix.T.astype(np.float32) + offset.astype(np.float32)
    return normalise(pixels)


def eval_transform(image, image_size, resize_size):
    """Shorter side to `resize_size`, centre crop `image_size`, normalise; float32 (S, S, 3)."""
    scale = resize_size / min(image.width, image.height)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    top = (image.height - image_size) // 2
    left = (image.width - image_size) // 2
    return normalise(image.crop((left, top, left + image_size, top + image_size)))


def train_batches(paths, labels, batch_size, image_size, seed=0):
    """Endless shuffled batches (images float32 NHWC, int labels), one process, like a hand-written loop."""
    rng = np.random.default_rng(seed)
    images, batch_labels = [], []
    while True:
        # Epochs run on into each other, as with tf.data's repeat() before batch(); unreadable files are skipped.
        for i in rng.permutation(len(paths)):
            try:
                image = load_rgb(paths[i])
            except (OSError, ValueError):
                continue
            images.append(train_transform(image, image_size, rng))
            batch_labels.append(labels[i])
            if len(images) == batch_size:
                yield np.stack(images), np.asarray(batch_labels)
                images, batch_labels = [], []
