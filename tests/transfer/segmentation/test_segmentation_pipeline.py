"""tf.data pipelines: augmentation flips, scales and keeps image and mask aligned; evaluation padding; error messages."""

import numpy as np
import pytest
from PIL import Image

from kresnet.errors import UserError, reraise_as_user_error
from kresnet.data import imagenet_stats
from kresnet.transfer.segmentation import pipeline, readers


def _block_dataset(tmp_path, count=3, height=32, width=40):
    """Images whose grey level encodes the class of each pixel: class c is painted 60 * c."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(count):
        mask = np.zeros((height, width), np.uint8)
        mask[:, width // 2 :] = 1
        mask[height // 2 :, : width // 3] = 2
        mask[:3, :3] = 255
        grey = np.where(mask == 255, 0, mask * 60).astype(np.uint8)
        Image.fromarray(np.repeat(grey[..., None], 3, axis=-1)).save(tmp_path / "images" / f"{i}.png")
        Image.fromarray(mask, mode="L").save(tmp_path / "masks" / f"{i}.png")
    return readers.folder_samples(tmp_path, ["a", "b", "c"], image_suffix=".png")


def _denormalize(image):
    return image * np.array(imagenet_stats.STD_RGB) + np.array(imagenet_stats.MEAN_RGB)


def _uniform_neighbourhood(masks):
    """True where a pixel's 3x3 neighbourhood lies inside the crop and holds a single label."""
    padded = np.pad(masks, [(0, 0), (1, 1), (1, 1)], constant_values=-1)
    height, width = masks.shape[1:]
    windows = [padded[:, dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)]
    return np.all([w == masks for w in windows], axis=0)


def test_augmentation_keeps_image_and_mask_aligned(tmp_path):
    samples = _block_dataset(tmp_path)
    dataset = pipeline.train_dataset(samples, batch_size=3, crop_size=24, base_size=40, seed=3, targets=("logits", "aux"))
    for images, targets in dataset.take(4).as_numpy_iterator():
        masks = targets["logits"]
        np.testing.assert_array_equal(masks, targets["aux"])
        assert images.shape == (3, 24, 24, 3) and images.dtype == np.float32 and masks.dtype == np.int32
        assert set(np.unique(masks)) <= {0, 1, 2, 255}
        grey = _denormalize(images)[..., 0]
        # Bilinear image vs nearest mask may differ only next to a class border, so every pixel whose
        # 3x3 neighbourhood holds one label (borders hidden by the crop count as unknown) must match exactly.
        interior = _uniform_neighbourhood(masks) & (masks != 255)
        assert interior.sum() > 0.5 * masks.size
        np.testing.assert_allclose(grey[interior], 60.0 * masks[interior], atol=1.0)
        padding = (masks == 255) & (np.abs(images).sum(-1) == 0)  # padded: mean colour, ignore label
        assert padding.sum() <= (masks == 255).sum()


def test_eval_batches_are_padded_squares_with_original_masks(testdata):
    kwargs = dict(class_names=list("abcd"), image_dir="imgs", mask_dir="gts", image_suffix="_img.jpg", mask_suffix="_gt.png")
    samples = readers.folder_samples(testdata / "seg-custom", split_file="splits/train.txt", **kwargs)
    batches = list(pipeline.eval_dataset(samples, eval_size=64, batch_size=3).as_numpy_iterator())
    assert [len(b["image"]) for b in batches] == [3, 1]
    first = batches[0]
    assert first["image"].shape == (3, 64, 64, 3) and first["mask"].shape == (3, 128, 256)
    np.testing.assert_array_equal(first["valid_size"], [[32, 64]] * 3)  # 128x256 -> longer side 64
    np.testing.assert_array_equal(first["mask_size"], [[128, 256]] * 3)
    assert np.all(first["image"][:, 32:] == 0)
    np.testing.assert_array_equal(first["mask"][0], readers.read_sample(samples, 0)[1])


def test_bad_mask_inside_the_pipeline_becomes_a_user_error(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / "x.png")
    Image.fromarray(np.full((8, 8), 9, np.uint8), mode="L").save(tmp_path / "masks" / "x.png")
    samples = readers.folder_samples(tmp_path, ["a", "b"], image_suffix=".png")
    with pytest.raises(UserError, match=r"masks/x\.png: value 9 out of range"):
        try:
            next(iter(pipeline.eval_dataset(samples, eval_size=8)))
        except Exception as error:
            reraise_as_user_error(error)


def test_predict_preprocessing_matches_the_eval_pipeline(tmp_path):
    # PNG, so both paths decode identical pixels (Pillow and TF decode JPEGs slightly differently).
    from kresnet.transfer.segmentation.evaluation import resize_for_eval

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    image = np.random.default_rng(0).integers(0, 256, size=(50, 70, 3)).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "images" / "x.png")
    Image.fromarray(np.zeros((50, 70), np.uint8)).save(tmp_path / "masks" / "x.png")
    samples = readers.folder_samples(tmp_path, ["a"], image_suffix=".png")
    batch = next(pipeline.eval_dataset(samples, eval_size=32).as_numpy_iterator())
    padded, valid_size = resize_for_eval(image, 32)
    assert tuple(valid_size) == tuple(batch["valid_size"][0]) == (23, 32)
    np.testing.assert_allclose(padded, batch["image"][0], atol=1e-4)


def test_augmentation_flips_and_scales_the_longer_side_to_base_times_a_random_factor():
    import tensorflow as tf

    # Class 1 fills the left quarter of a 20x40 image: a flip moves it to the right.
    mask = np.zeros((20, 40), np.uint8)
    mask[:, :10] = 1
    image = np.repeat((mask * 200)[..., None], 3, axis=-1)
    flipped = []
    for draw in range(12):
        _, crop = pipeline.augment(
            tf.constant(image), tf.constant(mask), 40, base_size=40, scale_range=(1.0, 1.0), seed=[0, draw]
        )
        crop = crop.numpy()
        np.testing.assert_array_equal(crop[20:], 255)  # 20x40 stays 20x40, padded with ignore below
        flipped.append(bool(crop[0, -1] == 1))
        np.testing.assert_array_equal(crop[:20], mask[:, ::-1] if flipped[-1] else mask)
    assert any(flipped) and not all(flipped)
    # The longer side becomes 80 x U[0.25, 1] = 20..80 px, so the shorter one 10..40: the crop holds that many
    # labelled rows (all 40 once the image is taller than the crop), different from draw to draw.
    labelled_rows = []
    for draw in range(12):
        _, crop = pipeline.augment(
            tf.constant(image), tf.constant(mask), 40, base_size=80, scale_range=(0.25, 1.0), seed=[1, draw]
        )
        labelled_rows.append(int(np.any(crop.numpy() != 255, axis=1).sum()))
    assert min(labelled_rows) < 20 and max(labelled_rows) > 30 and all(r >= 10 for r in labelled_rows), labelled_rows
