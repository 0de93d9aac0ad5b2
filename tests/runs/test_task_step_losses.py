"""Each task trains step for step as the committed reference says: losses, metrics and learning rates.

The reference (tests/fixtures/reference/task_histories.json) was written by this module on the
commit before the engine's task interface, one entry per backend, from the same commands a user
types (tiny sizes). A change to the engine, a task's wiring (schedule, optimizer, precision,
losses) or its data order shows up here as a different history.csv. After a deliberate change,
rewrite it with `KRESNET_WRITE_REFERENCE=1 KERAS_BACKEND=<b> pytest tests/runs/test_task_step_losses.py`
on each backend, and say why in the commit.
"""

import csv
import json
import os
import pathlib

import keras
import numpy as np
import pytest

REFERENCE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "reference" / "task_histories.json"

TASKS = {
    "classification": ["train", "demo", "--set", "data.synthetic_classes=4", "--set", "data.synthetic_per_class=8",
                       "--set", "data.synthetic_val_per_class=4", "--set", "data.synthetic_image_size=32",
                       "--set", "data.image_size=32", "--set", "data.eval_resize=32", "--set", "model.stage_widths=[8,8,16,16]",
                       "--set", "train.epochs=4", "--set", "train.batch_size=8", "--set", "train.steps_per_epoch=2",
                       "--set", "tricks.mixup_alpha=0.2", "--set", "tricks.mixup_off_epochs=1",
                       "--set", "schedule.warmup_epochs=1.0"],
    "detection": ["transfer", "detect", "demo_detect", "--set", "model.backbone_weights=''",
                  "--set", "data.synthetic_train_images=4", "--set", "data.synthetic_test_images=2",
                  "--set", "train.epochs=3", "--set", "train.steps_per_epoch=1", "--set", "train.batch_size=2",
                  "--set", "eval.batch_size=2", "--set", "schedule.warmup_epochs=0.5", "--set", "model.fpn_channels=16",
                  "--set", "model.head_dim=32", "--set", "model.rpn_pre_nms_topk_train=100",
                  "--set", "model.rpn_pre_nms_topk_test=100", "--set", "model.rpn_post_nms_topk_train=50",
                  "--set", "model.rpn_post_nms_topk_test=50", "--set", "model.roi_batch_size=32"],
    "segmentation": ["transfer", "segment", "demo_segment", "--set", "model.backbone_weights=''",
                     "--set", "data.synthetic_train_images=4", "--set", "data.synthetic_val_images=2",
                     "--set", "data.synthetic_image_size=32", "--set", "train.crop_size=32", "--set", "train.base_size=32",
                     "--set", "eval.size=32", "--set", "model.stage_widths=[8,8,16,16]", "--set", "train.epochs=3",
                     "--set", "train.steps_per_epoch=1", "--set", "train.batch_size=2", "--set", "schedule.warmup_epochs=1.0"],
}


def _history(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: [float(row[key]) for row in rows] for key in rows[0]}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_task_trains_as_the_reference(task, tmp_path, monkeypatch, run_cli):
    monkeypatch.setenv("KRESNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert run_cli([*TASKS[task], "--out", out]) == 0
    history = _history(out / "history.csv")
    backend = keras.backend.backend()
    if os.environ.get("KRESNET_WRITE_REFERENCE"):
        reference = json.loads(REFERENCE.read_text()) if REFERENCE.is_file() else {}
        reference.setdefault(backend, {})[task] = history
        REFERENCE.write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"wrote the {backend} {task} reference")
    expected = json.loads(REFERENCE.read_text())[backend][task]
    assert sorted(history) == sorted(expected)
    for key, values in expected.items():
        # float32 sums on another CPU may differ in the last bits; a wiring change moves these by far more.
        np.testing.assert_allclose(history[key], values, rtol=2e-4, atol=1e-6, err_msg=f"{task} history.csv: {key}")
