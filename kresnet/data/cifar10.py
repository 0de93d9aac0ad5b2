"""CIFAR-10 as a folder dataset: `OUT/{train,val}/<class>/<index>.jpg`, the layout `kresnet train` reads.

The arrays come from `keras.datasets.cifar10.load_data()`, which downloads them
(about 170 MB) into the Keras cache the first time; `kresnet data cifar10` is the
only place that calls it, so only a user who asks downloads anything. The test
split becomes `val/`.
"""

import pathlib

import numpy as np

from kresnet.errors import UserError

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_cifar10_arrays():
    """((train images, labels), (test images, labels)) as uint8 NHWC and int arrays (downloads once)."""
    import keras

    return keras.datasets.cifar10.load_data()


def write_cifar10_folders(out, train_per_class=0, val_per_class=0, quality=95, loader=None, progress=None):
    """Write the CIFAR-10 images as JPEG class folders; returns {split: images written}.

    Args:
        out: the dataset root; train/ and val/ must not exist yet.
        train_per_class: keep the first N training images of each class (0: all 5,000).
        val_per_class: keep the first N test images of each class (0: all 1,000).
        quality: JPEG quality.
        loader: callable returning the arrays as `keras.datasets.cifar10.load_data()` does
            (default: `load_cifar10_arrays`).
        progress: optional callable(images written so far).
    """
    from PIL import Image

    out = pathlib.Path(out)
    for split in ("train", "val"):
        if (out / split).exists():
            raise UserError(f"{out / split} already exists: remove it or choose another folder")
    (train_images, train_labels), (test_images, test_labels) = (loader or load_cifar10_arrays)()
    counts, written = {}, 0
    for split, images, labels, per_class in (
        ("train", train_images, train_labels, train_per_class),
        ("val", test_images, test_labels, val_per_class),
    ):
        labels = np.asarray(labels).reshape(-1)
        kept = _first_per_class(labels, per_class)
        for name in CLASS_NAMES:
            (out / split / name).mkdir(parents=True)
        for index in kept:
            path = out / split / CLASS_NAMES[labels[index]] / f"{index:05d}.jpg"
            Image.fromarray(np.asarray(images[index], dtype=np.uint8)).save(path, quality=quality)
            written += 1
            if progress:
                progress(written)
        counts[split] = len(kept)
    return counts


def _first_per_class(labels, per_class):
    if not per_class:
        return list(range(len(labels)))
    seen, kept = {}, []
    for index, label in enumerate(labels):
        if seen.get(label, 0) < per_class:
            seen[label] = seen.get(label, 0) + 1
            kept.append(index)
    return kept
