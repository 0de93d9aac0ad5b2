"""A damaged file in a run folder is one line naming the file and what to do, from the command a user types.

One tiny `kresnet train` run is made once (tests/runs/conftest.py: 2 epochs of 2 steps, a
checkpoint every step, so the previous checkpoint is kept beside the newest); each test damages a
copy of it the way a full disk, a cut copy or an editor does, then runs the command that meets the damage: `kresnet train`
again (it resumes; `train.epochs=3` extends the finished run, an allowed change), or
`kresnet evaluate RUN`.
"""

import json

import h5py
import numpy as np
import pytest

from tests.runs.tiny_run import train_command


def _state(run):
    return json.loads((run / "checkpoints" / "state.json").read_text())


def test_a_truncated_checkpoint_offers_the_previous_one_which_then_resumes(run, error_line, run_cli, capsys):
    state = _state(run)
    newest = run / "checkpoints" / state["weights"]
    assert (state["epoch"], state["step"]) == (2, 0) and (state["previous"]["epoch"], state["previous"]["step"]) == (1, 1)
    newest.write_bytes(newest.read_bytes()[:2000])  # a copy cut short
    err = error_line(train_command(run, "train.epochs=3"))
    assert f"{newest}: damaged (" in err
    assert f"the previous checkpoint (epoch 2, step 1) is intact: delete {newest} and rerun to resume from it" in err
    newest.unlink()  # as the line says
    assert run_cli(train_command(run, "train.epochs=3")) == 0
    out = capsys.readouterr().out
    assert f"{newest} is missing: resuming from the previous checkpoint (epoch 2, step 1)" in out
    assert f"resuming {run} at epoch 2, step 1 of 2" in out
    assert json.loads((run / "metrics.json").read_text())["steps"] == 6
    assert [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]] == ["1", "2", "3"]


def test_an_empty_checkpoint_without_an_intact_previous_one_says_to_start_again(run, error_line):
    state = _state(run)
    (run / "checkpoints" / state["weights"]).write_bytes(b"")
    (run / "checkpoints" / state["previous"]["weights"]).unlink()
    err = error_line(train_command(run, "train.epochs=3"))
    assert f"{run / 'checkpoints' / state['weights']}: damaged (" in err
    assert f"no intact checkpoint is left: delete {run / 'checkpoints'} to start the run again" in err


@pytest.mark.parametrize("damage, expected", [
    ("{\"epoch\": 2, \"st", "state.json: damaged, not JSON"),
    ("{\"epoch\": 2}", "state.json: damaged, no step, iterations, weights"),
])
def test_a_damaged_state_file_is_one_line(run, error_line, damage, expected):
    (run / "checkpoints" / "state.json").write_text(damage)
    err = error_line(train_command(run, "train.epochs=3"))
    assert f"{run / 'checkpoints' / expected}" in err and f"delete {run / 'checkpoints'} to start the run again" in err


def test_a_state_file_naming_a_missing_checkpoint_is_one_line(run, error_line):
    state = _state(run)
    (run / "checkpoints" / state["weights"]).unlink()
    (run / "checkpoints" / state["previous"]["weights"]).unlink()
    err = error_line(train_command(run, "train.epochs=3"))
    assert f"{run / 'checkpoints' / state['weights']}: missing (named by {run / 'checkpoints' / 'state.json'})" in err


def test_a_history_row_that_is_not_one_names_its_line(run, error_line):
    with open(run / "history.csv", "a") as f:
        f.write("abc,def\n")
    err = error_line(train_command(run, "train.epochs=3"))
    assert f"{run / 'history.csv'}: line 4 is not a history row ('abc,def'); delete that line and rerun" in err


def test_a_recorded_recipe_that_is_not_utf8_is_one_line(run, error_line):
    recipe = run / "recipe.toml"
    recipe.write_bytes(recipe.read_bytes().replace(b"Demo", b"D\xe9mo"))
    err = error_line(train_command(run, "train.epochs=3"))
    assert f"the run's recorded recipe cannot be read ({recipe}: not UTF-8 text" in err
    assert f"delete {recipe} to resume with the recipe given now" in err


def test_a_truncated_model_file_offers_the_checkpoint_that_writes_it_again(run, error_line, run_cli, capsys):
    weights = run / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:3000])
    err = error_line(["evaluate", run])
    assert f"{weights}: not a readable .weights.h5 file (" in err
    assert f"delete {weights} and rerun `kresnet train <its recipe> --out {run}`" in err
    weights.unlink()  # as the line says: the same training command writes it again from the checkpoint
    assert run_cli(train_command(run, "train.epochs=2")) == 0
    assert "training is done, writing its final files" in capsys.readouterr().out
    assert run_cli(["evaluate", run]) == 0 and "top-1" in capsys.readouterr().out


def test_weights_holding_nan_are_refused_for_evaluation(run, error_line):
    with h5py.File(run / "model.weights.h5", "r+") as f:
        kernels = []
        f.visititems(lambda name, item: kernels.append(item) if getattr(item, "ndim", 0) == 4 else None)
        kernels[0][0, 0, 0, 0] = np.nan
    err = error_line(["evaluate", run])
    assert f"{run / 'model.weights.h5'}: weight " in err and "holds NaN or infinite values" in err


def test_weights_whose_outputs_overflow_report_the_nan_loss_rather_than_a_top1(run, error_line):
    # Finite but huge: the logits overflow to inf and the loss is NaN; a top-1 of such a model means nothing.
    with h5py.File(run / "model.weights.h5", "r+") as f:
        kernels = []
        f.visititems(lambda name, item: kernels.append(item) if getattr(item, "ndim", 0) == 4 else None)
        kernels[0][...] = np.full(kernels[0].shape, 3e38, np.float32)
    err = error_line(["evaluate", run])
    assert f"{run / 'model.weights.h5'}: the evaluation loss is nan" in err and "top-1 and top-5 would mean nothing" in err
