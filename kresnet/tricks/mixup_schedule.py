"""Mixup for the first epochs of a run and none for the last ones, inside one `fit` call."""

import keras

from kresnet.errors import UserError


class MixupSchedule(keras.callbacks.Callback):
    """Mixup (paper section 5.4) with its rule "no mixup in the final epochs", for one `fit`.

    Training pairs are replaced by x = lam * x_i + (1 - lam) * x_j, y = lam * y_i + (1 - lam) * y_j
    with one lam ~ Beta(alpha, alpha) per batch (alpha 0.2 in the paper), for every batch before
    epoch `epochs - off_epochs`; the final `off_epochs` epochs see the data unmixed.

    The switch is made in the tf.data stream by `apply` (batch i of the run is mixed iff
    i < mixup epochs x steps), not by flipping a flag from the callback: tf.data prepares
    batches ahead of training, so a flag set at `on_epoch_begin` would take effect a few
    batches late. The dataset may be repeated (pass `steps_per_epoch` to `fit`) or not
    (`fit` makes a new pass each epoch): the callback tells each new pass the run's batch
    index it starts at. As a callback it also checks that `fit` runs the epochs and steps it
    was built for (otherwise the switch would land at another epoch) and logs `mixup` (1 or 0)
    per epoch.

    Args:
        alpha: float. Beta(alpha, alpha) parameter; 0 disables mixup.
        epochs: int. Total epochs of the run (`fit`'s `epochs`).
        steps_per_epoch: int. Batches per epoch (`fit`'s `steps_per_epoch`).
        off_epochs: int. The final epochs without mixup.
        seed: int or None. Fixes lambdas and pairings.
        num_classes: int or None. One-hot encodes integer labels (as timm's `Mixup(num_classes=...)`);
            without it, integer labels are refused (their mixup would average class numbers).

    Example:
        mixup = MixupSchedule(alpha=0.2, epochs=10, steps_per_epoch=100, off_epochs=2)
        model.fit(mixup.apply(train_ds), epochs=10, callbacks=[mixup])  # train_ds: 100 batches
    """

    def __init__(self, alpha, epochs, steps_per_epoch, off_epochs=0, seed=None, num_classes=None):
        super().__init__()
        if not 0 <= off_epochs <= epochs:
            raise UserError(f"MixupSchedule: off_epochs must be in [0, epochs={epochs}]. Received: off_epochs={off_epochs}")
        self.alpha = float(alpha)
        self.epochs = int(epochs)
        self.steps_per_epoch = int(steps_per_epoch)
        self.off_epochs = int(off_epochs)
        self.seed = seed
        self.num_classes = num_classes
        self.next_batch = None  # the run's index of the batch a new pass over the dataset starts at
        self.epoch_start, self.epoch_batches = 0, 0

    @property
    def mixup_epochs(self):
        """Epochs [0, mixup_epochs) use mixup (all of them when alpha is 0: nothing to switch)."""
        return self.epochs - self.off_epochs if self.alpha > 0 else 0

    def uses_mixup(self, epoch):
        """Whether 0-based `epoch` trains on mixed batches."""
        return epoch < self.mixup_epochs

    def apply(self, dataset, initial_step=0):
        """The batched (images, labels) `dataset` with this schedule's mixup; its labels come out one-hot.

        Args:
            dataset: `tf.data.Dataset` of (float images, one-hot labels) batches, repeated or one epoch
                long; integer labels need `num_classes`. NumPy arrays: see `apply_mixup`.
            initial_step: the run's optimizer step at which this dataset starts, for a stream used
                without this callback in `fit` (kresnet's own mid-epoch resume); as a callback,
                `fit`'s epoch sets it.
        """
        import tensorflow as tf

        from kresnet.data.mixup import apply_mixup

        if self.next_batch is None:
            with tf.init_scope():
                self.next_batch = tf.Variable(0, dtype=tf.int64, trainable=False, name="mixup_next_batch")
        self.next_batch.assign(int(initial_step))
        return apply_mixup(dataset, self.alpha, self.seed, self.mixup_epochs * self.steps_per_epoch, self.next_batch,
                           self.num_classes)

    def _starts_next_pass_at(self, batch):
        if self.next_batch is not None:
            self.next_batch.assign(batch)

    def on_train_begin(self, logs=None):
        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        if epochs != self.epochs or steps not in (None, self.steps_per_epoch):
            raise UserError(
                f"MixupSchedule: built for epochs={self.epochs}, steps_per_epoch={self.steps_per_epoch} but fit runs "
                f"epochs={epochs}, steps_per_epoch={steps}; mixup would stop at the wrong epoch"
            )

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start, self.epoch_batches = epoch * self.steps_per_epoch, 0
        self._starts_next_pass_at(self.epoch_start)

    def on_train_batch_end(self, batch, logs=None):
        # Keras may open the next epoch's pass right after the last batch, before `on_epoch_begin`.
        self.epoch_batches = batch + 1
        self._starts_next_pass_at(self.epoch_start + self.epoch_batches)

    def on_epoch_end(self, epoch, logs=None):
        if self.epoch_batches != self.steps_per_epoch:
            raise UserError(
                f"MixupSchedule: built for steps_per_epoch={self.steps_per_epoch} but epoch {epoch + 1} had "
                f"{self.epoch_batches} batches; mixup would stop at the wrong epoch"
            )
        if logs is not None:
            logs["mixup"] = 1.0 if self.uses_mixup(epoch) else 0.0
