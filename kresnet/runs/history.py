"""history.csv across interruptions: every finished epoch appears exactly once, numbered from 1 as the console.

Loggers run before the checkpoint callback, so a checkpoint that counts an epoch as
finished is written only after that epoch's row; a run killed between the two redoes
the epoch on resume, and `trim_history` drops the row it is about to write again.
"""

import csv
import io
import pathlib

import keras

from kresnet.atomic_files import write_text_atomically


def trim_history(path, finished_epochs):
    """Keep only the header and the rows of the `finished_epochs` epochs the checkpoint holds.

    Args:
        path: pathlib.Path of the CSV; its first column is the epoch number.
        finished_epochs: int. Epochs the restored checkpoint has completed (the file numbers epochs from 1).
    """
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [row for row in rows[1:] if row and int(float(row[0])) <= finished_epochs]
    if len(kept) == len(rows):
        return
    write_text_atomically(path, _csv_text(kept))


class HistoryCSV(keras.callbacks.Callback):
    """Appends one row per finished epoch (`epoch`, then the logged values) to a CSV file.

    Unlike `keras.callbacks.CSVLogger` it holds no file open between epochs (so a resume
    can trim the file first), adds no empty `val_*` columns when there is no validation,
    and a resumed run continues the same file.

    Args:
        path: str or path. The CSV file; epochs are numbered from 1 (Keras counts from 0).
    """

    def __init__(self, path):
        super().__init__()
        self.path = pathlib.Path(path)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        keys = sorted(logs)
        # Rewritten whole through a temporary file (a few hundred rows at most): a kill mid-write
        # leaves the previous file, never half a row.
        text = self.path.read_text(encoding="utf-8") if self.path.is_file() else _csv_text([["epoch"] + keys])
        row = _csv_text([[epoch + 1] + [float(logs[key]) for key in keys]])
        write_text_atomically(self.path, text + row)


def _csv_text(rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()
