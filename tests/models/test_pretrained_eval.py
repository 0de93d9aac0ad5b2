"""A tag's own eval transform (timm's): kresnet's pixels equal PIL's, and `evaluate --weights` reports the published number."""

import json
import pathlib
import shutil

import numpy as np
import pytest

from kresnet.models import presets
from tests.models.hub_cache import make_offline_hub

REFERENCE = pathlib.Path(__file__).parent / "eval_reference"  # made by eval_reference/make_reference.py


def _image_folder(root):
    for index, stem in enumerate(("landscape", "portrait")):
        (root / f"class{index}").mkdir(parents=True)
        shutil.copy(REFERENCE / f"{stem}.png", root / f"class{index}" / f"{stem}.png")
    return root


def test_eval_pixels_of_a_tag_equal_the_pil_reference_within_one_grey_level(tmp_path):
    from kresnet.data.pipeline import build_dataset

    preset = presets.preset_for("resnet50d", "gluon_in1k")
    dataset, _ = build_dataset(
        _image_folder(tmp_path / "val"), training=False, batch_size=2, one_hot=False, eval_preset=preset
    )
    images, labels = next(iter(dataset))
    # Undo the tag's normalisation (timm's mean/std on [0, 1] pixels) to compare grey levels.
    pixels = (images.numpy() * np.array(preset.std) + np.array(preset.mean)) * 255.0
    expected = np.load(REFERENCE / "resnet50d.gluon_in1k_eval_pixels.npz")
    assert pixels.shape == (2, 224, 224, 3) and list(labels.numpy()) == [0, 1]
    for index, stem in enumerate(("landscape", "portrait")):
        assert np.abs(pixels[index] - expected[stem]).max() <= 1.0 + 1e-3, stem


def test_evaluate_a_tag_records_the_published_number_beside_the_measured_one(testdata, tmp_path, monkeypatch, run_cli, capsys):
    make_offline_hub(tmp_path, monkeypatch, testdata / "reference")
    out = tmp_path / "metrics.json"
    argv = ["evaluate", "--weights", "resnet50d.gluon_in1k", "--data", _image_folder(tmp_path / "data" / "val").parent]
    assert run_cli([*argv, "--depths", "1,1,1,1", "--batch-size", "2", "--json", out]) == 0
    assert "published 79.08%" in capsys.readouterr().out
    metrics = json.loads(out.read_text())
    assert (metrics["published_top1"], metrics["published_top5"]) == (79.08, 94.458)
    assert (metrics["image_size"], metrics["resize"], metrics["interpolation"], metrics["images"]) == (224, 256, "bicubic", 2)
    assert 0.0 <= metrics["top1"] <= 100.0


@pytest.mark.parametrize("argv, message", [
    (["--weights", "gluon_in1k"], "give a full tag like resnet50d.gluon_in1k"),
    (["--weights", "resnet50d.gluon_in1k", "--image-size", "160"], "drop --image-size"),
])
def test_evaluate_a_bare_tag_without_model_or_with_ignored_options_is_a_one_line_error(tmp_path, run_cli, capsys, argv, message):
    assert run_cli(["evaluate", *argv, "--data", tmp_path]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and message in error and "\n" not in error
