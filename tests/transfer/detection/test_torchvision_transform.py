"""kresnet's detection input against torchvision's `GeneralizedRCNNTransform(800, 1333)`, on two COCO photos.

The same: the scale min(800 / short side, 1333 / long side), bilinear resizing with half-pixel centres and no
antialiasing, normalisation by the recipe's `pixel_mean` / `pixel_std` (torchvision's in the bundled recipe),
padding at the bottom and right that normalises to 0. The differences, measured here:

1. JPEG decoding. torchvision's references decode with PIL; kresnet's pipeline with `tf.io.decode_image`,
   whose fast integer IDCT differs from PIL's by up to 20 levels on three pixels in four of these photos.
   `tf.io.decode_jpeg(dct_method="INTEGER_ACCURATE")` equals PIL exactly.
2. Size rounding. kresnet rounds each scaled side, torchvision floors it: 640x360 becomes 1333x750 here,
   1333x749 there (640x427 gives 1199x800 in both).
3. Padding. kresnet pads every image to one static square, `padded_size(max_side)` = 1344; torchvision pads
   a batch to the next multiple of 32 (800x1216, 768x1344). Inside the image the tensors agree, but
   features near its bottom and right edges see different surroundings.
"""

import pathlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kresnet.transfer.detection.coco import read_coco
from kresnet.transfer.detection.pipeline import make_dataset, padded_size, resize_to_fit
from tests.transfer.detection.torchvision_reference import reference_folder, reference_recipe

SHORT_SIDE, MAX_SIDE = 800, 1333


@pytest.fixture(scope="module")
def photos(testdata):
    """(path, torchvision's results) of the two COCO photos, in the reference's (name) order."""
    reference = np.load(reference_folder(testdata) / "rcnn_transform.npz")
    paths = sorted((testdata / "coco" / "images").glob("*.jpg"))
    return [(path, {key: reference[f"{key}_{index}"] for key in ("size", "grid", "padded")})
            for index, path in enumerate(paths)]


def _normalised(image, config):
    return (np.asarray(image, np.float32) - np.float32(config.model.pixel_mean)) / np.float32(config.model.pixel_std)


def test_resized_and_normalised_like_torchvision_where_the_sizes_agree(photos):
    config = reference_recipe()
    for path, expected in photos:
        pixels = np.asarray(Image.open(path).convert("RGB"))  # decoded as torchvision's references decode
        height, width = pixels.shape[:2]
        image, new_height, new_width = resize_to_fit(pixels, float(height), float(width), SHORT_SIDE, MAX_SIDE,
                                                     padded_size(MAX_SIDE))
        ours = (int(new_height), int(new_width))
        theirs = tuple(int(side) for side in expected["size"][:2])
        assert tuple(expected["size"][2:]) == (height, width)
        if ours != theirs:
            # Difference 2: kresnet rounds 749.8 up, torchvision floors it.
            scale = min(SHORT_SIDE / min(height, width), MAX_SIDE / max(height, width))
            assert ours == (round(height * scale), round(width * scale))
            assert theirs == (int(height * scale), int(width * scale))
            continue
        grid = _normalised(image.numpy(), config)[::16, ::16]
        assert grid.shape == expected["grid"].shape
        # Both interpolate 8-bit pixels in float32; kresnet on the 0-255 scale, torchvision on 0-1.
        assert np.abs(grid - expected["grid"]).max() <= 1e-4


def test_pipeline_decoding_differs_from_pil_as_documented(photos):
    for path, _ in photos:
        pil = np.asarray(Image.open(path).convert("RGB")).astype(int)
        contents = tf.io.read_file(str(path))
        pipeline = tf.io.decode_image(contents, channels=3).numpy().astype(int)  # what make_dataset decodes with
        accurate = tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE").numpy().astype(int)
        np.testing.assert_array_equal(accurate, pil)
        difference = np.abs(pipeline - pil)
        assert 0 < difference.max() <= 20, difference.max()


def test_padding_normalises_to_zero_and_image_sizes_are_the_resized_ones(testdata, photos):
    config = reference_recipe()
    dataset = read_coco(testdata / "coco" / "instances.json", testdata / "coco" / "images")
    records = sorted(dataset.records, key=lambda record: pathlib.Path(record.image_path).name)
    batches = make_dataset(records, 1, SHORT_SIDE, MAX_SIDE, training=False, pad_value=config.model.pixel_mean)
    for batch, (_, expected) in zip(batches.as_numpy_iterator(), photos):
        height, width = batch["image_sizes"][0].astype(int)
        assert batch["images"].shape == (1, padded_size(MAX_SIDE), padded_size(MAX_SIDE), 3)  # difference 3
        assert (height, width)[1] == expected["size"][1]  # the long side; the short one may round (difference 2)
        normalised = _normalised(batch["images"][0], config)
        assert np.abs(normalised[height:]).max() <= 1e-6 and np.abs(normalised[:, width:]).max() <= 1e-6
