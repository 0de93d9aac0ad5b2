"""Finding a transfer run folder, its recipe and its class names from a weights file inside it."""

import json

from kresnet.runs.folder import CLASSES, RECIPE
from kresnet.runs.folder import read_class_names, run_folder_of


def test_weights_in_the_run_folder_or_its_checkpoints_find_the_run(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / RECIPE).write_text('task = "detection"\n')
    (run / CLASSES).write_text(json.dumps(["cat", "dog"]))
    for weights in (run / "model.weights.h5", run / "checkpoints" / "last.weights.h5"):
        assert run_folder_of(weights) == run
        assert read_class_names(weights) == ["cat", "dog"]
    loose = tmp_path / "elsewhere" / "deeper" / "model.weights.h5"  # two levels away: not this run's
    assert run_folder_of(loose) is None and read_class_names(loose) is None
    assert run_folder_of(None) is None


def test_open_run_says_what_a_folder_is_and_which_command_wrote_it(tmp_path):
    import pytest

    from kresnet.errors import UserError
    from kresnet.runs.folder import FINAL_WEIGHTS, open_run

    with pytest.raises(UserError, match=r"--teacher .*nothing: not a run folder \(no recipe.toml\)$"):
        open_run(tmp_path / "nothing", asked_by="--teacher")
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.toml").write_text('task = "detection"\n[train]\nepochs = 1\n')
    assert open_run(run).task == "detection"
    with pytest.raises(UserError, match=r"a detection run \(written by `kresnet transfer detect`\); expected a "
                                        r"classification run from `kresnet train`"):
        open_run(run, task="classification")
    with pytest.raises(UserError, match=r"no model.weights.h5 in this run folder \(no epoch has finished yet\)"):
        open_run(run, task="detection", needs=(FINAL_WEIGHTS,))
    (run / "recipe.toml").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(UserError, match=r"recipe.toml: not a readable recipe"):
        open_run(run)
