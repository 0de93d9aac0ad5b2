"""Per-epoch scalars as TensorBoard event files, without the `tensorboard` package.

`keras.callbacks.TensorBoard` needs `tensorboard` installed (for
`tf.summary.scalar`); TensorFlow core can still write the event files through
`tf.summary.write` with the scalar plugin's metadata, which TensorBoard reads
exactly like its own scalar summaries. Like the input pipeline, this is I/O,
so it may use TensorFlow whatever the Keras backend.
"""

import keras


class ScalarEventLog(keras.callbacks.Callback):
    """Writes every epoch's logs (loss, top1, val_top1, learning rate...) to `log_dir/train`.

    Args:
        log_dir: the TensorBoard log folder.
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = str(log_dir)
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir + "/train")
        metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
        values = dict(logs or {})
        optimizer = self.model.optimizer
        values.setdefault("learning_rate", keras.ops.convert_to_numpy(optimizer.learning_rate))
        with self._writer.as_default():
            for tag, value in values.items():
                tf.summary.write(tag, tf.constant(float(value), tf.float32), step=epoch + 1, metadata=metadata)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
