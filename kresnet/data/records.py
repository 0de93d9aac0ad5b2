"""The undecoded records of a source, before any image is read: in file order for evaluation, in the
resumable training order (`kresnet.data.order`) for training.

A training record is (item, label, seed): a file path (or a serialized TFRecord example, whose
label the parser reads), its class, and the stateless seed of its augmentation, which belongs to
its place in the stream (its element index), not to the process that decodes it.

Folders are indexable: their training stream from element i0 is exactly the tail of the stream
from 0 (a resumed run sees what an unkilled one sees). TFRecord files are read in sequence: a
stream that starts at element i0 > 0 shuffles its passes by (seed, i0), so a resumed run reads a
fresh order rather than replaying the first pass, but not the unkilled run's order.
"""

import dataclasses
import random

import numpy as np
import tensorflow as tf

from kresnet.data import order, sources
from kresnet.errors import UserError

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass
class Records:
    """A source's record stream and what the reader found.

    Args:
        in_order: `tf.data.Dataset` of (item, label), in file order (evaluation).
        training: callable(first_element, endless) -> `tf.data.Dataset` of (item, label, seed int64 [2]):
            the training stream from element `first_element` on (None: from a new random pass each
            time the dataset is iterated, for a finite dataset that Keras iterates once per epoch);
            endless, or one pass when `endless` is False.
        info: dict of `DatasetInfo` fields (num_classes, num_examples, class_names).
        parse: callable(item, label) -> (encoded image, label).
        sharded: whether the training stream holds only this process's records already (TFRecord
            files split by process); its elements are then counted per process.
    """

    in_order: object
    training: object
    info: dict
    parse: object
    sharded: bool


def training_seed(seed):
    """`seed`, or a random one for a run that did not fix it (its order then differs on every run)."""
    return random.SystemRandom().randrange(2**31) if seed is None else int(seed)


def folder_records(root, *, seed, num_classes, class_names):
    """Records of a class-per-folder tree.

    Args:
        root: the folder of class folders.
        seed: int. The training stream's seed.
        num_classes: int or None. At least the tree's classes.
        class_names: list of str or None. Class folder names in index order.
    """
    paths, labels, names = sources.list_image_folder(root, class_names, num_classes)
    if num_classes is not None and num_classes < len(names):
        raise UserError(f"num_classes={num_classes} is smaller than the {len(names)} classes of {root}")
    info = {"num_classes": num_classes or len(names), "num_examples": len(paths), "class_names": names}
    count = len(paths)
    paths, labels = tf.constant(paths), tf.constant(labels, tf.int32)

    def training(first_element, endless):
        indexed = order.training_order(count, seed, first_element, endless)
        return indexed.map(lambda item, element: (paths[item], labels[item], order.element_seed(seed, element)))

    return Records(tf.data.Dataset.from_tensor_slices((paths, labels)), training, info, _read_file, False)


def tfrecord_records(pattern, *, seed, shuffle_buffer, num_classes, label_offset, shard):
    """Records of TFRecord shards; `label_offset` (None: from `dataset.json`, else 1) is subtracted from labels.

    Training reads only this process's files when there are at least as many files as processes
    (examples per process then differ by at most a file, which an endless stream does not mind);
    evaluation splits the records, so that every shard knows how many batches the others yield.
    Arguments as `folder_records`, plus `shuffle_buffer` (examples) and `shard` (count, index).
    """
    files = all_files = sources.list_tfrecord_files(pattern)
    num_shards, shard_index = shard
    sharded = num_shards == 1 or len(files) >= num_shards  # training only: evaluation splits records
    training_files = files[shard_index::num_shards] if num_shards > 1 and sharded else files
    metadata = sources.read_tfrecord_metadata(all_files) or {}
    names = metadata.get("class_names") or (sources.imagenet_synsets() if sources.imagenet_indexed(num_classes) else [])
    label_map = None
    if metadata.get("class_names"):
        # The folder reader's rule: a synset subset takes ImageNet's indices for a 1000-class model.
        indexed = sources.folder_class_names(names, num_classes)
        if indexed != names:
            position = {name: index for index, name in enumerate(indexed)}
            label_map, names = [position[name] for name in names], indexed
    if num_classes is not None and num_classes < len(names):
        raise UserError(f"num_classes={num_classes} is smaller than the {len(names)} classes of {pattern}")
    num_classes = num_classes or (len(names) if label_map else metadata.get("num_classes")) or len(names)
    if label_offset is None:
        label_offset = int(metadata.get("label_offset", 1))
    info = {"num_classes": int(num_classes), "num_examples": sources.tfrecord_example_count(all_files, metadata),
            "class_names": list(names)}
    in_order = tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset, cycle_length=min(16, len(files)), num_parallel_calls=AUTOTUNE, deterministic=True)
    in_order = in_order.map(lambda serialized: (serialized, tf.constant(0, tf.int64)))
    files, cycle_length = tf.constant(training_files), min(16, len(training_files))

    def training(first_element, endless):
        # Shard order and the example buffer reshuffle on every pass (and every new iterator), from a seed
        # of (seed, first element): a stream started later gets a fresh order rather than the first pass again.
        start = 0 if first_element is None else int(first_element)
        pass_seed = int(np.random.SeedSequence([seed, start]).generate_state(1)[0])
        shards = tf.data.Dataset.from_tensor_slices(files).shuffle(len(training_files), seed=pass_seed,
                                                                 reshuffle_each_iteration=True)
        records = shards.interleave(tf.data.TFRecordDataset, cycle_length=cycle_length, num_parallel_calls=AUTOTUNE,
                                    deterministic=True)
        records = records.shuffle(shuffle_buffer, seed=pass_seed, reshuffle_each_iteration=True)
        if endless:
            records = records.repeat()
        if first_element is None:
            # Element indices of different iterations lie 2^31 apart: no two share an augmentation seed.
            elements = order.fresh_each_iteration(seed, lambda first_pass: tf.data.Dataset.range(first_pass * 2**31,
                                                                                               tf.int64.max))
        else:
            elements = tf.data.Dataset.range(start, tf.int64.max)
        return tf.data.Dataset.zip(records, elements).map(
            lambda serialized, element: (serialized, tf.constant(0, tf.int64), order.element_seed(seed, element)))

    return Records(in_order, training, info, _tfrecord_parser(label_offset, label_map), sharded)


def _read_file(path, label):
    return tf.io.read_file(path), label


def _tfrecord_parser(label_offset, label_map=None):
    features = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64),
    }
    label_map = None if label_map is None else tf.constant(label_map, tf.int64)

    def parse(serialized, _unused_label):
        example = tf.io.parse_single_example(serialized, features)
        label = example["image/class/label"] - label_offset
        return example["image/encoded"], label if label_map is None else tf.gather(label_map, label)

    return parse
