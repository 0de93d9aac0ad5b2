"""Pixel accuracy and (mean) intersection-over-union from an accumulated confusion matrix.

Convention for the mean IoU: a class that appears neither in the ground truth nor in the
prediction of any evaluated pixel has no defined IoU (0/0); it is reported as NaN and left
out of the mean (as mmsegmentation and Keras' `MeanIoU` do). GluonCV averages over all
classes, counting such a class as 0; on the full ADE20K validation set every class occurs,
so both conventions give the same number there. Pixels labelled `ignore_label` count nowhere.
"""

import numpy as np

from transfer.segmentation.readers import IGNORE_LABEL


def confusion_matrix(labels, predictions, num_classes, ignore_label=IGNORE_LABEL):
    """Counts of (true class, predicted class) pairs over all non-ignored pixels.

    Args:
        labels: integer array of any shape. Ground-truth class ids, `ignore_label` to skip.
        predictions: integer array of the same shape. Predicted class ids in `[0, num_classes)`.
        num_classes: int. Number of classes.
        ignore_label: int. Label value excluded from the counts. Defaults to 255.

    Returns:
        int64 array (num_classes, num_classes); rows are true classes, columns predictions.
    """
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    predictions = np.asarray(predictions).reshape(-1).astype(np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels and predictions differ in size: {labels.size} vs {predictions.size}")
    keep = labels != ignore_label
    pairs = labels[keep] * num_classes + predictions[keep]
    return np.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


class ConfusionMatrix:
    """Accumulates a confusion matrix over batches and reports pixel accuracy and IoU.

    Args:
        num_classes: int. Number of classes.
        ignore_label: int. Label value excluded from every score. Defaults to 255.
    """

    def __init__(self, num_classes, ignore_label=IGNORE_LABEL):
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.counts = np.zeros((num_classes, num_classes), np.int64)

    def update(self, labels, predictions):
        """Add the pixels of one batch (labels and predicted class ids, same shape)."""
        self.counts += confusion_matrix(labels, predictions, self.num_classes, self.ignore_label)

    def pixel_accuracy(self):
        """Correct pixels over all non-ignored pixels (NaN if there were none)."""
        total = self.counts.sum()
        return float(np.trace(self.counts) / total) if total else float("nan")

    def class_iou(self):
        """Per-class intersection over union; NaN for classes absent from truth and prediction."""
        intersection = np.diag(self.counts).astype(np.float64)
        union = self.counts.sum(axis=0) + self.counts.sum(axis=1) - intersection
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(union > 0, intersection / np.maximum(union, 1), np.nan)

    def mean_iou(self):
        """Mean of `class_iou()` over the classes that occur in truth or prediction."""
        iou = self.class_iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def summary(self, class_names=None):
        """A JSON-ready dict: pixel_accuracy, mean_iou and per-class IoU (None where undefined)."""
        names = class_names or [str(i) for i in range(self.num_classes)]
        return {
            "pixel_accuracy": self.pixel_accuracy(),
            "mean_iou": self.mean_iou(),
            "class_iou": {name: (None if np.isnan(v) else float(v)) for name, v in zip(names, self.class_iou())},
            "pixels": int(self.counts.sum()),
        }
