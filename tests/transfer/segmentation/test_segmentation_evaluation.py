"""Multi-scale + flip evaluation: the averaged probabilities, and scores at original resolution through padding."""

import keras
import numpy as np
from keras import ops
from PIL import Image

from kresnet.data import imagenet_stats
from kresnet.transfer.segmentation import pipeline, readers
from kresnet.transfer.segmentation.evaluation import evaluate, predict_probabilities


def _softmax(logits):
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def test_flip_and_scales_average_probabilities_mapped_back():
    # A random 3x3 conv is not mirror-symmetric, so a flipped prediction left unflipped would differ.
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3, padding="same")])
    images = np.random.default_rng(0).normal(size=(2, 16, 24, 3)).astype("float32")

    def probabilities(x):
        return _softmax(ops.convert_to_numpy(model(x)))

    flipped_back = np.flip(probabilities(np.flip(images, 2)), 2)
    assert not np.allclose(flipped_back, probabilities(images), atol=1e-3)
    with_flip = predict_probabilities(model, images, scales=(1.0,), flip=True)
    np.testing.assert_allclose(ops.convert_to_numpy(with_flip), (probabilities(images) + flipped_back) / 2, atol=1e-5)

    # Scale 0.5: 16x24 -> 8x16 (multiples of the stride 8), predicted there, resized back to 16x24.
    small = ops.convert_to_numpy(ops.image.resize(images, (8, 16), interpolation="bilinear"))
    small_back = ops.convert_to_numpy(ops.image.resize(probabilities(small), (16, 24), interpolation="bilinear"))
    both = predict_probabilities(model, images, scales=(0.5, 1.0))
    np.testing.assert_allclose(ops.convert_to_numpy(both), (small_back + probabilities(images)) / 2, atol=1e-5)


def test_multi_scale_runs_the_fcn_at_every_size():
    # The FCN resizes its logits to a size read at run time; TensorFlow once retraced the predict
    # function for a second size with unknown height and width, where that failed.
    import kresnet
    from kresnet.transfer.segmentation.fcn import build_fcn

    backbone = kresnet.create_backbone("resnet18", output_stride=8, stage_depths=[1] * 4, stage_widths=[8, 8, 8, 8])
    model = build_fcn(backbone, num_classes=3, aux=False)
    images = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype("float32")
    probabilities = ops.convert_to_numpy(predict_probabilities(model, images, scales=(0.5, 1.0, 1.5), flip=True))
    assert probabilities.shape == (1, 32, 32, 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)


def _grey_level_dataset(root, count=2, height=32, width=40):
    """Images whose grey level is 60 x the class of each pixel; a corner labelled ignore."""
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for i in range(count):
        mask = np.zeros((height, width), np.uint8)
        mask[:, width // 2 :] = 1
        mask[height // 2 :, : width // 3] = 2
        grey = (mask * 60).astype(np.uint8)
        mask[:4, :4] = readers.IGNORE_LABEL
        Image.fromarray(np.repeat(grey[..., None], 3, axis=-1)).save(root / "images" / f"{i}.png")
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{i}.png")
    return readers.folder_samples(root, ["a", "b", "c"], image_suffix=".png")


def _grey_level_oracle():
    """A 1x1 conv whose argmax is the class nearest the pixel's grey level: logit_k = k * grey - 30 k^2."""
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(3, 1)])
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    classes = np.arange(3, dtype=np.float32)
    kernel[0, 0, 0] = classes * imagenet_stats.STD_RGB[0]  # grey = normalized * std + mean
    model.layers[0].set_weights([kernel, classes * imagenet_stats.MEAN_RGB[0] - 30.0 * classes**2])
    return model


def test_multi_scale_flip_scores_at_original_resolution(tmp_path):
    # 32x40 images are evaluated inside padded 24x24 squares (valid 19x24) at scales 0.75..1.25 with
    # flips; an oracle then scores near 1 only if each prediction is cropped to the image and resized back.
    samples = _grey_level_dataset(tmp_path)
    dataset = pipeline.eval_dataset(samples, eval_size=24, batch_size=2)
    matrix = evaluate(_grey_level_oracle(), dataset, 3, scales=(0.75, 1.0, 1.25), flip=True, log_every=0)
    labelled = 2 * (32 * 40 - 16)
    assert matrix.counts.sum() == labelled  # original resolution, ignored corner left out
    assert matrix.pixel_accuracy() > 0.95 and matrix.mean_iou() > 0.9, matrix.counts  # 0.98 / 0.96: blur at borders
