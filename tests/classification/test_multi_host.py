"""Two `kresnet train` processes on 127.0.0.1, each playing one host of a JAX job (README,
"Multi-device and multi-host training"): they train, validate, checkpoint, survive a kill and
resume, only process 0 writes the shared run folder, and the result equals one process on 2 devices
resuming the same checkpoint. When one process dies, the other stops at once with one line."""

import csv
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

import h5py
import keras
import numpy as np
import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        keras.config.backend() != "jax",
        reason="multi-process training is JAX's keras.distribution (TensorFlow multi-worker is refused, torch has none)",
    ),
]

TIMEOUT_S = 600
TINY = [
    "data.image_size=32", "data.eval_resize=32", "data.synthetic_image_size=32", "data.synthetic_classes=4",
    "data.synthetic_per_class=8", "data.synthetic_val_per_class=5", "model.num_classes=4", "model.stage_widths=[4,4,8,8]",
    "train.epochs=3", "train.steps_per_epoch=2", "train.batch_size=8", "tricks.mixup_alpha=0", "tricks.mixup_off_epochs=0",
    "distribution.strategy=data_parallel",
]  # fmt: skip


def _command(out, multi_host, extra=()):
    sets = [*TINY, f"distribution.multi_host={'true' if multi_host else 'false'}", *extra]
    return [sys.executable, "-m", "kresnet.cli", "train", "demo", *[a for s in sets for a in ("--set", s)], "--out", str(out)]


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KERAS_DISTRIBUTION_", "XLA_FLAGS"))}
    return {**env, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "KRESNET_CACHE": str(tmp_path / "cache"), **extra}


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_job(tmp_path, out, name, extra=()):
    """Both processes of the job, as the README's two-host commands; their logs go to files."""
    port = _free_port()
    processes = []
    for process_id in (0, 1):
        env = _env(
            tmp_path,
            KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
            KERAS_DISTRIBUTION_NUM_PROCESSES="2",
            KERAS_DISTRIBUTION_PROCESS_ID=str(process_id),
            # The default on current jax; older jax needs it for CPU collectives between processes.
            JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
        )
        log = open(tmp_path / f"{name}-{process_id}.log", "w")
        processes.append(subprocess.Popen(_command(out, True, extra), env=env, stdout=log, stderr=subprocess.STDOUT))
        log.close()
    return processes


def _finish(processes, tmp_path, name):
    logs = []
    for process_id, process in enumerate(processes):
        process.wait(timeout=TIMEOUT_S)
        logs.append((tmp_path / f"{name}-{process_id}.log").read_text())
        assert process.returncode == 0, logs[-1][-3000:]
    return logs


def _weights(path):
    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


def test_two_processes_train_resume_and_match_two_devices(tmp_path):
    run = tmp_path / "shared-run"
    first = _start_job(tmp_path, run, "first")
    state = run / "checkpoints" / "state.json"
    deadline = time.time() + TIMEOUT_S
    while not state.exists() and all(p.poll() is None for p in first) and time.time() < deadline:
        time.sleep(0.05)
    # One host dies after the first checkpoint; the scheduler then ends the whole job.
    first[1].send_signal(signal.SIGKILL)
    first[0].send_signal(signal.SIGKILL)
    for process in first:
        process.wait(timeout=60)
    assert state.exists(), (tmp_path / "first-0.log").read_text()[-3000:]
    assert not (run / "metrics.json").exists(), "the job finished before the kill; nothing was resumed"

    # The reference resumes the same checkpoint in one process with 2 devices (a resumed run's input
    # stream starts afresh, so an uninterrupted run would see other batches after the kill).
    reference = tmp_path / "two-devices"
    shutil.copytree(run, reference)
    recipe = (reference / "recipe.toml").read_text()
    assert "multi_host = true" in recipe
    (reference / "recipe.toml").write_text(recipe.replace("multi_host = true", "multi_host = false"))
    again = _start_job(tmp_path, run, "again")
    done = subprocess.run(
        _command(reference, False), env=_env(tmp_path, XLA_FLAGS="--xla_force_host_platform_device_count=2"),
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    logs = _finish(again, tmp_path, "again")
    assert "resuming" in logs[0] and "resuming" in logs[1] and "resuming" in done.stdout
    # Both print the job's scores; only process 0 claims the metrics.json it wrote.
    (first,), (second,) = [[line for line in log.splitlines() if line.startswith("top-1")] for log in logs]
    assert first.endswith(f"%  ->  {run / 'metrics.json'}")
    assert second.endswith(f"%  (process 1 of 2: process 0 writes {run / 'metrics.json'})")
    assert first.split("%  ->")[0] == second.split("%  (")[0]

    # Only process 0 wrote: one row per epoch, the files of one run and nothing else.
    with open(run / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert [row["epoch"] for row in history] == ["1", "2", "3"]
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in reference.iterdir())
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == sorted(p.name for p in (reference / "checkpoints").iterdir())
    assert "state-000000006.weights.h5" in checkpoints
    with open(reference / "history.csv") as f:
        expected_history = list(csv.DictReader(f))
    assert [row.keys() for row in history] == [row.keys() for row in expected_history]
    values = [[[float(v) for v in row.values()] for row in rows] for rows in (history, expected_history)]
    np.testing.assert_allclose(*values, rtol=1e-5)
    ours, theirs = json.loads((run / "metrics.json").read_text()), json.loads((reference / "metrics.json").read_text())
    assert (ours["top1"], ours["val_loss"], ours["steps"]) == pytest.approx((theirs["top1"], theirs["val_loss"], 6))

    expected, got = _weights(reference / "model.weights.h5"), _weights(run / "model.weights.h5")
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("lost", [1, 0])
def test_a_lost_process_stops_the_other_at_once(tmp_path, lost):
    # Long enough that the kill lands in training: 40 epochs of 2 steps.
    run, extra = tmp_path / "run", ["train.epochs=40"]
    processes = _start_job(tmp_path, run, "job", extra)
    state = run / "checkpoints" / "state.json"
    deadline = time.time() + TIMEOUT_S
    while not state.exists() and all(p.poll() is None for p in processes) and time.time() < deadline:
        time.sleep(0.05)
    assert state.exists(), (tmp_path / "job-0.log").read_text()[-3000:]
    survivor = processes[1 - lost]
    processes[lost].send_signal(signal.SIGKILL)
    killed = time.time()
    try:
        survivor.wait(timeout=60)
    finally:
        survivor.kill()
    stopped_after = time.time() - killed
    log = (tmp_path / f"job-{1 - lost}.log").read_text()
    # JAX alone waits for its 60 s heartbeat at the exit, then aborts from C++ (status 134).
    assert stopped_after < 30 and survivor.returncode != 0, (stopped_after, survivor.returncode, log[-3000:])
    if lost == 1:
        command = shlex.join(["kresnet", *_command(run, True, extra)[3:]])
        last = log.strip().splitlines()[-1]
        assert last.startswith("error: lost process 1 of the 2-process job (") and "Gloo" in last
        assert last.endswith(f"this is process 0. Start all 2 processes again to resume from {run / 'checkpoints'}: {command}")
        assert survivor.returncode == 75 and "Traceback" not in log and "Check failure" not in log
    else:
        # JAX's coordination service lives in process 0: losing it, JAX's client stops process 1
        # itself within about a second, with its own message (README, "Several hosts").
        assert "error: lost process 0 of the 2-process job" in log or "JAX distributed service detected fatal errors" in log
