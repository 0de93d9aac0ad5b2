"""Eval pixels equal timm's: each decoding fixture through the eval input of `kresnet evaluate`, within one grey level.

The reference (tests/fixtures/decode/timm_eval_pixels.{npz,json}) is timm's `resolve_data_config` +
`create_transform` of three tags (bicubic and bilinear, crop_pct 0.875 and 0.95) on files that PIL
opened as timm's datasets do, made by `tools/make_timm_reference.py --only eval-pixels`. The files:
baseline and progressive JPEGs with 4:4:4, 4:2:2 and 4:2:0 chroma, greyscale and CMYK JPEGs, odd and
tiny sizes, two real photos, a PNG with alpha and a palette GIF. TensorFlow's default JPEG decoder
misses this by up to 20 grey levels on the photos, so the test fails if the eval path stops decoding
as PIL does.
"""

import dataclasses
import json
import os
import pathlib

import numpy as np
import tensorflow as tf

from kresnet.data import augment
from kresnet.data.pipeline import build_dataset
from kresnet.models import presets

REFERENCE = "decode/timm_eval_pixels"


def _cases(testdata):
    meta = json.loads((testdata / f"{REFERENCE}.json").read_text())
    pixels = np.load(testdata / f"{REFERENCE}.npz")
    return [{**case, "pixels": pixels[case["key"]]} for case in meta["cases"]]


def _preset_of(case):
    """kresnet's preset of the case's timm name, at the case's input size; its transform must be timm's."""
    preset = presets.find_preset(case["timm_model"])
    config = case["config"]
    assert (preset.interpolation, preset.crop_pct) == (config["interpolation"], config["crop_pct"])
    assert np.allclose(preset.mean, config["mean"]) and np.allclose(preset.std, config["std"])
    size = config["input_size"][1]
    if case["stride"] == 1:
        return dataclasses.replace(preset, eval_size=size)
    assert size == preset.eval_size, "a full-size case is at the tag's own size"
    return preset


def _eval_pixels(files, preset, folder):
    """The eval batch that `kresnet evaluate --weights TAG` builds from these files, as grey levels."""
    (folder / "class0").mkdir(parents=True)
    for index, path in enumerate(files):
        os.symlink(path, folder / "class0" / f"{index:02d}{path.suffix}")
    dataset, info = build_dataset(folder, training=False, batch_size=len(files), one_hot=False, eval_preset=preset)
    (images, _), = list(dataset)
    assert info.skipped.count == 0
    # Undo the tag's normalisation (mean/std on [0, 1] pixels).
    return (images.numpy() * np.array(preset.std) + np.array(preset.mean)) * 255.0


def test_eval_pixels_equal_timms_within_one_grey_level_on_every_fixture(testdata, tmp_path):
    cases = _cases(testdata)
    groups = {}
    for case in cases:
        groups.setdefault((case["timm_model"], case["config"]["input_size"][1]), []).append(case)
    checked = set()
    for index, ((model, size), group) in enumerate(sorted(groups.items())):
        preset = _preset_of(group[0])
        pixels = _eval_pixels([testdata / case["file"] for case in group], preset, tmp_path / str(index))
        for case, ours in zip(group, pixels):
            stride = case["stride"]
            difference = np.abs(ours[::stride, ::stride] - case["pixels"])
            assert difference.max() <= 1.0 + 1e-3, f"{case['file']} with {model} at {size} px: {difference.max():.2f} grey levels"
            checked.add(case["file"])
    assert len(checked) == 13 and {pathlib.Path(name).suffix.lower() for name in checked} == {".jpg", ".jpeg", ".png", ".gif"}


def test_the_reference_tells_tensorflows_default_jpeg_decoder_apart(testdata):
    # The same geometry on TensorFlow's default (fast DCT) decode of a real photo misses timm's pixels.
    case = next(c for c in _cases(testdata) if c["file"].startswith("coco/") and c["stride"] > 1)
    image = tf.io.decode_image((testdata / case["file"]).read_bytes(), channels=3)
    preset = _preset_of(case)
    pixels = augment.published_eval_pixels(image, preset.eval_size, preset.resize_size, preset.interpolation).numpy()
    stride = case["stride"]
    assert np.abs(pixels[::stride, ::stride] - case["pixels"]).max() > 4
