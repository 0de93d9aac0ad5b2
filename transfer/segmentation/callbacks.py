"""The callbacks of the segmentation driver: learning rate in the logs, history, resumable backup, NaN stop."""

import keras

from kresnet.training.history import HistoryCSV, TrimHistoryOnResume
from transfer.finite_backup import FiniteBackupAndRestore


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the learning rate after each epoch to the logs, so the history shows the schedule."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def training_callbacks(run, extra_callbacks=()):
    """The run folder's callbacks: `history.csv`, `checkpoints/` (resumed from, last finite epoch only).

    Args:
        run: pathlib.Path of the run folder.
        extra_callbacks: more Keras callbacks, after the run folder's own (tests interrupt runs with them).
    """
    # Loggers before the backup: see kresnet/training/history.py (HistoryCSV numbers epochs from 1).
    return [
        LearningRateLogger(),
        HistoryCSV(run / "history.csv"),
        FiniteBackupAndRestore(str(run / "checkpoints"), delete_checkpoint=False),
        TrimHistoryOnResume(run / "history.csv", first_epoch_number=1),
        keras.callbacks.TerminateOnNaN(),
        *extra_callbacks,
    ]
