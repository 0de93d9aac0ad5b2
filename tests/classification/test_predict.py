"""`kresnet predict` as a user types it: a run folder trained on photo folders, a pretrained tag from an offline
Hub cache, a weights file; JPEG and PNG; probabilities equal to the `evaluate` pipeline's; one-line errors."""

import json
import shutil

import keras
import numpy as np
import pytest

import kresnet
from kresnet.runs.folder import CLASSES
from tests.models.hub_cache import IMAGENET_STAND_IN, add_imagenet_stand_in, make_offline_hub

CLASS_NAMES = ["apple", "banana"]
# A training run's own settings beside the demo recipe's (one narrow block per stage, 32 px crops of 37).
TINY_RUN = ["model.num_classes=2", "model.stage_widths=[8, 8, 16, 16]", "train.epochs=1", "train.batch_size=4", "schedule.warmup_epochs=0"]


def _photo_folders(root, testdata):
    """root/{train,val}/{apple,banana}/ of the sample JPEGs (odd sizes, a greyscale and a CMYK one)."""
    jpegs = sorted((testdata / "imagenet" / "samples").rglob("*.JPEG"))
    for split, files in (("train", jpegs[:8]), ("val", jpegs[8:])):
        for index, source in enumerate(files):
            target = root / split / CLASS_NAMES[index % 2] / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    return root


def _softmax(logits):
    logits = np.asarray(logits, np.float64)
    exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def _evaluate_pipeline_probabilities(model, files, folder, **eval_settings):
    """Probabilities of `files` read by the pipeline `kresnet evaluate` maps (one class folder holding copies)."""
    from kresnet.data.pipeline import build_dataset

    for index, source in enumerate(files):
        (folder / "any").mkdir(parents=True, exist_ok=True)
        shutil.copy(source, folder / "any" / f"{index:02d}{source.suffix}")
    dataset, _ = build_dataset(folder, training=False, batch_size=len(files), one_hot=False, **eval_settings)
    images, _ = next(iter(dataset))
    return _softmax(keras.ops.convert_to_numpy(model(images.numpy(), training=False)))


