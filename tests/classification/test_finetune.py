"""`kresnet train finetune`: a user's photo folder, the paper's weights from an (offline) Hub cache, a new head."""

import json
import shutil

import keras
import numpy as np
import pytest

import kresnet
from tests.models.hub_cache import make_offline_hub

PHOTOS = {  # class -> (train photos, val photos) from tests/fixtures/imagenet/samples (real JPEGs, greyscale and CMYK too)
    "fish": (["n01440764/n01440764_0.JPEG", "n01443537/n01443537_1.JPEG", "n01860187/n01860187_2.JPEG"],
             ["n03804744/n03804744_8_grey.JPEG"]),
    "dog": (["n02077923/n02077923_3.JPEG", "n02110185/n02110185_4.JPEG", "n02165105/n02165105_5.JPEG"],
            ["n07747607/n07747607_9_cmyk.JPEG"]),
}
# The reference Hub files are one block per stage (their widths come from the files); CPU-sized crops and epochs.
TINY = ["model.stage_depths=[1,1,1,1]", "data.image_size=32", "train.epochs=2", "train.batch_size=2",
        "schedule.warmup_epochs=0.5", "train.precision=float32"]


def _photo_folder(root, samples):
    for name, splits in PHOTOS.items():
        for split, files in zip(("train", "val"), splits):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for file in files:
                shutil.copy(samples / file, root / split / name)
    (root / "train" / "dog" / "notes.jpg").write_text("not an image")  # skipped and counted, not fatal
    return root


@pytest.fixture
def photos(tmp_path, testdata, monkeypatch):
    make_offline_hub(tmp_path, monkeypatch, testdata / "reference")
    monkeypatch.chdir(tmp_path)
    return _photo_folder(tmp_path / "photos", testdata / "imagenet" / "samples")


def _sets(overrides):
    return [arg for key in overrides for arg in ("--set", key)]


def test_finetune_starts_from_the_tag_with_a_new_head_sized_to_the_folders(photos, run_cli, capsys, testdata, tmp_path):
    out = tmp_path / "runs" / "frozen"
    argv = ["train", "finetune", *_sets([f"data.root={photos}", *TINY, "model.freeze_stages=4", "model.freeze_bn=true"])]
    assert run_cli([*argv, "--out", out]) == 0
    printed = capsys.readouterr()
    assert "resnet50d fine-tuned from gluon_in1k (stem + stages 1-4 frozen, BatchNorm frozen)" in printed.out + printed.err
    assert "the 2-class head is fresh" in printed.err
    assert json.loads((out / "classes.json").read_text()) == ["dog", "fish"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["skipped_images"]["train"] == 1 and 0 <= metrics["top1"] <= 100
    # With everything but the head frozen, the trained backbone is the tag's, number for number.
    trained = kresnet.create_model("resnet50d", num_classes=2, stage_depths=[1, 1, 1, 1], stage_widths=[8, 16, 24, 32])
    trained.load_weights(out / "model.weights.h5")
    tag = kresnet.create_model("resnet50d", weights="gluon_in1k", stage_depths=[1, 1, 1, 1])
    images = np.load(testdata / "reference" / "input_96_nhwc.npy")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(trained.backbone(images, training=False)),
                               keras.ops.convert_to_numpy(tag.backbone(images, training=False)), atol=1e-5)
    # `kresnet predict` on the run: its class folder names, read with the transform it validated with (the tag's).
    capsys.readouterr()
    assert run_cli(["predict", out, photos / "val" / "dog", photos / "val" / "fish", "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert len(predicted["predictions"]) == 2 and predicted["transform"]["interpolation"] == "bicubic"
    assert all({entry["class"] for entry in item["top"]} == {"dog", "fish"} for item in predicted["predictions"])


def test_finetune_trains_the_whole_network_and_a_run_folder_is_a_starting_point(photos, run_cli, capsys, tmp_path):
    first = tmp_path / "runs" / "first"
    assert run_cli(["train", "finetune", *_sets([f"data.root={photos}", *TINY]), "--out", first]) == 0
    tag = kresnet.create_model("resnet50d", weights="gluon_in1k", stage_depths=[1, 1, 1, 1])
    trained = kresnet.create_model("resnet50d", num_classes=2, stage_depths=[1, 1, 1, 1], stage_widths=[8, 16, 24, 32])
    trained.load_weights(first / "model.weights.h5")
    moved = [not np.allclose(a, b) for a, b in zip(tag.backbone.get_weights(), trained.backbone.get_weights())]
    assert any(moved)  # the backbone trained
    # The run folder starts the next run: same classes, so the head loads too (no fresh head).
    second = tmp_path / "runs" / "second"
    sets = [f"data.root={photos}", *TINY, f"model.weights={first}", "data.eval_transform=recipe", "data.eval_resize=36",
            "model.stage_widths=[8,16,24,32]"]
    capsys.readouterr()
    assert run_cli(["train", "finetune", *_sets(sets), "--out", second]) == 0
    assert "head is fresh" not in capsys.readouterr().err
    # As many classes, but other ones: the old head would start each new class from an old one, so it is fresh.
    for split in ("train", "val"):
        (photos / split / "fish").rename(photos / split / "bird")
        (photos / split / "dog").rename(photos / split / "cat")
    third = tmp_path / "runs" / "third"
    assert run_cli(["train", "finetune", *_sets(sets), "--out", third]) == 0
    assert (f"{first}: loaded the backbone only; the 2-class head is fresh (the run trained on other classes: dog, fish)"
            in capsys.readouterr().err)
    assert json.loads((third / "classes.json").read_text()) == ["bird", "cat"]


@pytest.mark.parametrize("problem, sets, message", [
    ("one class", ["model.freeze_stages=0"], "1 class folder; a classifier needs at least 2 classes"),
    ("freezing without weights", ["model.weights=''", "data.eval_transform=recipe", "model.freeze_stages=2"],
     "model.freeze_stages / model.freeze_bn: freezing needs model.weights"),
    ("a tag of another layout", ["model.weights=resnet50.gluon_in1k"], "model.weights='resnet50.gluon_in1k'"),
    ("a detection run", ["model.weights=RUN"], "a detection run (written by `kresnet transfer detect`)"),
])
def test_bad_input_is_one_line(problem, sets, message, photos, run_cli, capsys, tmp_path):
    if problem == "one class":
        shutil.rmtree(photos / "train" / "fish")
    run = tmp_path / "detection_run"
    run.mkdir()
    (run / "recipe.toml").write_text('task = "detection"\n')
    sets = [s.replace("RUN", str(run)) for s in sets]
    assert run_cli(["train", "finetune", *_sets([f"data.root={photos}", *TINY, *sets]), "--out", tmp_path / "r"]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error
