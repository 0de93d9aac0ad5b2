"""The order of a training stream as a pure function of (seed, element index), so that it can start anywhere.

Element i of an endless training stream over N items is item `perm_p[i mod N]` of pass
p = i // N, where `perm_p` is a stateless permutation seeded by (seed, p), and the element
carries its index i, from which its augmentation draws its own stateless seed. A stream that
starts at element i0 (a run resumed at optimizer step S starts at S x the global batch) is
then exactly the tail of the stream that starts at 0, found without reading or decoding
anything before it: a killed and resumed run sees the images, crops and flips an unkilled
one sees. Every task's training stream (classification, detection, segmentation) is built
on `resumable_order`.

Sources that cannot be indexed (TFRecord files are read in sequence, `kresnet.data.records`)
shuffle their passes from a seed of (seed, first element), so a resumed stream does not replay
the first pass, but it is not the unkilled run's order.
"""

import tensorflow as tf

# A Keras epoch of a finite dataset iterates it anew: it starts at a random pass of the endless
# stream (drawn per iteration from the seed), so each epoch gets a fresh order and fresh draws.
_PASSES = 2**31


def element_seed(seed, element):
    """The stateless seed (int64 [2]) of element `element` of a stream seeded with `seed`."""
    return tf.stack([tf.cast(seed, tf.int64), tf.cast(element, tf.int64)])


def resumable_order(num_items, seed, first_element=0):
    """Endless `tf.data.Dataset` of (item index, element index), int64, from element `first_element` on.

    Args:
        num_items: int. Items in one pass (training images).
        seed: int. The run's seed.
        first_element: int or int64 scalar tensor. Index of the first element in the whole stream.
    """
    num_items = int(num_items)
    if num_items <= 0:
        raise ValueError(f"num_items must be positive. Received: num_items={num_items}")
    seed = tf.constant(int(seed), tf.int64)
    first_element = tf.cast(first_element, tf.int64)
    first_pass, offset = first_element // num_items, first_element % num_items

    def one_pass(number):
        order = tf.random.experimental.stateless_shuffle(tf.range(num_items, dtype=tf.int64),
                                                         seed=tf.stack([seed, number]))
        start = tf.where(number == first_pass, offset, tf.constant(0, tf.int64))
        return tf.data.Dataset.from_tensor_slices(order[start:])

    items = tf.data.Dataset.range(first_pass, tf.int64.max).flat_map(one_pass)
    return tf.data.Dataset.zip(items, tf.data.Dataset.range(first_element, tf.int64.max))


def training_order(num_items, seed, first_element=None, endless=True):
    """(item index, element index) of a training stream: `resumable_order` from `first_element`, or
    (None) from a new random pass each time the dataset is iterated; endless, or one pass.

    Args:
        num_items: int. Items in one pass.
        seed: int. The run's seed.
        first_element: int, or None for a finite dataset that Keras iterates anew every epoch.
        endless: bool. Endless, or `num_items` elements.
    """
    if first_element is None:
        return fresh_each_iteration(seed, lambda first_pass: training_order(num_items, seed, first_pass * num_items,
                                                                            endless))
    indexed = resumable_order(num_items, seed, first_element)
    return indexed if endless else indexed.take(num_items)


def fresh_each_iteration(seed, stream):
    """`stream(first_pass)` from a new random pass each time it is iterated (deterministic given `seed`):
    for finite datasets, which Keras iterates anew every epoch.

    Args:
        seed: int or None. The run's seed.
        stream: callable(first_pass int64 scalar tensor) -> `tf.data.Dataset`.
    """
    starts = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    return starts.flat_map(lambda drawn: stream(drawn % _PASSES))
