"""tf.data input pipeline for detection: resize (short side / max side), flip, pad to one static size.

The only TensorFlow in the detection code; the batches it yields are NumPy
arrays or tf tensors that every Keras backend accepts.
"""

import math

import numpy as np

from kresnet.data.imagenet_stats import MEAN_RGB


def padded_size(max_side, divisor=32):
    """Static side of the padded square input: `max_side` rounded up to a multiple of `divisor`.

    Args:
        max_side: int.
        divisor: int.
    """
    return int(math.ceil(max_side / divisor) * divisor)


def pack_records(records, max_boxes):
    """Fixed-size arrays of a dataset's ground truth (difficult/crowd objects not valid for training).

    Args:
        records: list of `DetectionRecord`.
        max_boxes: int. Objects kept per image (the first ones).

    Returns:
        dict of arrays: paths (N,), boxes (N, G, 4), labels (N, G), valid (N, G), sizes (N, 2).
    """
    count = len(records)
    boxes = np.zeros((count, max_boxes, 4), np.float32)
    labels = np.zeros((count, max_boxes), np.int32)
    valid = np.zeros((count, max_boxes), bool)
    for index, record in enumerate(records):
        keep = np.flatnonzero(~record.difficult)[:max_boxes]
        boxes[index, :len(keep)] = record.boxes[keep]
        labels[index, :len(keep)] = record.labels[keep]
        valid[index, :len(keep)] = True
    sizes = np.asarray([[r.height, r.width] for r in records], np.float32).reshape(-1, 2)
    return {"paths": np.asarray([r.image_path for r in records]), "boxes": boxes, "labels": labels,
            "valid": valid, "sizes": sizes}


def resize_to_fit(image, height, width, short_side, max_side, limit):
    """Scale an image by min(short_side / short, max_side / long), the Faster R-CNN rule, bilinearly.

    Each new side is the scaled side rounded to the nearest pixel (torchvision floors it), at most `limit`.

    Args:
        image: (H, W, 3) tensor.
        height: float32 scalar. The image's height as its record states it (the scale's basis).
        width: float32 scalar.
        short_side: int.
        max_side: int.
        limit: int. The padded side.

    Returns:
        (float32 image, new height, new width), the sizes as float32 scalars.
    """
    import tensorflow as tf

    scale = tf.minimum(short_side / tf.minimum(height, width), max_side / tf.maximum(height, width))
    new_height = tf.minimum(tf.round(height * scale), float(limit))
    new_width = tf.minimum(tf.round(width * scale), float(limit))
    resized = tf.image.resize(tf.cast(image, tf.float32), tf.cast(tf.stack([new_height, new_width]), tf.int32))
    return resized, new_height, new_width


def make_dataset(records, batch_size, short_side, max_side, max_boxes=100, training=False, flip=True,
                 seed=0, repeat=False, skip_counter=None, pad_value=MEAN_RGB, first_batch=0):
    """Batches of {"images", "image_sizes", "scales", ...}; with `training`, also the padded ground truth.

    Each image is scaled by min(short_side / short, max_side / long) (the
    Faster R-CNN rule, 600/1000 for VOC), flipped at random when training with
    `flip`, and padded with the mean pixel to a square of `padded_size(max_side)`.

    Args:
        records: list of `DetectionRecord`.
        batch_size: int.
        short_side: int.
        max_side: int.
        max_boxes: int. Ground-truth slots per image.
        training: bool. Shuffle, flip, drop the last partial batch, yield ground truth.
        flip: bool. Random horizontal flip when training.
        seed: int. Shuffle and flip seed.
        repeat: bool. Repeat forever (training with `steps_per_epoch`).
        pad_value: 3 floats. The pixel the padding gets: the detector's `pixel_mean`, which normalises to 0.
        first_batch: int. Training with `repeat`: start at this batch of the stream (a run resumed at
            that optimizer step), exactly the rest of the stream from batch 0 (`kresnet.data.order`).
        skip_counter: `SkipCounter` or None. Unreadable images are dropped and
            counted there; evaluation batches carry each image's record index
            ("indices"), so the detections of the rest stay matched to their records.
    """
    import tensorflow as tf

    from kresnet.data.decode import decode_rgb
    from kresnet.data import order
    from kresnet.data.skips import SkipCounter, skip_unreadable

    packed = pack_records(records, max_boxes)
    side = padded_size(max_side)
    mean = tf.constant(pad_value, tf.float32)

    def decode(path, index, boxes, labels, valid, size, element):
        image = decode_rgb(tf.io.read_file(path))
        return image, index, boxes, labels, valid, size, element

    def load(image, index, boxes, labels, valid, size, element):
        height, width = size[0], size[1]
        image, new_height, new_width = resize_to_fit(image, height, width, short_side, max_side, side)
        scales = tf.stack([new_height / height, new_width / width])
        boxes = boxes * tf.stack([scales[1], scales[0], scales[1], scales[0]])
        if training and flip:
            flipped = tf.random.stateless_uniform([], order.element_seed(seed, element)) < 0.5
            image = tf.cond(flipped, lambda: tf.reverse(image, axis=[1]), lambda: image)
            mirrored = tf.stack([new_width - boxes[:, 2], boxes[:, 1], new_width - boxes[:, 0], boxes[:, 3]], axis=1)
            boxes = tf.where(flipped, mirrored, boxes)
        image = tf.image.pad_to_bounding_box(image - mean, 0, 0, side, side) + mean
        image.set_shape([side, side, 3])
        example = {"images": image, "image_sizes": tf.stack([new_height, new_width]), "scales": scales}
        if training:
            example.update(gt_boxes=boxes * tf.cast(valid, tf.float32)[:, None], gt_labels=labels, gt_valid=valid)
        else:
            example["indices"] = index
        return example

    columns = tuple(tf.constant(packed[name]) for name in ("paths", "boxes", "labels", "valid", "sizes"))

    def record(index):
        paths, boxes, labels, valid, sizes = (column[index] for column in columns)
        return paths, index, boxes, labels, valid, sizes

    if training:
        # Element n of the stream (its index in the resumable order, counted before unreadable images
        # are dropped) flips by the stateless seed (seed, n): the same on every run and after a resume.
        first = first_batch * batch_size if repeat else None
        indexed = order.training_order(len(records), seed, first, endless=repeat)
        data = indexed.map(lambda index, element: (*record(index), element))
    else:
        data = tf.data.Dataset.range(len(records)).map(lambda index: (*record(index), tf.constant(0, tf.int64)))
        if repeat:
            data = data.repeat()
    data = skip_unreadable(data, skip_counter or SkipCounter(), decode)
    data = data.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    data = data.batch(batch_size, drop_remainder=training)
    return data.prefetch(tf.data.AUTOTUNE)
