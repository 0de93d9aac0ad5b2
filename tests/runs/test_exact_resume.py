"""A run killed with SIGKILL and resumed with the same command ends bit for bit as a run never killed.

Each task trains three times from the same command a user types (tiny sizes, passes over the
data not aligned with epochs): once unkilled; once killed inside its second epoch with step
checkpoints (it resumes mid-epoch: the rest of that epoch's data and its running loss); once
killed as it saves the end of its second epoch without step checkpoints (its history row is
written, the checkpoint is not: it redoes the epoch). Each killed run is then started again
with the same command. The final model.weights.h5 (every array) and history.csv (every byte)
must equal the unkilled run's.
"""

import csv
import json
import os
import pathlib
import signal
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")]

FAIL_ONCE = pathlib.Path(__file__).with_name("fail_once.py")
STEPS_PER_EPOCH = 3
# The checkpoint after step 6, the end of epoch 2: the run dies as it starts writing it.
KILLED_AT = "state-000000006.weights.h5"

TASKS = {
    # 32 images, batch 8, 3 steps per epoch: epochs start mid-pass. Mixup for epochs 1-2, none in 3.
    "classification": ["train", "demo", "--set", "data.synthetic_classes=4", "--set", "data.synthetic_per_class=8",
                       "--set", "data.synthetic_val_per_class=2", "--set", "data.synthetic_image_size=32",
                       "--set", "data.image_size=32", "--set", "data.eval_resize=32",
                       "--set", "model.stage_depths=[1,1,1,1]", "--set", "model.stage_widths=[8,8,16,16]",
                       "--set", "train.epochs=3", "--set", "train.batch_size=8", "--set", "train.steps_per_epoch=3",
                       "--set", "tricks.mixup_alpha=0.2", "--set", "tricks.mixup_off_epochs=1",
                       "--set", "schedule.warmup_epochs=1.0"],
    # 4 images, batch 2, 3 steps per epoch: random scales, crops and flips per element.
    "segmentation": ["transfer", "segment", "demo_segment", "--set", "model.backbone_weights=''",
                     "--set", "data.synthetic_train_images=4", "--set", "data.synthetic_val_images=2",
                     "--set", "data.synthetic_image_size=32", "--set", "train.crop_size=32", "--set", "train.base_size=32",
                     "--set", "eval.size=32", "--set", "model.stage_depths=[1,1,1,1]",
                     "--set", "model.stage_widths=[8,8,16,16]", "--set", "train.epochs=3",
                     "--set", "train.steps_per_epoch=3", "--set", "train.batch_size=2",
                     "--set", "schedule.warmup_epochs=1.0"],
}


def _start(arguments, out, env, kill_marker=None, every_steps=0):
    command = [*arguments, "--set", f"train.checkpoint_every_steps={every_steps}", "--out", str(out)]
    if kill_marker is None:
        command = [sys.executable, "-m", "kresnet.cli", *command]
    else:
        command = [sys.executable, str(FAIL_ONCE), str(kill_marker), KILLED_AT, "kill", *command]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), command


def _finish(process, timeout=1500):
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def _weights(path):
    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: arrays.update({name: item[()]}) if isinstance(item, h5py.Dataset) else None)
    return arrays


def _assert_same_run(run, reference):
    ours, theirs = _weights(run / "model.weights.h5"), _weights(reference / "model.weights.h5")
    assert sorted(ours) == sorted(theirs)
    for name, value in theirs.items():
        # Bit for bit: the raw bytes, so that even a NaN or a -0.0 must match.
        assert ours[name].tobytes() == value.tobytes(), f"{run}: {name} differs from the unkilled run"
    assert (run / "history.csv").read_bytes() == (reference / "history.csv").read_bytes(), (
        f"{run}/history.csv:\n{(run / 'history.csv').read_text()}\nunkilled:\n{(reference / 'history.csv').read_text()}")


@pytest.mark.parametrize("task", sorted(TASKS))
def test_a_killed_and_resumed_run_ends_as_an_unkilled_one(task, tmp_path):
    env = {**os.environ, "KRESNET_CACHE": str(tmp_path / "cache"), "KERAS_BACKEND": keras.config.backend()}
    subprocess.run([sys.executable, "-m", "kresnet.cli", "--help"], env=env, capture_output=True, check=True)
    arguments = TASKS[task]
    # Mid-epoch: checkpoints every 2 steps, so the last one before the kill is epoch 2, step 2 (step 5 of the run).
    # Epoch boundary: only epoch-end checkpoints, so the last one is the end of epoch 1; epoch 2's row is written.
    kills = {"mid_epoch": (2, (1, 2)), "epoch_boundary": (0, (1, 0))}
    unkilled, _ = _start(arguments, tmp_path / "unkilled", env)
    first = {name: _start(arguments, tmp_path / name, env, tmp_path / f"{name}.killed", every)
             for name, (every, _) in kills.items()}
    code, output = _finish(unkilled)
    assert code == 0, output[-3000:]
    resumed = {}
    for name, (process, command) in first.items():
        code, output = _finish(process)
        assert code == -signal.SIGKILL, f"{name}: not killed at {KILLED_AT} (exit {code}): {output[-3000:]}"
        state = json.loads((tmp_path / name / "checkpoints" / "state.json").read_text())
        assert (state["epoch"], state["step"]) == kills[name][1]
        if name == "epoch_boundary":  # killed after epoch 2's history row, before its checkpoint
            with open(tmp_path / name / "history.csv") as f:
                assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2"]
        # The same command again: the kill marker exists, so it runs to the end.
        resumed[name] = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for name, process in resumed.items():
        code, output = _finish(process)
        assert code == 0, f"{name}: {output[-3000:]}"
        epoch, step = kills[name][1]
        assert f"resuming {tmp_path / name} at epoch {epoch + 1}, step {step} of {STEPS_PER_EPOCH}" in output
        _assert_same_run(tmp_path / name, tmp_path / "unkilled")
    assert np.isfinite(next(iter(_weights(tmp_path / "unkilled" / "model.weights.h5").values()))).all()
