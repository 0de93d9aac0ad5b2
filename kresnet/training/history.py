"""history.csv across interruptions: every finished epoch appears exactly once.

Loggers run before the checkpoint callback, so a checkpoint that counts an epoch as
finished is written only after that epoch's row; a run killed between the two redoes
the epoch on resume, and `trim_history` drops the row it is about to write again.
"""

import csv
import os
import pathlib

import keras


def trim_history(path, finished_epochs, first_epoch_number=0):
    """Keep only the header and the rows of the `finished_epochs` epochs the checkpoint holds.

    Args:
        path: pathlib.Path of the CSV; its first column is the epoch number.
        finished_epochs: int. Epochs the restored checkpoint has completed.
        first_epoch_number: int. The number the file gives the first epoch (as `HistoryCSV`).
    """
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    last_kept = first_epoch_number + finished_epochs
    kept = [rows[0]] + [row for row in rows[1:] if row and int(float(row[0])) < last_kept]
    if len(kept) == len(rows):
        return
    scratch = path.with_suffix(".tmp")
    with open(scratch, "w", newline="") as f:
        csv.writer(f).writerows(kept)
    os.replace(scratch, path)


class HistoryCSV(keras.callbacks.Callback):
    """Appends one row per finished epoch (`epoch`, then the logged values) to a CSV file.

    Unlike `keras.callbacks.CSVLogger` it holds no file open between epochs (so a resume
    can trim the file first), adds no empty `val_*` columns when there is no validation,
    and a resumed run continues the same file.

    Args:
        path: str or path. The CSV file.
        first_epoch_number: int. The number written for the first epoch (Keras counts from 0).
    """

    def __init__(self, path, first_epoch_number=1):
        super().__init__()
        self.path = pathlib.Path(path)
        self.first_epoch_number = first_epoch_number

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        keys = sorted(logs)
        new_file = not self.path.is_file()
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if new_file:
                writer.writerow(["epoch"] + keys)
            writer.writerow([epoch + self.first_epoch_number] + [float(logs[key]) for key in keys])


class TrimHistoryOnResume(keras.callbacks.Callback):
    """After `keras.callbacks.BackupAndRestore` (listed before it) restored a run, trim its history.

    BackupAndRestore tells the resumed epoch only through the model's `_initial_epoch`;
    without it nothing is trimmed, so no finished epoch's row can be lost.
    """

    def __init__(self, path, first_epoch_number=0):
        super().__init__()
        self.path = path
        self.first_epoch_number = first_epoch_number

    def on_train_begin(self, logs=None):
        resumed_epoch = getattr(self.model, "_initial_epoch", None)
        if isinstance(resumed_epoch, int):
            trim_history(self.path, resumed_epoch, self.first_epoch_number)
