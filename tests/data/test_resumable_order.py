"""The training stream as a function of (seed, position): every pass a permutation, any start exactly the tail."""

import numpy as np
import pytest
import tensorflow as tf

from kresnet.data.order import resumable_order, training_order
from kresnet.data.pipeline import build_dataset


def _pairs(dataset, count):
    return [tuple(int(v) for v in pair) for pair in dataset.take(count).as_numpy_iterator()]


def test_each_pass_is_a_permutation_of_its_own_and_elements_are_numbered():
    pairs = _pairs(resumable_order(7, seed=3), 21)
    assert [element for _, element in pairs] == list(range(21))
    passes = [[item for item, _ in pairs[i:i + 7]] for i in (0, 7, 14)]
    assert all(sorted(p) == list(range(7)) for p in passes)
    assert passes[0] != passes[1] != passes[2]
    assert _pairs(resumable_order(7, seed=3), 21) == pairs  # a function of the seed
    assert _pairs(resumable_order(7, seed=4), 7) != pairs[:7]


@pytest.mark.parametrize("start", [0, 1, 6, 7, 12, 30])
def test_a_stream_started_anywhere_is_the_tail_of_the_stream_from_zero(start):
    whole = _pairs(resumable_order(7, seed=3), 40)
    assert _pairs(resumable_order(7, seed=3, first_element=start), 10) == whole[start:start + 10]


def test_a_finite_stream_starts_each_iteration_at_a_new_pass():
    dataset = training_order(7, seed=3, endless=False)
    first, second = _pairs(dataset, 8), _pairs(dataset, 8)
    assert len(first) == 7 and sorted(item for item, _ in first) == list(range(7))
    assert first != second and first[0][1] % 7 == 0


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("order") / "train"
    rng = np.random.default_rng(0)
    for k in range(3):
        (root / f"class{k}").mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(root / f"class{k}" / f"{i}.jpg")
    return root


def _batches(folder, count, **options):
    dataset, _ = build_dataset(folder, training=True, batch_size=4, image_size=16, seed=5, repeat=True,
                               mixup_alpha=0.2, **options)
    return list(dataset.take(count).as_numpy_iterator())


def test_a_folder_stream_from_batch_k_is_batch_k_on_of_the_stream_from_zero(folder):
    # 15 images, batches of 4: batch 5 starts in the middle of the second pass.
    whole, resumed = _batches(folder, 9), _batches(folder, 4, first_batch=5)
    for expected, got in zip(whole[5:], resumed):
        np.testing.assert_array_equal(got[0], expected[0])  # the same images, crops, flips, colours and mixup
        np.testing.assert_array_equal(got[1], expected[1])
    with pytest.raises(Exception, match="only an endless training stream"):
        build_dataset(folder, training=True, batch_size=4, first_batch=2)


def test_each_process_of_a_sharded_stream_resumes_at_its_part_of_the_global_batch(folder):
    options = dict(training=True, image_size=16, seed=5, repeat=True, first_batch=3)
    parts = [build_dataset(folder, batch_size=2, shard=(2, i), **options)[0] for i in (0, 1)]
    single, _ = build_dataset(folder, batch_size=4, **options)
    for first, second, global_batch in zip(parts[0].take(2), parts[1].take(2), single.take(2)):
        np.testing.assert_array_equal(tf.concat([first[0], second[0]], 0), global_batch[0])
        np.testing.assert_array_equal(tf.concat([first[1], second[1]], 0), global_batch[1])


def test_a_tfrecord_stream_started_later_reads_a_fresh_order_not_the_first_pass_again(folder, tmp_path):
    from kresnet.data.tfrecords import convert_folder

    convert_folder(folder, tmp_path / "records", images_per_shard=4, workers=1)
    shards = str(tmp_path / "records" / "train-*")

    def images(first_batch, count=3):
        dataset, _ = build_dataset(shards, training=True, batch_size=4, image_size=16, seed=5, repeat=True,
                                   first_batch=first_batch, one_hot=False)
        return [batch[0] for batch in dataset.take(count).as_numpy_iterator()]

    from_zero, again, resumed = images(0), images(0), images(2)
    for a, b in zip(from_zero, again):
        np.testing.assert_array_equal(a, b)  # a function of the seed and the start
    assert not any(np.array_equal(r, z) for r, z in zip(resumed, from_zero))
