"""Finding a transfer run folder, its recipe and its class names from a weights file inside it."""

import json

from kresnet.runs.folder import CLASSES, RECIPE
from kresnet.transfer.run_folder import read_class_names, run_folder_of


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
