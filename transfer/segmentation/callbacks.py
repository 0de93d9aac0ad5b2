"""Small training callbacks of the segmentation driver: the learning rate in the logs."""

import keras


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the learning rate after each epoch to the logs, so the history shows the schedule."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
