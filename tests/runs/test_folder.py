"""The run folder: lock, recipe claim, atomic files, the `finished` marker, save errors."""

import dataclasses
import errno
import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from kresnet.errors import UserError
from kresnet.recipe import load_recipe, recipe_from_dict, section, setting
from kresnet.atomic_files import PHASES, SaveFailed
from kresnet.runs.folder import FINAL_WEIGHTS, RunFolder
from kresnet.runs.checkpoint import RunCheckpoint


@dataclasses.dataclass
class Train:
    epochs: int = setting(2, minimum=1)


@dataclasses.dataclass
class Recipe:
    seed: int = setting(0)
    train: Train = section(Train)


def _dense(value):
    inputs = keras.Input((64,))
    model = keras.Model(inputs, keras.layers.Dense(256)(inputs))
    for weight in model.weights:
        weight.assign(np.full(weight.shape, value, "float32"))
    return model


def _loaded_kernel(path):
    model = _dense(0.0)
    model.load_weights(path)
    return float(keras.ops.convert_to_numpy(model.weights[0])[0, 0])


def test_a_second_claim_names_the_holder_and_a_released_folder_is_free(tmp_path):
    with RunFolder(tmp_path / "run", writer=True).claim(Recipe()):
        with pytest.raises(UserError, match=rf"run folder in use by process {os.getpid()} \(lock .*\.lock\)"):
            RunFolder(tmp_path / "run", writer=True).claim(Recipe())
    RunFolder(tmp_path / "run", writer=True).claim(Recipe()).release()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / ".lock").write_text(dead.stdout)
    with RunFolder(tmp_path, writer=True).claim(Recipe()):
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())


