"""Folder dataset -> TFRecord shards in the standard ImageNet layout (`kresnet data convert`).

Shards are named `train-00000-of-00042` / `validation-00000-of-00004` and hold
`tf.train.Example`s with the features of TensorFlow's `build_imagenet_data.py`:
`image/encoded`, `image/class/label` (1-based: 0 is background there), `image/class/synset`,
`image/format`, `image/filename`, `image/height`, `image/width`, `image/channels`,
`image/colorspace`. A `dataset.json` beside them records class names, the label
offset, images per shard and the files skipped as unreadable.

Every image is opened and fully decoded by Pillow first: unreadable files are
skipped and listed, never written. JPEGs (RGB, greyscale or CMYK) are kept
byte for byte; anything else (e.g. a PNG named `.JPEG`) is re-encoded as an RGB JPEG.
"""

import concurrent.futures
import io
import json
import math
import os
import pathlib

from PIL import Image

from kresnet.data import sources
from kresnet.errors import UserError

LABEL_OFFSET = 1
SPLIT_FILE_PREFIX = {"train": "train", "val": "validation"}


def read_checked(path):
    """(encoded JPEG bytes, height, width) of a readable image, or None if it cannot be decoded."""
    try:
        data = pathlib.Path(path).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.format == "JPEG" and image.mode in ("RGB", "L", "CMYK"):
                return data, image.height, image.width
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "JPEG", quality=95)
            return buffer.getvalue(), image.height, image.width
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        return None


def find_unreadable(paths, workers=None, progress=None):
    """The paths among `paths` that Pillow cannot fully decode (threads; Pillow decodes without the GIL)."""
    bad = []
    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count()) as pool:
        for done, (path, result) in enumerate(zip(paths, pool.map(read_checked, paths)), 1):
            if result is None:
                bad.append(path)
            if progress is not None:
                progress(done)
    return bad


def _example(encoded, height, width, label, synset, filename):
    import tensorflow as tf

    def bytes_feature(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def int_feature(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    features = {
        "image/encoded": bytes_feature(encoded),
        "image/format": bytes_feature(b"JPEG"),
        "image/colorspace": bytes_feature(b"RGB"),
        "image/channels": int_feature(3),
        "image/height": int_feature(height),
        "image/width": int_feature(width),
        "image/class/label": int_feature(label + LABEL_OFFSET),
        "image/class/synset": bytes_feature(synset.encode()),
        "image/filename": bytes_feature(os.path.basename(filename).encode()),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _write_shard(path, items, class_names):
    import tensorflow as tf

    written, skipped = 0, []
    with tf.io.TFRecordWriter(str(path)) as writer:
        for image_path, label in items:
            checked = read_checked(image_path)
            if checked is None:
                skipped.append(image_path)
                continue
            writer.write(_example(*checked, label, class_names[label], image_path))
            written += 1
    return written, skipped


def convert_folder(root, out_dir, images_per_shard=1250, workers=None, progress=None, seed=0):
    """Write TFRecord shards for `root/train` and `root/val` (or `root` itself as "train").

    Images are shuffled across shards with `seed`, so each shard mixes classes.

    Args:
        root: str or path. ILSVRC-layout root, or one class-per-folder tree.
        out_dir: str or path. Output folder (created).
        images_per_shard: int. Target images per shard file.
        workers: int or None. Parallel shard writers; default the CPU count.
        progress: callable or None. Called with the number of shards finished so far.
        seed: int. Order of images across shards.

    Returns:
        The metadata dict also written to `out_dir/dataset.json`.
    """
    import random

    root, out_dir = pathlib.Path(root), pathlib.Path(out_dir)
    splits = {split: root / split for split in ("train", "val") if (root / split).is_dir()} or {"train": root}
    # The tree's own classes in sorted order (ImageNet's order for all 1000 synsets, which is sorted):
    # the reader numbers a synset subset as ImageNet's only when the model has 1000 classes.
    own_count = len(sources.class_folders(next(iter(splits.values()))))
    listed = {split: sources.list_image_folder(folder, num_classes=own_count) for split, folder in splits.items()}
    class_names = next(iter(listed.values()))[2]
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for split, (paths, labels, names) in listed.items():
        if names != class_names:
            raise UserError(f"class folders of {splits[split]} differ from those of {next(iter(splits.values()))}")
        items = list(zip(paths, labels))
        random.Random(seed).shuffle(items)
        count = max(1, math.ceil(len(items) / images_per_shard))
        prefix = SPLIT_FILE_PREFIX[split]
        for i in range(count):
            jobs.append((out_dir / f"{prefix}-{i:05d}-of-{count:05d}", items[i::count]))
    metadata = {
        "format": "kresnet-imagenet-tfrecord",
        "label_offset": LABEL_OFFSET,
        "num_classes": len(class_names),
        "class_names": class_names,
        "shards": {},
        "skipped": [],
    }
    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count()) as pool:
        futures = {pool.submit(_write_shard, path, items, class_names): path for path, items in jobs}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            written, skipped = future.result()
            metadata["shards"][futures[future].name] = written
            metadata["skipped"].extend(skipped)
            if progress is not None:
                progress(done)
    metadata["shards"] = dict(sorted(metadata["shards"].items()))
    metadata["skipped"].sort()
    (out_dir / sources.TFRECORD_METADATA).write_text(json.dumps(metadata, indent=1))
    return metadata
