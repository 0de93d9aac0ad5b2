"""The ImageNet RGB mean and standard deviation on the 0-255 scale (Section 2 of the paper), for every task.

Classification and segmentation normalise in their tf.data pipelines; the detector
normalises inside the model (it takes 0-255 pixels). All use these numbers.
"""

MEAN_RGB = (123.68, 116.779, 103.939)
STD_RGB = (58.393, 57.12, 57.375)


def normalise_array(pixels):
    """NumPy twin of `kresnet.data.augment.normalise`: (pixels - mean) / std per RGB channel, float32."""
    import numpy as np

    return (np.asarray(pixels, np.float32) - np.asarray(MEAN_RGB, np.float32)) / np.asarray(STD_RGB, np.float32)
