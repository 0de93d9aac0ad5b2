"""`kresnet transfer segment | evaluate | predict` end to end on a tiny synthetic recipe."""

import csv
import json
import re
import shutil

import keras
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from kresnet.errors import UserError
from kresnet.transfer.cli import app
from kresnet.transfer.segmentation.config import load_segmentation_recipe
from kresnet.transfer.segmentation.train import train_segmentation

TINY_RECIPE = """
task = "segmentation"
[model]
backbone = "resnet18"
stage_depths = [1, 1, 1, 1]
stage_widths = [8, 16, 32, 64]
[data]
source = "synthetic"
root = "{root}"
synthetic_classes = 2
synthetic_train_images = 8
synthetic_val_images = 3
synthetic_image_size = 32
[train]
epochs = 2
steps_per_epoch = 1
batch_size = 4
crop_size = 32
base_size = 32
[optimizer]
lr_per_256 = 0.5
[schedule]
warmup_epochs = 0.5
[eval]
size = 32
batch_size = 3  # one batch shape: one predict compilation
"""


@pytest.fixture()
def recipe(tmp_path):
    path = tmp_path / "tiny_segment.toml"
    path.write_text(TINY_RECIPE.format(root=(tmp_path / "scenes").as_posix()))
    return path


def _invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


class _Interrupted(Exception):
    pass


class _InterruptAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise _Interrupted()


def _history(run):
    with open(run / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_segment_resume_evaluate_and_predict(recipe, tmp_path):
    run = tmp_path / "run"
    # Interrupt the first run after epoch 1 of 2; the same command then resumes at epoch 2.
    with pytest.raises(_Interrupted):
        train_segmentation(load_segmentation_recipe(recipe), run, extra_callbacks=[_InterruptAfterFirstEpoch()])
    assert (run / "checkpoints").is_dir() and not (run / "model.weights.h5").exists()
    output = _invoke("segment", recipe, "--out", run)
    assert "Epoch 1/2" not in output and f"resuming {run} at epoch 2, step 0 of 1" in output
    for name in ("recipe.toml", "classes.json", "history.csv", "model.weights.h5", "metrics.json", "checkpoints",
                 "logs/train", "finished"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["pixel_accuracy"] <= 100.0 and metrics["images"] == 3  # percent, as the paper
    assert metrics["task"] == "segmentation" and metrics["steps"] == 2 and (run / "finished").is_file()
    assert f"mIoU {metrics['mean_iou']:.2f}%" in output
    assert set(metrics["class_iou"]) == {"background", "circle_solid", "square_solid"}
    assert (run / "history.csv").read_text().startswith("epoch,aux_logits_loss,learning_rate,logits_loss,loss")
    history = _history(run)
    assert [row["epoch"] for row in history] == ["1", "2"]
    # The optimizer's step counter came back with the checkpoint: poly decay (no warmup step here,
    # 0.5 epoch rounds to 0) reaches 0 after the 2nd step; a fresh counter would log lr(1) again.
    base_lr = 0.5 * 4 / 256
    np.testing.assert_allclose(float(history[0]["learning_rate"]), base_lr * 0.5**0.9, rtol=1e-5)
    np.testing.assert_allclose(float(history[1]["learning_rate"]), 0.0, atol=1e-9)

    assert "already complete" in _invoke("segment", recipe, "--out", run)
    # The checkpoint says the last epoch is done, so a rerun without metrics.json only evaluates again.
    (run / "metrics.json").unlink()
    _invoke("segment", recipe, "--out", run)
    assert len(_history(run)) == 2
    resumed = json.loads((run / "metrics.json").read_text())
    np.testing.assert_allclose(resumed["mean_iou"], metrics["mean_iou"], rtol=1e-6)
    with pytest.raises(UserError, match="started with train.seed = 0, now 5"):
        _invoke("segment", recipe, "--out", run, "--set", "train.seed=5")

    _invoke("evaluate", recipe, "--out", run)
    evaluated = json.loads((run / "eval_metrics.json").read_text())
    np.testing.assert_allclose(evaluated["mean_iou"], metrics["mean_iou"], rtol=1e-6)
    # The evaluation context (backend, precision, paper row) is the run's, from one place.
    context = ("backend", "precision", "paper_table", "paper_row", "expected_pixel_accuracy", "expected_mean_iou")
    assert {key: evaluated[key] for key in context} == {key: metrics[key] for key in context}

    # Predicting needs no dataset: classes.json in the run folder names the classes.
    assert json.loads((run / "classes.json").read_text()) == ["background", "circle_solid", "square_solid"]
    photo = tmp_path / "photo.png"
    shutil.copy(tmp_path / "scenes" / "images" / "scene_000008.png", photo)
    (tmp_path / "scenes").rename(tmp_path / "scenes_moved")
    _invoke("predict", recipe, photo, "--out", run, "--set", "eval.flip=true", "--set", "eval.scales=[0.75,1.0]")
    assert not (tmp_path / "scenes").exists()
    overlay = Image.open(run / "predictions" / "photo_overlay.png")
    mask = Image.open(run / "predictions" / "photo_mask.png")
    assert overlay.size == (32, 32) and overlay.mode == "RGB" and mask.mode == "P"
    assert np.asarray(mask).max() <= 2
    # The overlay blends each pixel half and half with the colour of its predicted class.
    colours = np.asarray(mask.getpalette()[: 3 * 3], np.float32).reshape(3, 3)[np.asarray(mask)]
    blended = np.round(0.5 * np.asarray(Image.open(photo).convert("RGB"), np.float32) + 0.5 * colours)
    np.testing.assert_allclose(np.asarray(overlay), blended, atol=1)

    # A model.weights.h5 cut short: one line naming it, and how the run's intact checkpoint writes it again.
    (tmp_path / "scenes_moved").rename(tmp_path / "scenes")
    weights = run / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:3000])
    with pytest.raises(UserError, match=rf"{re.escape(str(weights))}: not a readable \.weights\.h5 file .*"
                                         r"is intact: delete .* and rerun `kresnet transfer segment <its recipe> --out "):
        _invoke("evaluate", recipe, "--out", run)


def test_dispatch_refuses_other_tasks_and_missing_weights(recipe, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text('task = "classification"\n')
    with pytest.raises(UserError, match="expected task"):
        _invoke("evaluate", other)
    with pytest.raises(UserError, match="--weights .*not found"):
        _invoke("evaluate", recipe, "--out", tmp_path / "empty")
