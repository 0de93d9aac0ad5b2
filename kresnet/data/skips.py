"""Counting the images the pipeline could not read, so a corrupt file costs one sample, not the run.

The pipeline drops elements whose decoding fails (`Dataset.ignore_errors`), which
alone would hide them. Each load records its element in `attempted` before
decoding and in `decoded` after it, in the same function; elements attempted but
never decoded are the unreadable ones. While a file is met for the first time and
its load is still in flight it is briefly in the first set only, so mid-epoch
counts during the first pass can run a few high; at an epoch end they are exact.
"""

import tensorflow as tf


class SkipCounter:
    """The set of elements ever attempted and the set ever decoded, as TensorFlow hash tables.

    `count` is the number of distinct files (or records) that never decoded, so
    an unreadable file counts once however many epochs or iterators meet it.
    Keys are 64-bit hashes of the path (or serialized record), about 100 bytes
    per image across both tables.
    """

    def __init__(self):
        self.attempted = self._set()
        self.decoded = self._set()

    @staticmethod
    def _set():
        return tf.lookup.experimental.MutableHashTable(key_dtype=tf.int64, value_dtype=tf.int64, default_value=0)

    @property
    def count(self):
        """Distinct images dropped so far because they could not be read or decoded."""
        return int(self.attempted.size().numpy() - self.decoded.size().numpy())

    def wrap(self, load):
        """`load(item, ...)` with the bookkeeping around it; `item` (path or record) identifies the element."""

        def counted(item, *args):
            key = tf.reshape(tf.strings.to_hash_bucket_fast(item, 2**62), [1])
            one = tf.ones([1], tf.int64)
            with tf.control_dependencies([self.attempted.insert(key, one)]):
                item = tf.identity(item)
            outputs = load(item, *args)
            with tf.control_dependencies(tf.nest.flatten(outputs)):
                done = self.decoded.insert(key, one)
            with tf.control_dependencies([done]):
                return tf.nest.map_structure(tf.identity, outputs)

        return counted


def skip_unreadable(dataset, counter, decode):
    """`dataset` with `decode` mapped over it and the elements it fails on dropped and counted.

    Only `decode` is guarded: errors in later maps (a bad mask, a bad label file)
    still stop the run with their own message.

    Args:
        dataset: `tf.data.Dataset` whose elements are tuples, the first a file path.
        counter: `SkipCounter`.
        decode: callable(path, *rest) -> element; reads and decodes the image.
    """
    return dataset.map(counter.wrap(decode), num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()


def skip_counts(counters):
    """{name: distinct images skipped} of named `SkipCounter`s (None counters count 0).

    Args:
        counters: dict {name: `SkipCounter` or None}, e.g. {"train": ..., "val": ...}.
    """
    return {name: 0 if counter is None else counter.count for name, counter in counters.items()}


def skip_report(counts):
    """The one console line for skip counts, or None when nothing was skipped.

    Args:
        counts: dict {name: int} from `skip_counts`.
    """
    if not any(counts.values()):
        return None
    listed = ", ".join(f"{name} {count}" for name, count in counts.items())
    return f"warning: skipped unreadable images (corrupt, truncated or not an image): {listed}"


def skipped_images_callback(counter, print_fn=None):
    """A Keras callback that reports, once per epoch end, how many unreadable images were skipped.

    Args:
        counter: `SkipCounter` (from `DatasetInfo.skipped`; its count goes to
            `logs["skipped_images"]`, reported when it grows), or a dict
            {name: `SkipCounter`} (e.g. train and val; reported each epoch
            while any is non-zero).
        print_fn: callable. Where the one-line report goes (default: `kresnet.console.say`, a line
            of its own below the progress bar).
    """
    import keras

    from kresnet.console import say

    print_fn = print_fn or say

    class SkippedImages(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.reported = 0

        def on_epoch_end(self, epoch, logs=None):
            if isinstance(counter, dict):
                line = skip_report(skip_counts(counter))
                if line:
                    print_fn(line)
                return
            count = counter.count
            if logs is not None:
                logs["skipped_images"] = count
            if count > self.reported:
                print_fn(f"warning: skipped {count} unreadable image(s) so far (corrupt, truncated or not an image)")
                self.reported = count

    return SkippedImages()
