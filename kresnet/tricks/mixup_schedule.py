"""Mixup for the first epochs of a run and none for the last ones, inside one `fit` call."""

import keras

from kresnet.errors import UserError


class MixupSchedule(keras.callbacks.Callback):
    """Mixup (paper section 5.4) with its rule "no mixup in the final epochs", for one `fit`.

    Training pairs are replaced by x = lam * x_i + (1 - lam) * x_j, y = lam * y_i + (1 - lam) * y_j
    with one lam ~ Beta(alpha, alpha) per batch (alpha 0.2 in the paper), for every batch before
    epoch `epochs - off_epochs`; the final `off_epochs` epochs see the data unmixed.

    The switch is made in the tf.data stream by `apply` (batch i is mixed iff i < mixup
    epochs x steps), not by flipping a flag from the callback: tf.data prepares batches
    ahead of training, so a flag set at `on_epoch_begin` would take effect a few batches
    late. As a callback it checks that `fit` runs the epochs and steps it was built for
    (otherwise the switch would land at another epoch) and logs `mixup` (1 or 0) per epoch.

    Args:
        alpha: float. Beta(alpha, alpha) parameter; 0 disables mixup.
        epochs: int. Total epochs of the run (`fit`'s `epochs`).
        steps_per_epoch: int. Batches per epoch (`fit`'s `steps_per_epoch`).
        off_epochs: int. The final epochs without mixup.
        seed: int or None. Fixes lambdas and pairings.

    Example:
        mixup = MixupSchedule(alpha=0.2, epochs=10, steps_per_epoch=100, off_epochs=2)
        model.fit(mixup.apply(train_ds), epochs=10, steps_per_epoch=100, callbacks=[mixup])
    """

    def __init__(self, alpha, epochs, steps_per_epoch, off_epochs=0, seed=None):
        super().__init__()
        if not 0 <= off_epochs <= epochs:
            raise UserError(f"MixupSchedule: off_epochs must be in [0, epochs={epochs}]. Received: off_epochs={off_epochs}")
        self.alpha = float(alpha)
        self.epochs = int(epochs)
        self.steps_per_epoch = int(steps_per_epoch)
        self.off_epochs = int(off_epochs)
        self.seed = seed

    @property
    def mixup_epochs(self):
        """Epochs [0, mixup_epochs) use mixup (all of them when alpha is 0: nothing to switch)."""
        return self.epochs - self.off_epochs if self.alpha > 0 else 0

    def uses_mixup(self, epoch):
        """Whether 0-based `epoch` trains on mixed batches."""
        return epoch < self.mixup_epochs

    def apply(self, dataset, initial_step=0):
        """The batched (images, one-hot labels) `dataset` with this schedule's mixup.

        Args:
            dataset: repeated `tf.data.Dataset` of (float images, one-hot labels) batches.
            initial_step: the run's optimizer step at which this dataset starts (after a resume).
        """
        from kresnet.data.mixup import apply_mixup

        return apply_mixup(dataset, self.alpha, self.seed, self.mixup_epochs * self.steps_per_epoch, initial_step)

    def on_train_begin(self, logs=None):
        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        if epochs != self.epochs or steps not in (None, self.steps_per_epoch):
            raise UserError(
                f"MixupSchedule: built for epochs={self.epochs}, steps_per_epoch={self.steps_per_epoch} but fit runs "
                f"epochs={epochs}, steps_per_epoch={steps}; mixup would stop at the wrong epoch"
            )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["mixup"] = 1.0 if self.uses_mixup(epoch) else 0.0
