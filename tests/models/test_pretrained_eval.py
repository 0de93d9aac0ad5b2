"""A tag's own eval transform (timm's): `evaluate --weights` reports the published number beside the measured one.

That its pixels equal timm's is tests/data/test_eval_pixels.py.
"""

import json
import shutil

import pytest

from tests.models.hub_cache import make_offline_hub


def _image_folder(testdata, root):
    for index, name in enumerate(("progressive_420_257x333.jpg", "cmyk_211x173.jpg")):
        (root / f"class{index}").mkdir(parents=True)
        shutil.copy(testdata / "decode" / name, root / f"class{index}" / name)
    return root


@pytest.mark.parametrize("name, model, published", [
    ("resnet50d.gluon_in1k", "resnet50d", (79.08, 94.458)),
    ("resnet50.gluon_in1k", "resnet50b", (77.58, 93.704)),  # timm's name: kresnet's resnet50b.gluon_in1k
])
def test_evaluate_a_tag_records_the_published_number_beside_the_measured_one(
    testdata, tmp_path, monkeypatch, run_cli, capsys, name, model, published
):
    make_offline_hub(tmp_path, monkeypatch, testdata / "reference")
    out = tmp_path / "metrics.json"
    argv = ["evaluate", "--weights", name, "--data", _image_folder(testdata, tmp_path / "data" / "val").parent]
    assert run_cli([*argv, "--depths", "1,1,1,1", "--batch-size", "2", "--json", out]) == 0
    assert f"published {published[0]}%" in capsys.readouterr().out
    metrics = json.loads(out.read_text())
    assert (metrics["published_top1"], metrics["published_top5"]) == published and metrics["model"] == model
    assert (metrics["image_size"], metrics["resize"], metrics["interpolation"], metrics["images"]) == (224, 256, "bicubic", 2)
    assert 0.0 <= metrics["top1"] <= 100.0


@pytest.mark.parametrize("argv, message", [
    (["--weights", "gluon_in1k"], "'gluon_in1k' is a tag, not a full name; give one of: resnet18.gluon_in1k"),
    (["--weights", "resnet50.tv_in1"], "close matches: resnet50.tv_in1k"),
    (["--weights", "resnet50d.gluon_in1k", "--image-size", "160"], "drop --image-size"),
])
def test_evaluate_a_bare_tag_without_model_or_with_ignored_options_is_a_one_line_error(tmp_path, run_cli, capsys, argv, message):
    assert run_cli(["evaluate", *argv, "--data", tmp_path]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and message in error and "\n" not in error
