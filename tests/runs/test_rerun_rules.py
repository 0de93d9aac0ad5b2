"""Running a command again on a run folder: which recipe it takes, who may train there, how it says it failed.

Each test runs the commands a user types (`kresnet train`, `kresnet transfer segment`, in-process
or as a real process in a terminal) on a copy of one finished tiny run (tests/runs/conftest.py).
"""

import json
import os
import pty
import re
import subprocess
import sys

import keras
import pytest

from kresnet.bundled_recipes import resolve_recipe
from tests.runs.tiny_run import train_command

FAIL_ONCE = os.path.join(os.path.dirname(__file__), "fail_once.py")


def test_a_recipe_of_another_task_names_the_command_it_belongs_to(error_line, tmp_path):
    detection = resolve_recipe("demo_detect", "transfer")
    err = error_line(["train", detection, "--out", tmp_path / "run"])
    assert f"{detection}: a detection recipe; run it with `kresnet transfer detect {detection}`" in err
    classification = resolve_recipe("demo")
    err = error_line(["transfer", "segment", classification, "--out", tmp_path / "run"])
    assert f"{classification}: a classification recipe; run it with `kresnet train {classification}`" in err
    assert not (tmp_path / "run").exists()


def test_a_changed_recipe_names_the_key_that_differs(run, error_line):
    err = error_line(train_command(run, "train.epochs=2", "train.seed=5"))
    assert f"{run}: started with train.seed = 0, now 5; resume with the recipe and --set values of {run / 'recipe.toml'}" in err
    err = error_line(train_command(run, "train.epochs=1"))
    assert "started with train.epochs = 2, now 1; only more epochs extend a run" in err


def test_changes_that_cannot_alter_what_was_trained_resume_and_more_epochs_extend_the_run(run, run_cli, capsys):
    rows_before = (run / "history.csv").read_text().splitlines()
    changed = train_command(run, "train.epochs=3", "train.checkpoint_every_steps=0", "meta.title='renamed'")
    assert run_cli(changed) == 0
    out = capsys.readouterr().out
    assert f"{run}: extending the run from 2 to 3 epochs" in out and f"resuming {run} at epoch 3, step 0 of 2" in out
    rows = (run / "history.csv").read_text().splitlines()
    assert rows[:3] == rows_before and rows[3].startswith("3,")  # epochs done stay as they were
    assert json.loads((run / "metrics.json").read_text())["steps"] == 6
    assert "title = \"renamed\"" in (run / "recipe.toml").read_text()


@pytest.mark.slow
def test_a_second_process_on_a_busy_folder_is_refused_before_anything_is_built(tmp_path, monkeypatch, error_line):
    monkeypatch.setenv("KRESNET_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from kresnet.runs.lock import RunLock; RunLock(sys.argv[1]).acquire(); "
         "print('locked', flush=True); sys.stdin.read()", str(run / ".lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout.readline().strip() == "locked"
        err = error_line(train_command(run))
        assert f"{run}: run folder in use by process {holder.pid}" in err
        err = error_line(["transfer", "segment", "demo_segment", "--out", run])
        assert f"{run}: run folder in use by process {holder.pid}" in err
    finally:
        holder.stdin.close()
        holder.wait()
    assert not (tmp_path / "cache").exists()  # no synthetic data generated, nothing built
    assert sorted(path.name for path in run.iterdir()) == [".lock"]


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="a pseudo-terminal is POSIX")
def test_a_save_error_mid_epoch_prints_on_its_own_line_in_a_terminal(finished_run, tmp_path):
    """A full disk as the checkpoint after step 2 is written, in the middle of the progress bar of a terminal.

    That file never existed, so there is no previous version of it to keep.
    """
    controller, terminal = pty.openpty()
    env = {**os.environ, "KRESNET_CACHE": str(finished_run / "cache"), "KERAS_BACKEND": keras.config.backend()}
    command = [sys.executable, FAIL_ONCE, str(tmp_path / "failed"), "state-000000002.weights.h5", "full-disk",
               *train_command(tmp_path / "run", "train.epochs=1", "train.steps_per_epoch=3")]
    process = subprocess.Popen(command, env=env, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        output += chunk
    process.wait()
    os.close(controller)
    text = re.sub(r"\x1b\[[0-9;]*m", "", output.decode("utf-8", "replace"))
    assert process.returncode == 2, text[-3000:]
    assert "1/3" in text  # the progress bar stood mid-epoch
    error = re.search(r"(^|\n)error: (.*)", text)
    assert error is not None, f"the error does not start a line:\n{text[-2000:]}"
    message = error.group(2).strip()
    assert message.startswith(f"{tmp_path / 'run' / 'checkpoints' / 'state-000000002.weights.h5'}: could not be written "
                              "(No space left on device); free some disk space and rerun to resume"), message
    assert "previous version" not in message
