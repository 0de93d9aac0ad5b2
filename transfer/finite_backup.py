"""The resumable-run backup of the transfer trainers, which never saves a diverged state."""

import math

import keras


class FiniteBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that keeps the last good state: an epoch that ends in NaN/inf is not saved."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and not math.isfinite(float(logs.get("loss", 0.0))):
            return
        super().on_epoch_end(epoch, logs)