def _predict_json(run_cli, capsys, argv):
    capsys.readouterr()
    assert run_cli(["predict", *argv, "--json"]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def test_a_run_trained_on_photo_folders_predicts_its_folder_names(testdata, tmp_path, run_cli, capsys):
    root = _photo_folders(tmp_path / "photos", testdata)
    run = tmp_path / "run"
    jit = ["train.jit_compile=off"] if keras.backend.backend() == "tensorflow" else []
    overrides = [f"data.root={root}", "data.source=imagenet", *TINY_RUN, *jit]
    assert run_cli(["train", "demo", *[arg for key in overrides for arg in ("--set", key)], "--out", run]) == 0
    assert json.loads((run / CLASSES).read_text()) == CLASS_NAMES

    jpegs = sorted((root / "val").rglob("*.JPEG"))
    png = testdata / "seg-custom" / "gts" / "00000_gt.png"  # a palette PNG
    broken = tmp_path / "notes.jpg"
    broken.write_text("not an image")
    result, err = _predict_json(run_cli, capsys, [run, *jpegs, png, broken, "--top-k", "5"])
    assert [item["image"] for item in result["predictions"]] == [str(p) for p in (*jpegs, png)]
    assert result["skipped"] == [{"image": str(broken), "reason": result["skipped"][0]["reason"]}]
    assert "not an image" in result["skipped"][0]["reason"] and f"skipped {broken}: not an image" in err
    assert result["transform"]["eval_size"] == 32 and result["transform"]["resize_size"] == 37  # the demo recipe's
    for item in result["predictions"]:
        assert len(item["top"]) == 2 and {entry["class"] for entry in item["top"]} == set(CLASS_NAMES)
        assert item["top"][0]["probability"] >= item["top"][1]["probability"]

    # The probabilities are the model's on the pixels `kresnet evaluate` reads, whichever the format.
    model = kresnet.create_model("resnet18d", num_classes=2, stage_depths=[1, 1, 1, 1], stage_widths=[8, 8, 16, 16])
    model.load_weights(run / "model.weights.h5")
    expected = _evaluate_pipeline_probabilities(model, [*jpegs, png], tmp_path / "eval", image_size=32, resize_size=37)
    for item, row in zip(result["predictions"], expected):
        for entry in item["top"]:
            assert entry["probability"] == pytest.approx(row[CLASS_NAMES.index(entry["class"])], abs=1e-5)

    capsys.readouterr()
    assert run_cli(["predict", run, jpegs[0], broken]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{run}: resnet18d, 2 classes; shorter side 37") and lines[1] == str(jpegs[0])
    assert lines[2].split()[1:] in (["apple", "(0)"], ["banana", "(1)"]) and lines[2].split()[0].endswith("%")
    assert lines[-1] == "1 images predicted, 1 skipped (not images)"


def test_a_tag_predicts_imagenet_names_with_its_own_eval_transform(testdata, tmp_path, monkeypatch, run_cli, capsys):
    hub = make_offline_hub(tmp_path, monkeypatch, testdata / "reference")
    add_imagenet_stand_in(hub, testdata / "reference")
    tag = IMAGENET_STAND_IN.removeprefix("timm/")
    jpeg = testdata / "imagenet" / "samples" / "n01440764" / "n01440764_0.JPEG"
    png = testdata / "ade20k" / "annotations" / "ADE_val_00000002.png"  # a greyscale PNG
    result, _ = _predict_json(run_cli, capsys, [tag, jpeg, png, "--depths", "1,1,1,1", "--top-k", "3"])
    from kresnet.models import presets

    preset = presets.find_preset(tag)
    assert result["transform"] == {"eval_size": 160, "resize_size": 168, "interpolation": "bicubic",
                                   "mean": list(preset.mean), "std": list(preset.std)}
    import keras_hub

    imagenet = [keras_hub.utils.imagenet_id_to_name(index) for index in range(1000)]
    model = kresnet.create_model("resnet50d", weights=tag, stage_depths=[1, 1, 1, 1])
    expected = _evaluate_pipeline_probabilities(model, [jpeg, png], tmp_path / "eval", image_size=160, eval_preset=preset)
    for item, row in zip(result["predictions"], expected):
        assert [entry["index"] for entry in item["top"]] == list(np.argsort(-row)[:3])
        for entry in item["top"]:
            assert entry["class"] == imagenet[entry["index"]]
            assert entry["probability"] == pytest.approx(row[entry["index"]], abs=1e-5)

    # The Python side: the same model, transform and names in one call.
    loaded, transform, class_names = kresnet.load_for_inference(tag, stage_depths=[1, 1, 1, 1])
    assert class_names == imagenet and transform == kresnet.EvalTransform.of_preset(preset)
    from PIL import Image

    pixels = transform(png)
    np.testing.assert_allclose(transform(Image.open(png)), pixels, atol=1e-6)  # a PNG decodes alike in PIL
    probabilities = _softmax(keras.ops.convert_to_numpy(loaded(pixels[None], training=False)))[0]
    np.testing.assert_allclose(probabilities, expected[1], atol=1e-5)


def test_a_weights_file_with_its_model_name(tmp_path, testdata, run_cli, capsys):
    model = kresnet.create_model("resnet18d", num_classes=3, stage_depths=[1, 1, 1, 1], stage_widths=[8, 8, 16, 16])
    model.save(tmp_path / "model.keras")
    jpeg = testdata / "imagenet" / "samples" / "n01443537" / "n01443537_1.JPEG"
    result, _ = _predict_json(run_cli, capsys, [tmp_path / "model.keras", jpeg, "--model", "resnet18d"])
    assert {entry["class"] for entry in result["predictions"][0]["top"]} == {"class 0", "class 1", "class 2"}
    assert result["transform"]["eval_size"] == 224 and result["transform"]["interpolation"] is None  # the paper's


def _error(run_cli, capsys, argv, lines_before=0):
    """The one `error:` line of a failed `predict`, after `lines_before` other lines (skipped files)."""
    capsys.readouterr()
    assert run_cli(["predict", *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == lines_before + 1 and lines[-1].startswith("error:"), lines
    return lines[-1]


def test_bad_input_is_one_line(testdata, tmp_path, run_cli, capsys):
    from kresnet.bundled_recipes import BUNDLED_RECIPES

    jpeg = testdata / "imagenet" / "samples" / "n01443537" / "n01443537_1.JPEG"
    for task, recipe in (("detection", "demo_detect"), ("segmentation", "demo_segment")):
        run = tmp_path / task
        run.mkdir()
        shutil.copy(BUNDLED_RECIPES / "transfer" / f"{recipe}.toml", run / "recipe.toml")
        assert f"a {task} run (written by `kresnet transfer" in _error(run_cli, capsys, [run, jpeg])
    assert "missing.jpg: image or folder not found" in _error(run_cli, capsys, ["resnet50d.gluon_in1k", tmp_path / "missing.jpg"])
    assert "no such file or folder" in _error(run_cli, capsys, [tmp_path / "gone" / "model.weights.h5", jpeg])
    assert "is a tag, not a full name; give one of: resnet18.gluon_in1k" in _error(run_cli, capsys, ["gluon_in1k", jpeg])
    keras_file = tmp_path / "model.keras"
    kresnet.create_model("resnet18d", num_classes=3, stage_depths=[1, 1, 1, 1], stage_widths=[8, 8, 16, 16]).save(keras_file)
    assert "add --model NAME" in _error(run_cli, capsys, [keras_file, jpeg])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert "none of the 1 files could be read" in _error(run_cli, capsys, [keras_file, broken, "--model", "resnet18d"], lines_before=1)
    (tmp_path / "empty").mkdir()
    assert "no images" in _error(run_cli, capsys, [keras_file, tmp_path / "empty", "--model", "resnet18d"])
