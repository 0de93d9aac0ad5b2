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
from kresnet.errors import UserError


def trim_history(path, finished_epochs):
    """Keep only the header and the rows of the `finished_epochs` epochs the checkpoint holds.

    Args:
        path: pathlib.Path of the CSV; its first column is the epoch number.
        finished_epochs: int. Epochs the restored checkpoint has completed (the file numbers epochs from 1).
    """
    if not path.is_file():
        return
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: damaged, not UTF-8 text (byte {error.start}); delete it to resume "
                        "(the rows of the epochs done are then lost)") from None
    if not rows:
        return
    for number, row in enumerate(rows[1:], start=2):
        if row and not _epoch_number(row[0]):
            raise UserError(f"{path}: line {number} is not a history row ({','.join(row)[:40]!r}); "
                            "delete that line and rerun to resume")
    kept = [rows[0]] + [row for row in rows[1:] if row and _epoch_number(row[0]) <= finished_epochs]
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


def _epoch_number(cell):
    """The epoch of a row's first cell ("3", "3.0"), or None when it is not one."""
    try:
        number = float(cell)
    except ValueError:
        return None
    return int(number) if number.is_integer() and number >= 1 else None


def _csv_text(rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()
