"""`build_dataset`: one entry point from a folder or TFRecord shards to batches the model trains on.

Order of operations, training: list files -> the resumable order (kresnet.data.order: pass p
is a permutation seeded by (seed, p), element i carries the stateless seed (seed, i)) ->
read, decode the crop window,
augment, normalise (parallel) -> drop unreadable images, counted -> batch ->
one-hot -> [mixup] -> [channels_first] -> prefetch. Evaluation keeps file order
and applies the resize + centre crop. Output is float32 NHWC (or NCHW), normalised.

Several processes feeding one data-parallel job each pass `shard=(count, index)` and their
part of the global batch as `batch_size`: the example stream (the same order everywhere) is
cut into such parts and process i keeps parts i, i + count, ... before decoding. Each process
reads and decodes only its own images, and global batch k holds exactly the images that
batch k of a single process would.
"""

import tensorflow as tf

from kresnet.data import augment, decode, records, sources
from kresnet.data.mixup import apply_mixup
from kresnet.data.skips import SkipCounter
from kresnet.errors import UserError

AUTOTUNE = tf.data.AUTOTUNE


def build_dataset(
    source,
    *,
    training,
    batch_size,
    image_size=224,
    resize_size=None,
    num_classes=None,
    one_hot=True,
    seed=None,
    shuffle_buffer=16384,
    drop_remainder=None,
    repeat=False,
    data_format="channels_last",
    colour_jitter=True,
    lighting_std=augment.LIGHTING_STD,
    min_crop_area=augment.AREA_RANGE[0],
    mixup_alpha=0.0,
    class_names=None,
    label_offset=None,
    threads=None,
    skip_counter=None,
    eval_preset=None,
    shard=(1, 0),
    pad_last_batch=False,
    first_batch=0,
):
    """A batched `tf.data.Dataset` of (images, labels) and a `DatasetInfo`.

    Args:
        source: str or path. A folder of class folders (e.g. `imagenet/train`) or a
            TFRecord file / glob (e.g. `tfrecords/train-*`).
        training: bool. Random crop + flip + colour + lighting and shuffling if
            True; resize + centre crop in file order if False.
        batch_size: int. Examples per batch.
        image_size: int. Output side (224 in the paper).
        resize_size: int or None. Evaluation shorter side; default keeps 256/224.
        num_classes: int or None. One-hot width; default from the source.
        one_hot: bool. float32 one-hot labels if True, int32 class ids if False.
        seed: int or None. Makes order and augmentation reproducible.
        shuffle_buffer: int. Example shuffle buffer for TFRecords (folders
            shuffle the whole file list).
        drop_remainder: bool or None. Default: True when training.
        repeat: bool. Repeat forever (Keras then needs `steps_per_epoch`). Otherwise
            a training dataset with a known size yields exactly
            `num_examples // batch_size` batches per iteration (a new shuffle each time).
        data_format: "channels_last" (NHWC) or "channels_first" (NCHW).
        colour_jitter: bool. Brightness/saturation/hue factors U[0.6, 1.4] (training).
        lighting_std: float. PCA lighting noise std (training; 0 turns it off).
        min_crop_area: float. Smallest random-crop area as a fraction of the image (training;
            the paper's 0.08 by default).
        mixup_alpha: float. Mixup Beta parameter (training; 0 turns it off; needs one_hot).
        class_names: list of str or None. Folder names in class order (folders only).
        label_offset: int or None. Subtracted from TFRecord labels; default from
            `dataset.json`, else 1 (standard ImageNet shards keep 0 for background).
        threads: int or None. Size of a private tf.data thread pool (None: shared, all cores).
        skip_counter: `SkipCounter` or None. Shared with another stream of the
            same files (training with and without mixup), so a file counts once.
        eval_preset: `kresnet.models.presets.Preset` or None. Evaluate with that pretrained tag's own
            transform (its size, crop_pct, interpolation, mean/std) instead of the paper's.
        shard: (count, index). Keep every count-th run of `batch_size` examples from the
            index-th on, before decoding (TFRecord training with at least `count` files: every
            count-th file instead). Training then needs a `seed`, so that every process
            shuffles the same way.
        pad_last_batch: bool. Evaluation: yield (images, labels, weights), every batch full, the
            last one padded with zero images of weight 0, and the same number of batches
            (`info.num_batches`) in every shard, so that data-parallel devices split every batch
            evenly and each image counts once.
        first_batch: int. Training with `repeat`: start the stream at this (global) batch, as a run
            resumed at that optimizer step needs. For a folder it is exactly the rest of the stream
            from batch 0, found without reading what comes before; TFRecord files are read in
            sequence, so their stream then starts a fresh order (`kresnet.data.records`).

    Returns:
        (dataset, `DatasetInfo`); `info.skipped.count` is the number of unreadable
        images dropped so far.
    """
    if data_format not in ("channels_last", "channels_first"):
        raise UserError(f"data_format must be 'channels_last' or 'channels_first'. Received: data_format={data_format!r}")
    if mixup_alpha and not one_hot:
        raise UserError("mixup needs one-hot labels: set one_hot=True or mixup_alpha=0")
    resize_size = resize_size or augment.default_resize_size(image_size)
    if resize_size < image_size:
        raise UserError(f"resize_size must be >= image_size. Received: resize_size={resize_size}, image_size={image_size}")
    drop_remainder = training if drop_remainder is None else drop_remainder
    num_shards = shard[0]
    if training and num_shards > 1 and seed is None:
        raise UserError(f"shard={shard}: sharded training needs a seed, so that every process shuffles alike")
    if pad_last_batch and training:
        raise UserError("pad_last_batch is for evaluation (training=False)")
    counter = skip_counter or SkipCounter()

    if first_batch and not (training and repeat):
        raise UserError(f"first_batch={first_batch}: only an endless training stream (training=True, repeat=True) starts later")
    fixed_seed = seed is not None
    seed = records.training_seed(seed)
    if sources.is_tfrecord_source(source):
        found = records.tfrecord_records(source, seed=seed, shuffle_buffer=shuffle_buffer, num_classes=num_classes,
                                         label_offset=label_offset, shard=shard)
    else:
        found = records.folder_records(source, seed=seed, num_classes=num_classes, class_names=class_names)
    info = sources.DatasetInfo(skipped=counter, **found.info)
    parse = found.parse
    # Dropped files make the batch count unknowable, and Keras then warns that the data "ran out".
    # So a training epoch is an endless stream cut at num_examples // global batch batches: a known length.
    epoch_batches = None
    if training and drop_remainder and not repeat and info.num_examples:
        epoch_batches = info.num_examples // (batch_size * num_shards)
        if epoch_batches == 0:
            raise UserError(f"batch_size={batch_size * num_shards} is larger than the {info.num_examples} images of {source}")
    if training:
        # A process reading its own TFRecord files counts its own elements; otherwise elements are global.
        records_sharded = found.sharded
        per_batch = batch_size if records_sharded else batch_size * num_shards
        # A finite dataset (Keras iterates it once per epoch) starts each iteration at a new pass.
        examples = found.training(first_batch * per_batch if repeat else None, endless=bool(repeat or epoch_batches))
    else:
        records_sharded = num_shards == 1
        examples = found.in_order

    if training:

        def load(item, label, seed_pair):
            contents, label = parse(item, label)
            image = decode.train_image(contents, seed_pair, image_size, colour_jitter, lighting_std, min_crop_area)
            return image, _checked_label(label, info.num_classes)

        # Seeds are attached before sharding: an example gets the same augmentation whichever
        # process decodes it.
        if not records_sharded:
            examples = _keep_shard(examples, batch_size, shard)
        examples = examples.map(counter.wrap(load), num_parallel_calls=AUTOTUNE)
    else:

        def load(item, label):
            contents, label = parse(item, label)
            image = decode.eval_image(contents, image_size, resize_size, eval_preset)
            return image, _checked_label(label, info.num_classes)

        if not records_sharded:
            examples = _keep_shard(examples, batch_size, shard)
        examples = examples.map(counter.wrap(load), num_parallel_calls=AUTOTUNE)
    examples = examples.ignore_errors()
    if pad_last_batch:
        batches = _padded_batches(examples, batch_size, info, num_shards)
    else:
        batches = examples.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    if epoch_batches:
        # The stream is endless (unless every file is unreadable), so the length assertion holds.
        batches = batches.take(epoch_batches).apply(tf.data.experimental.assert_cardinality(epoch_batches))
    if one_hot:
        batches = batches.map(lambda x, y, *w: (x, tf.one_hot(y, info.num_classes), *w), num_parallel_calls=AUTOTUNE)
    if training and mixup_alpha:
        batches = apply_mixup(batches, mixup_alpha, seed + 2000, first_batch=first_batch)
    if data_format == "channels_first":
        batches = batches.map(lambda x, *rest: (tf.transpose(x, [0, 3, 1, 2]), *rest), num_parallel_calls=AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = fixed_seed or not training
    # Parallelism across images, not inside one image's small ops (as TF's official ResNet input does).
    options.threading.max_intra_op_parallelism = 1
    if threads:
        options.threading.private_threadpool_size = int(threads)
    return batches.prefetch(AUTOTUNE).with_options(options), info


def _keep_shard(records, batch_size, shard):
    """Runs number index, index + count, ... of `batch_size` consecutive (undecoded) records."""
    count, index = shard
    return records.batch(batch_size).shard(count, index).unbatch()


def _padded_batches(examples, batch_size, info, num_shards):
    """Full (images, labels, weights) batches: weight 1 for real images, then weight-0 zero images up to
    `info.num_batches`, the count every shard yields (the most any shard holds)."""
    if not info.num_examples:
        raise UserError("pad_last_batch needs a source that states its number of images")
    info.num_batches = -(-(-(-info.num_examples // batch_size)) // num_shards)
    weighted = examples.map(lambda x, y: (x, y, tf.constant(1.0)))
    padding = tf.data.Dataset.from_tensors(
        tuple(tf.zeros(spec.shape, spec.dtype) for spec in weighted.element_spec[:2]) + (tf.constant(0.0),)
    ).repeat()
    batches = weighted.concatenate(padding).take(info.num_batches * batch_size).batch(batch_size, drop_remainder=True)
    return batches.apply(tf.data.experimental.assert_cardinality(info.num_batches))


def _checked_label(label, num_classes):
    # A label outside [0, num_classes) fails here, inside the counted load, so it is skipped and counted
    # instead of becoming an all-zero one-hot row.
    label = tf.cast(label, tf.int32)
    checks = [
        tf.debugging.assert_less(label, num_classes, message="label out of range"),
        tf.debugging.assert_non_negative(label, message="label out of range"),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(label)
