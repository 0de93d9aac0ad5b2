"""kresnet's detection input against torchvision's `GeneralizedRCNNTransform(800, 1333)`, on two COCO photos.

The same: JPEG decoding (PIL's accurate integer DCT, `kresnet.data.decode.decode_rgb`), the scale
min(800 / short side, 1333 / long side), bilinear resizing with half-pixel centres and no antialiasing,
normalisation by the recipe's `pixel_mean` / `pixel_std` (torchvision's in the bundled recipe), padding at the
bottom and right that normalises to 0. The differences, measured here:

1. Size rounding. kresnet rounds each scaled side, torchvision floors it: 640x360 becomes 1333x750 here,
   1333x749 there (640x427 gives 1199x800 in both, and then the same tensor within 1e-4).
2. Padding. kresnet pads every image to one static square, `padded_size(max_side)` = 1344; torchvision pads
   a batch to the next multiple of 32 (800x1216, 768x1344). Inside the image the tensors agree, but
   features near its bottom and right edges see different surroundings.
"""

import pathlib

import numpy as np
import pytest

from kresnet.transfer.detection.coco import read_coco
from kresnet.transfer.detection.pipeline import make_dataset, padded_size
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


def test_pipeline_input_equals_torchvisions_where_the_sizes_agree(testdata, photos):
    config = reference_recipe()
    dataset = read_coco(testdata / "coco" / "instances.json", testdata / "coco" / "images")
    records = sorted(dataset.records, key=lambda record: pathlib.Path(record.image_path).name)
    batches = make_dataset(records, 1, SHORT_SIDE, MAX_SIDE, training=False, pad_value=config.model.pixel_mean)
    compared = 0
    for batch, record, (_, expected) in zip(batches.as_numpy_iterator(), records, photos):
        assert tuple(expected["size"][2:]) == (record.height, record.width)
        ours = tuple(int(side) for side in batch["image_sizes"][0])
        theirs = tuple(int(side) for side in expected["size"][:2])
        assert batch["images"].shape == (1, padded_size(MAX_SIDE), padded_size(MAX_SIDE), 3)  # difference 2
        normalised = _normalised(batch["images"][0], config)
        height, width = ours
        assert np.abs(normalised[height:]).max() <= 1e-6 and np.abs(normalised[:, width:]).max() <= 1e-6
        if ours != theirs:  # difference 1: kresnet rounds 749.8 up, torchvision floors it
            scale = min(SHORT_SIDE / min(record.height, record.width), MAX_SIDE / max(record.height, record.width))
            assert ours == (round(record.height * scale), round(record.width * scale))
            assert theirs == (int(record.height * scale), int(record.width * scale))
            continue
        grid = normalised[:height:16, :width:16]
        assert grid.shape == expected["grid"].shape
        # Both interpolate 8-bit pixels in float32; kresnet on the 0-255 scale, torchvision on 0-1.
        assert np.abs(grid - expected["grid"]).max() <= 1e-4
        compared += 1
    assert compared == 1
