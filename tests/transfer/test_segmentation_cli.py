"""`kresnet transfer segment | evaluate | predict` end to end on a tiny synthetic recipe."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from kresnet.errors import UserError
from transfer.cli import app

TINY_RECIPE = """
task = "segmentation"
[model]
backbone = "resnet18"
stage_depths = [1, 1, 1, 1]
stage_widths = [8, 16, 32, 64]
[data]
format = "synthetic"
root = "{root}"
synthetic_classes = 2
synthetic_train_images = 8
synthetic_val_images = 3
synthetic_image_size = 32
[train]
epochs = 1
steps_per_epoch = 2
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


def test_segment_resume_evaluate_and_predict(recipe, tmp_path):
    run = tmp_path / "run"
    _invoke("segment", recipe, "--out", run)
    for name in ("recipe.toml", "history.csv", "model.weights.h5", "metrics.json", "checkpoints"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["pixel_accuracy"] <= 1.0 and metrics["num_images"] == 3
    assert set(metrics["class_iou"]) == {"background", "circle_solid", "square_solid"}
    history = (run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,aux_logits_loss,learning_rate,logits_loss,loss") and len(history) == 2

    assert "already complete" in _invoke("segment", recipe, "--out", run)
    # Resume: the checkpoint says the last epoch is done, so a rerun only evaluates again.
    (run / "metrics.json").unlink()
    _invoke("segment", recipe, "--out", run)
    assert len((run / "history.csv").read_text().splitlines()) == 2
    resumed = json.loads((run / "metrics.json").read_text())
    np.testing.assert_allclose(resumed["mean_iou"], metrics["mean_iou"], rtol=1e-6)
    with pytest.raises(UserError, match="different recipe"):
        _invoke("segment", recipe, "--out", run, "--set", "train.epochs=2")

    _invoke("evaluate", recipe, "--out", run)
    evaluated = json.loads((run / "eval_metrics.json").read_text())
    np.testing.assert_allclose(evaluated["mean_iou"], metrics["mean_iou"], rtol=1e-6)

    images = tmp_path / "scenes" / "images"
    _invoke("predict", recipe, images / "scene_000008.png", "--out", run, "--set", "eval.flip=true")
    overlay = Image.open(run / "predictions" / "scene_000008_overlay.png")
    mask = Image.open(run / "predictions" / "scene_000008_mask.png")
    assert overlay.size == (32, 32) and overlay.mode == "RGB" and mask.mode == "P"
    assert np.asarray(mask).max() <= 2


def test_dispatch_refuses_other_tasks_and_missing_weights(recipe, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text('task = "classification"\n')
    with pytest.raises(UserError, match="expected task"):
        _invoke("evaluate", other)
    with pytest.raises(UserError, match="--weights .*not found"):
        _invoke("evaluate", recipe, "--out", tmp_path / "empty")
