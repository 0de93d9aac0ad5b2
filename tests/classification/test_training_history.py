"""history.csv: epochs numbered from 1 (as the console) in every task, trimmed to the checkpoint on resume."""

import csv

from kresnet.runs.history import HistoryCSV, trim_history


def _epochs(path):
    with open(path, newline="") as f:
        return [row["epoch"] for row in csv.DictReader(f)]


def test_resume_drops_the_rows_of_epochs_the_checkpoint_will_redo(tmp_path):
    path = tmp_path / "history.csv"
    history = HistoryCSV(path)
    for epoch in range(3):
        history.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
    assert _epochs(path) == ["1", "2", "3"]
    # The checkpoint holds 2 finished epochs (killed after epoch 3's row, before its checkpoint).
    trim_history(path, finished_epochs=2)
    assert _epochs(path) == ["1", "2"]
    history.on_epoch_end(2, {"loss": 0.3})
    assert _epochs(path) == ["1", "2", "3"]
    assert not list(tmp_path.glob(".partial-*"))  # each row is written through a temporary file
