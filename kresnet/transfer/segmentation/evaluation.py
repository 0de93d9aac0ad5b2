"""Scoring a segmenter on a dataset: optional multi-scale and flip, scores at original mask resolution."""

import math
import sys
import time
import weakref

import keras
import numpy as np
from keras import ops

from kresnet.transfer.segmentation.fcn import MAIN_OUTPUT
from kresnet.transfer.segmentation.metrics import ConfusionMatrix


# model -> {input shape: its predict function}, see `_logits`.
_PREDICT_FUNCTIONS = weakref.WeakKeyDictionary()


def _logits(model, images):
    """The model's logits through a predict function of its own for each input shape.

    With a single predict function, TensorFlow retraces it for a second image size with
    height and width unknown, and the FCN's `ResizeLike` cannot resize to a size known only
    at run time there (multi-scale evaluation failed on that backend). JAX compiles once per
    shape either way; torch compiles nothing.
    """
    images = ops.convert_to_numpy(images)
    functions = _PREDICT_FUNCTIONS.setdefault(model, {})
    if images.shape not in functions:
        model.make_predict_function(force=True)
        functions[images.shape] = model.predict_function
    model.predict_function = functions[images.shape]
    outputs = model.predict_on_batch(images)
    return outputs[MAIN_OUTPUT] if isinstance(outputs, dict) else outputs


def predict_probabilities(model, images, scales=(1.0,), flip=False, stride=8):
    """Class probabilities (B, H, W, C) of padded square batches, averaged over scales and flips.

    Scaling the whole padded square scales the image and its padding alike, so the valid
    region stays in the top-left corner at every scale.

    Args:
        model: a segmenter returning logits (or a dict with "logits") at input size.
        images: float32 (B, H, W, 3) normalized images.
        scales: image scale factors; each scaled size is rounded to a multiple of `stride`.
        flip: bool. Also average the prediction of the horizontally flipped image.
        stride: int. Sizes are rounded to multiples of this.
    """
    images = ops.convert_to_tensor(images, "float32")
    height, width = int(images.shape[1]), int(images.shape[2])
    total = 0.0
    for scale in scales:
        size = (max(stride, round(height * scale / stride) * stride), max(stride, round(width * scale / stride) * stride))
        scaled = images if size == (height, width) else ops.image.resize(images, size, interpolation="bilinear")
        variants = [scaled, ops.flip(scaled, axis=2)] if flip else [scaled]
        for index, variant in enumerate(variants):
            probabilities = ops.softmax(ops.cast(_logits(model, variant), "float32"), axis=-1)
            if index == 1:
                probabilities = ops.flip(probabilities, axis=2)
            if size != (height, width):
                probabilities = ops.image.resize(probabilities, (height, width), interpolation="bilinear")
            total = total + probabilities
    return total / (len(scales) * (2 if flip else 1))


def predict_labels(probabilities, valid_size, output_size):
    """Class ids of one image: crop the valid region of its padded probabilities, resize, argmax.

    Args:
        probabilities: (H, W, C) tensor for one padded image.
        valid_size: (height, width) of the image inside the padded square.
        output_size: (height, width) of the original image.
    """
    valid_h, valid_w = int(valid_size[0]), int(valid_size[1])
    output_h, output_w = int(output_size[0]), int(output_size[1])
    cropped = probabilities[:valid_h, :valid_w, :]
    if (valid_h, valid_w) != (output_h, output_w):
        cropped = ops.image.resize(cropped[None], (output_h, output_w), interpolation="bilinear")[0]
    return np.asarray(ops.convert_to_numpy(ops.argmax(cropped, axis=-1)), np.uint8)


def evaluate(model, dataset, num_classes, scales=(1.0,), flip=False, num_images=None, log_every=50):
    """Accumulate a confusion matrix of `model` over `pipeline.eval_dataset` batches.

    Args:
        model: the segmenter.
        dataset: a `tf.data.Dataset` from `pipeline.eval_dataset`.
        num_classes: int. Number of classes.
        scales: image scale factors of the multi-scale evaluation. Defaults to (1.0,).
        flip: bool. Add horizontal-flip predictions.
        num_images: optional int, for the progress line.
        log_every: int. Print progress every this many images.

    Returns:
        the filled `ConfusionMatrix`.
    """
    matrix = ConfusionMatrix(num_classes)
    seen, start = 0, time.time()
    for batch in dataset.as_numpy_iterator():
        probabilities = predict_probabilities(model, batch["image"], scales, flip)
        for i in range(len(batch["image"])):
            mask_h, mask_w = batch["mask_size"][i]
            labels = predict_labels(probabilities[i], batch["valid_size"][i], (mask_h, mask_w))
            matrix.update(batch["mask"][i, :mask_h, :mask_w], labels)
            seen += 1
            if log_every and seen % log_every == 0:
                total = f"/{num_images}" if num_images else ""
                print(
                    f"evaluated {seen}{total} images, pixAcc {100 * matrix.pixel_accuracy():.2f}% "
                    f"mIoU {100 * matrix.mean_iou():.2f}% ({time.time() - start:.0f} s)",
                    file=sys.stderr,
                )
    return matrix


def resize_for_eval(image, eval_size):
    """Longer side to `eval_size`, normalized and padded like `pipeline.eval_dataset`, as NumPy."""
    from kresnet.data.imagenet_stats import normalise_array

    height, width = image.shape[:2]
    scale = eval_size / max(height, width)
    size = (max(1, math.floor(height * scale + 0.5)), max(1, math.floor(width * scale + 0.5)))
    resized = ops.image.resize(ops.convert_to_tensor(image[None].astype("float32")), size, interpolation="bilinear")
    normalized = normalise_array(keras.ops.convert_to_numpy(resized)[0])
    padded = np.zeros((eval_size, eval_size, 3), np.float32)
    padded[: size[0], : size[1]] = normalized
    return padded, size
