"""A training process killed with SIGKILL mid-epoch resumes from its last checkpoint: nothing lost, nothing repeated."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import pytest

EPOCHS = 4
STEPS_PER_EPOCH = 4  # 32 images / batch 8
TINY = [
    "model.stage_depths=[1,1,1,1]", "model.stage_widths=[8,8,16,16]", "model.num_classes=4",
    "data.synthetic_classes=4", "data.synthetic_per_class=8", "data.synthetic_val_per_class=2",
    "data.synthetic_image_size=32", "data.image_size=32", "data.eval_resize=32",
    f"train.epochs={EPOCHS}", "train.batch_size=8", "train.checkpoint_every_steps=1",
    "schedule.warmup_epochs=1", "tricks.mixup_off_epochs=1",
]


def _command(run_dir):
    sets = [arg for item in TINY for arg in ("--set", item)]
    return [sys.executable, "-m", "kresnet.cli", "train", "demo", "--out", str(run_dir), *sets]


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_sigkilled_run_resumes_from_its_last_checkpoint(tmp_path):
    env = {**os.environ, "KRESNET_CACHE": str(tmp_path / "cache"), "KERAS_BACKEND": keras.config.backend()}
    run_dir = tmp_path / "run"
    state_file = run_dir / "checkpoints" / "state.json"
    process = subprocess.Popen(_command(run_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    # Kill at the first checkpoint inside the second epoch: one epoch is in history.csv, most steps are to go.
    while not state_file.exists() or json.loads(state_file.read_text() or "{}").get("epoch", 0) < 1:
        assert process.poll() is None, f"training ended before any checkpoint: {process.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = json.loads(state_file.read_text())
    assert killed_at["epoch"] >= 1 and killed_at["iterations"] < EPOCHS * STEPS_PER_EPOCH
    assert not (run_dir / "metrics.json").exists()

    resumed = subprocess.run(_command(run_dir), env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    epoch, step = killed_at["epoch"], killed_at["step"]
    assert f"resuming {run_dir} at epoch {epoch + 1}, step {step} of {STEPS_PER_EPOCH}" in resumed.stdout + resumed.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["steps"] == EPOCHS * STEPS_PER_EPOCH  # nothing repeated, nothing skipped
    with open(run_dir / "history.csv") as f:
        # A restart from scratch would append the finished epochs a second time.
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(range(1, EPOCHS + 1))
