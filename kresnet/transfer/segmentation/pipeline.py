"""tf.data input pipelines for segmentation: training augmentation and fixed-size evaluation batches.

Training follows GluonCV's FCN recipe: random horizontal flip, the longer side scaled to
a random length in [0.5, 2.0] x `base_size`, padding up to the crop (image with the mean,
mask with the ignore label), then a random `crop_size` square. Evaluation resizes the
longer side to `eval_size` and pads to a square, so every batch has one static shape
(one compilation on JAX); it keeps the original mask, and scores are computed at the
original resolution.
"""

import tensorflow as tf

from kresnet.data import order
from kresnet.data.decode import decode_rgb
from kresnet.data.skips import SkipCounter, skip_unreadable
from kresnet.data.augment import normalise
from kresnet.errors import UserError
from kresnet.transfer.segmentation.readers import IGNORE_LABEL, read_mask



def _decoded(samples, indexed, skip_counter):
    """(uint8 image, uint8 mask with ignore label, element) per (sample index, element index) of `indexed`;
    unreadable images dropped and counted.

    Only the image decode may skip an element: a bad mask stays a `UserError` naming its file.
    """
    image_paths = tf.constant(samples.image_paths)
    mask_paths = tf.constant(samples.mask_paths)

    def decode(path, index, element):
        return index, decode_rgb(tf.io.read_file(path)), element

    def load_mask(path, height, width):
        return read_mask(path.decode(), samples.num_classes, samples.reduce_zero_label, (height, width))

    def attach_mask(index, image, element):
        shape = tf.shape(image)
        mask = tf.numpy_function(load_mask, [mask_paths[index], shape[0], shape[1]], tf.uint8, stateful=False)
        return image, tf.reshape(mask, shape[:2]), element

    pairs = indexed.map(lambda index, element: (image_paths[index], index, element))
    images = skip_unreadable(pairs, skip_counter or SkipCounter(), decode)
    return images.map(attach_mask, num_parallel_calls=tf.data.AUTOTUNE)


def _resize_longer_side(image, mask, length):
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(length, tf.float32) / tf.reduce_max(shape)
    size = tf.maximum(tf.cast(tf.floor(shape * scale + 0.5), tf.int32), 1)  # round half up, as resize_for_eval
    image = tf.image.resize(image, size, method="bilinear")
    if mask is not None:
        mask = tf.image.resize(mask[..., None], size, method="nearest")[..., 0]
    return image, mask


def _pad_to(image, mask, height, width):
    """Pad bottom/right: normalized image with 0 (the mean), mask with the ignore label."""
    shape = tf.shape(image)
    pad_h, pad_w = tf.maximum(height - shape[0], 0), tf.maximum(width - shape[1], 0)
    image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]])
    mask = tf.pad(mask, [[0, pad_h], [0, pad_w]], constant_values=IGNORE_LABEL)
    return image, mask


def augment(image, mask, crop_size, base_size, scale_range=(0.5, 2.0), seed=(0, 0)):
    """Random flip, random scale of the longer side, pad and random square crop, drawn from a stateless seed.

    Args:
        image: uint8 (H, W, 3) tensor.
        mask: uint8 (H, W) tensor of class ids and the ignore label.
        crop_size: int. Side of the output square.
        base_size: int. The longer side is scaled to `base_size` times a factor drawn
            uniformly from `scale_range`.
        scale_range: (low, high) of the random scale factor.
        seed: int tensor [2]. Stateless seed: the same seed gives the same flip, scale and crop.

    Returns:
        float32 normalized image (crop, crop, 3) and int32 mask (crop, crop).
    """
    flip_seed, scale_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=3))
    flip = tf.random.stateless_uniform((), flip_seed) < 0.5
    image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
    mask = tf.cond(flip, lambda: tf.reverse(mask, [1]), lambda: mask)
    length = tf.random.stateless_uniform((), scale_seed, scale_range[0] * base_size, scale_range[1] * base_size)
    image, mask = _resize_longer_side(normalise(image), mask, length)
    image, mask = _pad_to(image, mask, crop_size, crop_size)
    # Crop image and mask together: the mask rides along as a fourth channel (exact in float32).
    stacked = tf.concat([image, tf.cast(mask[..., None], tf.float32)], axis=-1)
    stacked = tf.image.stateless_random_crop(stacked, [crop_size, crop_size, 4], crop_seed)
    return stacked[..., :3], tf.cast(stacked[..., 3], tf.int32)


def train_dataset(samples, batch_size, crop_size, base_size, scale_range=(0.5, 2.0), seed=0, targets=("logits",),
                  skip_counter=None, first_batch=0):
    """An endless, shuffled, augmented training stream of (images, {target: masks}) batches.

    Args:
        samples: `SegmentationSamples`.
        batch_size: int. Global batch size.
        crop_size: int. Side of the square training crops.
        base_size: int. Reference length of the longer side before random scaling.
        scale_range: (low, high) random scale factor range.
        seed: int. Shuffle and augmentation seed.
        targets: names of the model outputs that all receive the same mask.
        skip_counter: `SkipCounter` or None. Counts the unreadable images dropped.
        first_batch: int. Start at this batch of the stream (a run resumed at that optimizer step):
            exactly the rest of the stream from batch 0 (`kresnet.data.order`).
    """
    if len(samples) == 0:
        raise UserError("training data: no samples")
    indexed = order.training_order(len(samples), seed, first_batch * batch_size)
    # Element n of the stream (counted before unreadable images are dropped) draws from the stateless seed
    # (seed, n): the same crops on every run, after a resume, and whatever order parallel map calls finish in.
    dataset = _decoded(samples, indexed, skip_counter).map(
        lambda image, mask, n: augment(image, mask, crop_size, base_size, scale_range, seed=order.element_seed(seed, n)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(lambda images, masks: (images, {name: masks for name in targets}))
    return dataset.prefetch(tf.data.AUTOTUNE)


def eval_dataset(samples, eval_size, batch_size=1, skip_counter=None):
    """Evaluation batches: images resized (longer side `eval_size`) and padded to a square.

    Args:
        samples: `SegmentationSamples`.
        eval_size: int. Longer side after resizing, and the side of the padded square.
        batch_size: int. Images per batch.
        skip_counter: `SkipCounter` or None. Counts the unreadable images dropped (not scored).

    Yields:
        dicts with "image" (B, eval_size, eval_size, 3) float32, "valid_size" (B, 2) int32
        (the resized image's height and width inside the square), "mask" (B, H, W) uint8
        original-resolution masks padded with the ignore label, and "mask_size" (B, 2).
    """

    def prepare(image, mask):
        mask_size = tf.shape(mask)[:2]
        resized, _ = _resize_longer_side(normalise(image), None, eval_size)
        valid_size = tf.shape(resized)[:2]
        padded = tf.pad(resized, [[0, eval_size - valid_size[0]], [0, eval_size - valid_size[1]], [0, 0]])
        padded = tf.ensure_shape(padded, [eval_size, eval_size, 3])
        return {"image": padded, "valid_size": valid_size, "mask": mask, "mask_size": mask_size}

    indexed = tf.data.Dataset.range(len(samples)).map(lambda index: (index, tf.constant(0, tf.int64)))
    dataset = _decoded(samples, indexed, skip_counter)
    dataset = dataset.map(lambda image, mask, _: prepare(image, mask), num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.padded_batch(
        batch_size, padding_values={"image": 0.0, "valid_size": 0, "mask": tf.constant(IGNORE_LABEL, tf.uint8), "mask_size": 0}
    )
    return dataset.prefetch(tf.data.AUTOTUNE)
