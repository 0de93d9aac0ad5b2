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


def skipped_images_callback(counter, print_fn=print):
    """A Keras callback that reports, at each epoch end, how many unreadable images were skipped.

    Args:
        counter: `SkipCounter` (from `DatasetInfo.skipped`).
        print_fn: callable. Where the one-line report goes.
    """
    import keras

    class SkippedImages(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.reported = 0

        def on_epoch_end(self, epoch, logs=None):
            count = counter.count
            if logs is not None:
                logs["skipped_images"] = count
            if count > self.reported:
                print_fn(f"warning: skipped {count} unreadable image(s) so far (corrupt, truncated or not an image)")
                self.reported = count

    return SkippedImages()
