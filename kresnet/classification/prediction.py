"""`kresnet predict`: the top-k classes and probabilities of image files, read with the weights' eval transform.

Files are decoded one by one with `EvalTransform.decode` (the function `kresnet evaluate` maps over
a validation set) and scored in batches. A file that is not an image is named, skipped and
counted; the others are still predicted.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Predictions:
    """What `predict_images` found: per image its top classes, and the files it could not read.

    Attributes:
        images: list of dicts `{"image": path, "top": [{"class": name, "index": i, "probability": p}, ...]}`.
        skipped: list of dicts `{"image": path, "reason": text}`.
    """

    images: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)


def predict_images(inference, files, top_k=5, batch_size=32, on_skip=None):
    """Top-k classes of each readable file, in the order given.

    Args:
        inference: `kresnet.classification.inference.Inference` (model, transform, class names).
        files: image paths (see `kresnet.data.image_files`).
        top_k: int. classes per image (at most the model's).
        batch_size: int. images per model call.
        on_skip: optional callable(path, reason), called as soon as a file is found unreadable.
    """
    import tensorflow as tf

    from kresnet.data.eval_transform import not_an_image

    # Eager, one file at a time: a decoder error then names its cause in one line (a traced function
    # wraps it in a graph traceback), and the cost is small beside the model's.
    decode = inference.transform.decode
    result = Predictions()
    batch, names = [], []

    def flush():
        if batch:
            for path, probabilities in zip(names, _probabilities(inference.model, np.stack(batch))):
                result.images.append({"image": str(path), "top": _top(probabilities, inference.class_names, top_k)})
            batch.clear()
            names.clear()

    for path in files:
        try:
            batch.append(decode(tf.io.read_file(str(path))).numpy())
            names.append(path)
        except tf.errors.OpError as error:
            reason = not_an_image(error)
            result.skipped.append({"image": str(path), "reason": reason})
            if on_skip:
                on_skip(path, reason)
        if len(batch) == batch_size:
            flush()
    flush()
    return result


def _probabilities(model, images):
    import keras

    logits = keras.ops.convert_to_numpy(model(images, training=False)).astype(np.float64)
    exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def _top(probabilities, class_names, top_k):
    order = np.argsort(-probabilities, kind="stable")[:top_k]
    return [{"class": class_names[i], "index": int(i), "probability": float(probabilities[i])} for i in order]


def format_text(predictions):
    """Human-readable lines: each image, then its classes with probabilities in percent."""
    lines = []
    for item in predictions.images:
        lines.append(item["image"])
        width = max(len(entry["class"]) for entry in item["top"])
        lines += [f"  {entry['probability'] * 100:6.2f}%  {entry['class']:<{width}}  ({entry['index']})" for entry in item["top"]]
    return lines
