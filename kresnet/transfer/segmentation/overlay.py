"""Colour overlays of predicted masks, for `kresnet transfer predict`."""

import numpy as np

from kresnet.transfer.segmentation.readers import IGNORE_LABEL


def palette(num_classes):
    """A fixed, well-spread RGB colour per class (the PASCAL VOC bit-interleaving scheme)."""
    colours = np.zeros((max(num_classes, 1), 3), np.uint8)
    for label in range(num_classes):
        value, shift = label + 1, 7  # +1: class 0 gets a colour too, not black
        while value:
            for channel in range(3):
                colours[label, channel] |= ((value >> channel) & 1) << shift
            value >>= 3
            shift -= 1
    return colours


def overlay(image, labels, num_classes, alpha=0.5, ignore_label=IGNORE_LABEL):
    """Blend the class colours of `labels` over an RGB uint8 image; ignored pixels stay as they are."""
    colours = palette(num_classes)[np.minimum(labels, num_classes - 1)]
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colours.astype(np.float32)
    blended = np.where((labels == ignore_label)[..., None], image, blended)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)
