"""Where images come from: class-per-folder trees (ILSVRC layout included) and TFRecord shards.

Class index = sorted folder order of `train/`. When every folder is an ImageNet
synset id (`n01440764`, ...), the index is the position in the 1000-synset list
shipped with the package, so a subset of ImageNet still gets ImageNet's labels.
A `val/` (or `validation/`) folder beside `train/` takes train's class list, so
a label means the same class in both; its class folders must be train's.
"""

import dataclasses
import functools
import glob
import json
import os
import pathlib
import re

from kresnet.errors import UserError

IMAGE_EXTENSIONS = frozenset({".jpeg", ".jpg", ".png", ".bmp", ".gif"})
TFRECORD_METADATA = "dataset.json"
_SYNSET_PATTERN = re.compile(r"^n\d{8}$")


@dataclasses.dataclass
class DatasetInfo:
    """What a reader found.

    Args:
        num_classes: int. Width of the one-hot labels.
        num_examples: int or None. Images per epoch (None for TFRecords without
            a `dataset.json` beside them).
        class_names: list of str. Name of each class index.
        skipped: `SkipCounter` or None. Counts unreadable images dropped by the pipeline.
        num_batches: int or None. Batches per pass of a padded evaluation set (`pad_last_batch`).
    """

    num_classes: int
    num_examples: int | None
    class_names: list
    skipped: object = None
    num_batches: int | None = None


@functools.lru_cache(maxsize=1)
def imagenet_synsets():
    """The 1000 ILSVRC-2012 synset ids in class-index order."""
    text = (pathlib.Path(__file__).with_name("imagenet_synsets.txt")).read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def is_tfrecord_source(source):
    """True for a TFRecord file, glob or shard prefix rather than a folder of class folders."""
    text = str(source)
    return any(c in text for c in "*?[") or ".tfrecord" in text or (os.path.isfile(text) and not os.path.isdir(text))


def resolve_split(root, split):
    """`root/split` for a folder dataset, `root/split-*` for TFRecord shards, else `root` itself.

    Args:
        root: str or path. Dataset root, a split folder, or a TFRecord glob.
        split: str. "train" or "val" ("validation" is also tried).
    """
    root = str(root)
    if is_tfrecord_source(root):
        return root
    names = (split, "validation") if split == "val" else (split,)
    for name in names:
        if os.path.isdir(os.path.join(root, name)):
            return os.path.join(root, name)
        if glob.glob(os.path.join(root, f"{name}-*")):
            return os.path.join(root, f"{name}-*")
    return root


def class_folders(root):
    """The sorted class folder names of a class-per-folder tree; a one-line error when there are none."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise UserError(f"dataset folder not found: {root} (expected {root}/<class>/<image>.JPEG; kresnet never downloads data)")
    folders = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
    if not folders:
        raise UserError(f"no class folders in {root}: expected {root}/<class>/<image>.JPEG")
    return folders


def imagenet_indexed(num_classes):
    """Whether synset-named classes take their ImageNet index (0-999): for a 1000-class model, or when
    the class count is not given. Other counts (a 10-class ImageNet subset) number them in sorted order.

    Args:
        num_classes: int or None. The model's class count.
    """
    return not num_classes or num_classes == 1000


def folder_class_names(folders, num_classes=None):
    """The class list of a training tree's folders: ImageNet's 1000 synsets when every folder is one and
    `imagenet_indexed(num_classes)`, else the folders.

    Args:
        folders: sorted list of class folder names.
        num_classes: int or None. The model's class count.
    """
    synsets = imagenet_synsets()
    known = set(synsets)
    all_synsets = all(_SYNSET_PATTERN.match(f) and f in known for f in folders)
    return synsets if all_synsets and imagenet_indexed(num_classes) else list(folders)


def _training_sibling(root):
    """`root/../train` when `root` is a `val`/`validation` folder beside one, else None."""
    sibling = root.parent / "train"
    return sibling if root.name in ("val", "validation") and sibling.is_dir() else None


def list_image_folder(root, class_names=None, num_classes=None):
    """All images of a class-per-folder tree with their labels.

    Args:
        root: str or path. Folder holding one sub-folder per class.
        class_names: list of str or None. Class folder names in index order; by
            default train's list for a `val/` beside `train/` (whose class
            folders must then be the same), else `folder_class_names`.
        num_classes: int or None. The model's class count, which decides how synset folders are
            numbered (`imagenet_indexed`).

    Returns:
        (paths list of str, labels list of int, class_names list of str).

    Raises:
        UserError: naming the folder, for a class folder without images, a
            class folder not in the class list, or a `val/` class folder
            missing or extra compared with `train/`.
    """
    root = pathlib.Path(root)
    folders = class_folders(root)
    train = _training_sibling(root) if class_names is None else None
    if train is not None:
        train_folders = class_folders(train)
        extra = sorted(set(folders) - set(train_folders))
        if extra:
            raise UserError(f"class folder {root / extra[0]} has no counterpart in {train}: "
                            "validation classes must be the training classes")
        missing = sorted(set(train_folders) - set(folders))
        if missing:
            raise UserError(f"class folder {root / missing[0]} is missing: {train} has class {missing[0]!r}")
        class_names = folder_class_names(train_folders, num_classes)
    elif class_names is None:
        class_names = folder_class_names(folders, num_classes)
    index = {name: i for i, name in enumerate(class_names)}
    unknown = [f for f in folders if f not in index]
    if unknown:
        raise UserError(f"class folder {root / unknown[0]} is not among the {len(class_names)} given class names")
    paths, labels = [], []
    for folder in folders:
        files = sorted(
            entry.path
            for entry in os.scandir(root / folder)
            if entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS
        )
        if not files:
            raise UserError(f"class folder {root / folder} holds no images (extensions {sorted(IMAGE_EXTENSIONS)}): "
                            "remove it or add its images")
        paths.extend(files)
        labels.extend([index[folder]] * len(files))
    return paths, labels, list(class_names)


def list_tfrecord_files(pattern):
    """Sorted shard files matching `pattern`; a one-line error when there are none."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(str(pattern)))
    if not files:
        raise UserError(f"no TFRecord files match {pattern}")
    return files


def read_tfrecord_metadata(files):
    """The `dataset.json` written by `kresnet data convert` beside the shards, or None."""
    path = pathlib.Path(files[0]).parent / TFRECORD_METADATA
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise UserError(f"{path} is not valid JSON: {error}") from None


def tfrecord_example_count(files, metadata):
    """Images in `files` according to the metadata's per-shard counts, or None if unknown."""
    if not metadata or "shards" not in metadata:
        return None
    counts = metadata["shards"]
    names = [os.path.basename(f) for f in files]
    if not all(name in counts for name in names):
        return None
    return sum(int(counts[name]) for name in names)
