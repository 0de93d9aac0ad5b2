"""HistoryCSV rows and their trimming when BackupAndRestore resumes a run (detection and segmentation)."""

import csv
import types

from kresnet.training.history import HistoryCSV, TrimHistoryOnResume


def _epochs(path):
    with open(path, newline="") as f:
        return [row["epoch"] for row in csv.DictReader(f)]


def test_resume_drops_the_rows_of_epochs_the_backup_will_redo(tmp_path):
    path = tmp_path / "history.csv"
    history = HistoryCSV(path)  # 1-based, as the segmentation driver writes it
    for epoch in range(3):
        history.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1)})
    assert _epochs(path) == ["1", "2", "3"]
    # The backup holds 2 finished epochs (killed after epoch 3's row, before its backup).
    trim = TrimHistoryOnResume(path, first_epoch_number=1)
    trim.set_model(types.SimpleNamespace(_initial_epoch=2))
    trim.on_train_begin()
    assert _epochs(path) == ["1", "2"]
    history.on_epoch_end(2, {"loss": 0.3})
    assert _epochs(path) == ["1", "2", "3"]


def test_without_a_resumed_epoch_nothing_is_trimmed(tmp_path):
    path = tmp_path / "history.csv"
    history = HistoryCSV(path, first_epoch_number=0)
    history.on_epoch_end(0, {"loss": 1.0})
    trim = TrimHistoryOnResume(path)
    trim.set_model(types.SimpleNamespace())
    trim.on_train_begin()
    assert _epochs(path) == ["0"]
