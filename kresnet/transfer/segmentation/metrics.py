"""Pixel accuracy and (mean) intersection-over-union from an accumulated confusion matrix.

Two conventions for the mean IoU, which differ only when some class appears neither in
the ground truth nor in the prediction of any evaluated pixel (its IoU is 0/0):
- "all_classes" (GluonCV's `SegmentationMetric`, which produced the paper's Table 9): the
  mean over every class of `intersection / (np.spacing(1) + union)`, so such a class counts as 0;
- "present_classes" (mmsegmentation, Keras' `MeanIoU`): such a class is NaN and left out.
On the full ADE20K validation set every class occurs and the two agree; on small or custom
sets they differ. Per-class IoU is None for such a class either way. Pixels labelled
`ignore_label` count nowhere.
"""

import numpy as np

from kresnet.transfer.segmentation.readers import IGNORE_LABEL

MEAN_IOU_CONVENTIONS = ("all_classes", "present_classes")


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

    def mean_iou(self, convention="present_classes"):
        """Mean IoU by one of `MEAN_IOU_CONVENTIONS` (see the module docstring).

        Args:
            convention: "all_classes" (GluonCV) or "present_classes" (mmsegmentation).
        """
        if convention == "all_classes":
            intersection = np.diag(self.counts).astype(np.float64)
            union = self.counts.sum(axis=0) + self.counts.sum(axis=1) - intersection
            return float(np.mean(1.0 * intersection / (np.spacing(1) + union)))
        if convention != "present_classes":
            raise ValueError(f"mean IoU convention {convention!r}: expected one of {MEAN_IOU_CONVENTIONS}")
        iou = self.class_iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def summary(self, class_names=None, mean_iou_convention="present_classes"):
        """A JSON-ready dict: pixel_accuracy, mean_iou (and its convention) and per-class IoU (None where undefined).

        Args:
            class_names: list of str or None.
            mean_iou_convention: one of `MEAN_IOU_CONVENTIONS`.
        """
        names = class_names or [str(i) for i in range(self.num_classes)]
        return {
            "pixel_accuracy": self.pixel_accuracy(),
            "mean_iou": self.mean_iou(mean_iou_convention),
            "mean_iou_convention": mean_iou_convention,
            "class_iou": {name: (None if np.isnan(v) else float(v)) for name, v in zip(names, self.class_iou())},
            "pixels": int(self.counts.sum()),
        }
