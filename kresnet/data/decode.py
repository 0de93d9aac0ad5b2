"""Encoded image bytes -> augmented float32 tensors, for JPEGs and for anything else TensorFlow decodes.

Training: JPEGs decode only the crop window (`tf.io.decode_and_crop_jpeg`), which is most
of the training pipeline's speed. Other formats (real ImageNet has a PNG named
`.JPEG`, and a few CMYK and greyscale JPEGs) are decoded whole and then cropped.
`channels=3` turns greyscale and CMYK into RGB and drops alpha.

Every JPEG is decoded with libjpeg's accurate integer DCT, the one PIL uses, so the pixels
equal `PIL.Image.open(f).convert("RGB")` (what timm's published accuracies were measured on)
for baseline, progressive, greyscale and CMYK JPEGs alike. TensorFlow's default, a fast DCT,
differs from PIL by a few grey levels, up to 20 on photos, and is not measurably faster
(`tools/time_jpeg_decode.py`: time ratio 0.99 for whole images, 1.00 for crop windows).
"""

import tensorflow as tf

from kresnet.data import augment

# libjpeg's JDCT_ISLOW, PIL's (and libjpeg's own) default.
PIL_DCT_METHOD = "INTEGER_ACCURATE"


def _decode_any(contents):
    return tf.io.decode_image(contents, channels=3, expand_animations=False)


def decode_rgb(contents):
    """Decode a whole image as PIL's `Image.open(f).convert("RGB")` does; uint8 (h, w, 3).

    JPEGs go through libjpeg with PIL's DCT (greyscale and CMYK converted to RGB);
    PNG, GIF (first frame), BMP and WebP through `tf.io.decode_image`, alpha dropped.

    Args:
        contents: string scalar tensor. The encoded file.
    """
    image = tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.io.decode_jpeg(contents, channels=3, dct_method=PIL_DCT_METHOD),
        lambda: _decode_any(contents),
    )
    return tf.ensure_shape(image, [None, None, 3])


def decode_crop(contents, seed, min_crop_area=augment.AREA_RANGE[0]):
    """Decode the random-resized-crop window of an encoded image; uint8 (h, w, 3).

    Args:
        contents: string scalar tensor. The encoded file.
        seed: int tensor [2]. Stateless seed of the crop window.
        min_crop_area: float. Smallest crop area, as a fraction of the image (the paper: 0.08).
    """
    area_range = (min_crop_area, augment.AREA_RANGE[1])

    def jpeg():
        shape = tf.io.extract_jpeg_shape(contents)
        window = augment.sample_crop_window(shape[0], shape[1], seed, area_range)
        return tf.io.decode_and_crop_jpeg(contents, window, channels=3, dct_method=PIL_DCT_METHOD)

    def other():
        image = _decode_any(contents)
        shape = tf.shape(image)
        window = augment.sample_crop_window(shape[0], shape[1], seed, area_range)
        return image[window[0] : window[0] + window[2], window[1] : window[1] + window[3]]

    image = tf.cond(tf.io.is_jpeg(contents), jpeg, other)
    return tf.ensure_shape(image, [None, None, 3])


def train_image(contents, seed, image_size, colour_jitter=True, lighting_std=augment.LIGHTING_STD, min_crop_area=augment.AREA_RANGE[0]):
    """The paper's training transform of one encoded image; float32 (image_size, image_size, 3).

    Args:
        contents: string scalar tensor. The encoded file.
        seed: int tensor [2]. Stateless seed for every random choice.
        image_size: int. Output side.
        colour_jitter: bool. Brightness/saturation/hue factors from U[0.6, 1.4].
        lighting_std: float. PCA lighting noise std (0 turns it off).
        min_crop_area: float. Smallest random-crop area, as a fraction of the image (the paper: 0.08).
    """
    crop_seed, flip_seed, colour_seed = augment.split_seed(seed, 3)
    image = crop_and_resize(contents, crop_seed, image_size, min_crop_area)
    image = augment.random_flip(image, flip_seed)
    return augment.colour_and_normalise(image, colour_seed, colour_jitter, lighting_std)


def crop_and_resize(contents, seed, image_size, min_crop_area=augment.AREA_RANGE[0]):
    """Decode the random crop window and resize it; float32 (image_size, image_size, 3) in [0, 255]."""
    image = decode_crop(contents, seed, min_crop_area)
    # Plain bilinear, as TF's official ResNet pipeline and the authors' OpenCV resize do.
    return tf.image.resize(image, [image_size, image_size], method="bilinear")


def eval_image(contents, image_size, resize_size, preset=None):
    """The paper's evaluation transform of one encoded image, or a pretrained tag's own (`preset`);
    float32 (image_size, image_size, 3)."""
    image = decode_rgb(contents)
    return augment.eval_pixels(image, image_size, resize_size, preset)