@pytest.mark.slow
def test_a_second_process_on_the_same_folder_gets_one_line_naming_the_first(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from kresnet.runs.lock import RunLock; RunLock(sys.argv[1]).acquire(); "
         "print('locked', flush=True); sys.stdin.read()", str(tmp_path / ".lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match=rf"in use by process {holder.pid} "):
            RunFolder(tmp_path, writer=True).claim(Recipe())
    finally:
        holder.stdin.close()
        holder.wait()
    RunFolder(tmp_path, writer=True).claim(Recipe()).release()  # the lock died with its process


def test_a_started_run_folder_keeps_its_recipe(tmp_path):
    run = tmp_path / "run"
    RunFolder(run, writer=True).claim(Recipe()).release()
    assert load_recipe(run / "recipe.toml", Recipe) == Recipe()
    # Nothing trained yet (a run that stopped before its first checkpoint): another recipe may take the folder.
    other = recipe_from_dict({"seed": 7}, Recipe)
    RunFolder(run, writer=True).claim(other).release()
    for state in ("checkpoints", "model.weights.h5", "finished"):
        (run / state).mkdir()
        RunFolder(run, writer=True).claim(other).release()  # the same recipe resumes
        with pytest.raises(UserError, match=r"run: started with seed = 7, now 0; resume with the recipe and --set values of .*recipe\.toml"):
            RunFolder(run, writer=True).claim(Recipe())
        assert load_recipe(run / "recipe.toml", Recipe) == other  # left as it was
        (run / state).rmdir()
    (run / "backup").mkdir()
    (run / "backup" / "training_metadata.json").write_text("{}")
    with pytest.raises(UserError, match="started by an older kresnet"):
        RunFolder(run, writer=True).claim(other)


def test_a_process_that_is_not_the_writer_writes_nothing_and_takes_no_lock(tmp_path):
    with RunFolder(tmp_path, writer=True).claim(Recipe()):
        reader = RunFolder(tmp_path, writer=False).claim(Recipe(train=Train(epochs=5)))
        reader.save_weights(_dense(1.0), FINAL_WEIGHTS)
        reader.finish({"top1": 1.0})
    assert sorted(path.name for path in tmp_path.iterdir()) == [".lock", "recipe.toml"]


def _finished_run(run, value):
    run.save_weights(_dense(value), FINAL_WEIGHTS)
    run.finish({"value": value})


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("name", [FINAL_WEIGHTS, "metrics.json", "finished"])
def test_a_kill_at_any_phase_of_the_final_save_leaves_no_finished_run_and_no_half_file(tmp_path, name, phase):
    class Killed(Exception):
        pass

    def kill(at_phase, path):
        if path.name == ".partial-" + name and at_phase == phase:
            if path.exists():
                path.write_bytes(path.read_bytes()[:10])  # half written, as a kill leaves it
            raise Killed()

    run = RunFolder(tmp_path, writer=True).claim(Recipe())
    _finished_run(run, 1.0)
    run.unfinish()
    run.fault = kill
    with pytest.raises(Killed):
        _finished_run(run, 2.0)
    assert not run.finished
    assert _loaded_kernel(tmp_path / FINAL_WEIGHTS) in (1.0, 2.0)  # whole, old or new
    assert json.loads((tmp_path / "metrics.json").read_text())["value"] in (1.0, 2.0)
    run.fault = None
    _finished_run(run, 3.0)  # the rerun completes the folder
    assert run.finished and _loaded_kernel(tmp_path / FINAL_WEIGHTS) == 3.0
    run.release()


def test_a_full_disk_is_one_line_naming_the_file_and_keeps_the_previous_version(tmp_path):
    def disk_full(phase, path):
        if phase == "write":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    run = RunFolder(tmp_path, writer=True).claim(Recipe())
    run.save_weights(_dense(1.0), FINAL_WEIGHTS)
    run.fault = disk_full
    with pytest.raises(SaveFailed) as error:
        run.save_weights(_dense(2.0), FINAL_WEIGHTS)
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(tmp_path / FINAL_WEIGHTS))
    assert "No space left on device" in message and "previous version is kept" in message
    assert _loaded_kernel(tmp_path / FINAL_WEIGHTS) == 1.0
    assert sorted(path.name for path in tmp_path.iterdir()) == [".lock", FINAL_WEIGHTS, "recipe.toml"]
    run.release()


@pytest.mark.skipif(sys.platform == "win32", reason="file-size limits (RLIMIT_FSIZE) are POSIX")
def test_a_checkpoint_that_does_not_fit_on_disk_fails_cleanly_and_the_previous_one_resumes(tmp_path):
    # A real write failure (the file-size limit stands in for a full disk): h5py never writes to
    # the disk, so no h5py object is left to fail again (or crash) when it is freed.
    import resource
    import signal

    model = _dense(1.0)
    model.compile(optimizer="sgd", loss="mse")
    checkpoint = RunCheckpoint(tmp_path / "checkpoints", steps_per_epoch=4)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0)
    model.weights[0].assign(np.full(model.weights[0].shape, 2.0, "float32"))
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (32_000, limits[1]))
    try:
        with pytest.raises(SaveFailed, match=r"state-000000008\.weights\.h5: could not be written \(File too large\)"):
            checkpoint.on_epoch_end(1)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous_handler)
    assert json.loads((tmp_path / "checkpoints" / "state.json").read_text())["epoch"] == 1
    fresh = _dense(0.0)
    fresh.compile(optimizer="sgd", loss="mse")
    assert RunCheckpoint(tmp_path / "checkpoints", steps_per_epoch=4).restore(fresh) == (1, 0)
    assert float(keras.ops.convert_to_numpy(fresh.weights[0])[0, 0]) == 1.0


def test_by_default_only_the_primary_process_of_a_multi_host_job_writes(tmp_path, monkeypatch):
    import kresnet.runs.distribution as distribution

    assert distribution.is_primary_process()  # a single process is the job's primary
    monkeypatch.setattr(distribution, "is_primary_process", lambda: False)
    other = RunFolder(tmp_path / "run")
    assert other.writer is False
    other.write_text("notes.txt", "x")
    assert not (tmp_path / "run" / "notes.txt").exists()
    monkeypatch.setattr(distribution, "is_primary_process", lambda: True)
    assert RunFolder(tmp_path / "run").writer is True


def test_every_task_defaults_to_the_same_run_folder(tmp_path, monkeypatch):
    from kresnet.runs.folder import default_run_dir
    from kresnet.transfer.detection.commands import _weights as detection_weights
    from kresnet.transfer.segmentation.commands import _weights_path as segmentation_weights

    monkeypatch.chdir(tmp_path)
    assert default_run_dir("recipes/transfer/demo_detect.toml") == pathlib.Path("runs/demo_detect")
    expected = str(pathlib.Path("runs/r") / FINAL_WEIGHTS)
    for weights_of in (detection_weights, segmentation_weights):
        with pytest.raises(UserError, match=re.escape(expected)):
            weights_of("elsewhere/r.toml", None, None)
