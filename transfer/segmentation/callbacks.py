"""Small training callbacks of the segmentation driver: learning rate in the logs, a plain CSV history."""

import csv
import pathlib

import keras


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the learning rate after each epoch to the logs, so the history shows the schedule."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class HistoryCSV(keras.callbacks.Callback):
    """Appends one row per finished epoch (1-based `epoch`, then the logged values) to a CSV file.

    Unlike `keras.callbacks.CSVLogger` it adds no empty `val_*` columns when there is no
    validation, and a resumed run continues the same file.

    Args:
        path: str or path. The CSV file.
    """

    def __init__(self, path):
        super().__init__()
        self.path = pathlib.Path(path)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        keys = sorted(logs)
        new_file = not self.path.is_file()
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if new_file:
                writer.writerow(["epoch"] + keys)
            writer.writerow([epoch + 1] + [float(logs[key]) for key in keys])
