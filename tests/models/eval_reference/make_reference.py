"""Make the eval-transform reference of test_pretrained_eval_transform (run once; outputs are committed).

Two generated images (no third-party data), and for each the pixels of timm's eval transform of
`resnet50d.gluon_in1k` (224 px, crop_pct 0.875, bicubic) as timm computes them: torchvision's
`Resize(256)` on a PIL image (PIL bicubic, shorter side 256, longer side truncated), then
`CenterCrop(224)`. Written with PIL alone, so it needs neither torch nor timm:

    python tests/models/eval_reference/make_reference.py
"""

import pathlib

import numpy as np
from PIL import Image

HERE = pathlib.Path(__file__).parent
SIZES = {"landscape": (301, 259), "portrait": (259, 333)}  # (width, height), odd margins on purpose


def make_image(width, height, seed):
    """Smooth colour ramps, a disc and a few sharp bars: edges and gradients, compressible as PNG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([255 * x / width, 255 * y / height, 127 + 120 * np.sin((x + y) / 17.0)], axis=-1)
    disc = (x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (min(width, height) * 0.2) ** 2
    image[disc] = rng.integers(0, 256, 3)
    for left in rng.integers(0, width - 8, 5):
        image[:, left : left + 3] = rng.integers(0, 256, 3)
    return Image.fromarray(np.clip(np.round(image), 0, 255).astype(np.uint8))


def timm_eval_pixels(image, eval_size=224, crop_pct=0.875):
    resize = int(eval_size / crop_pct)
    width, height = image.size
    if width <= height:
        new = (resize, int(resize * height / width))
    else:
        new = (int(resize * width / height), resize)
    resized = np.asarray(image.resize(new, Image.BICUBIC))
    top = int(round((new[1] - eval_size) / 2.0))
    left = int(round((new[0] - eval_size) / 2.0))
    return resized[top : top + eval_size, left : left + eval_size]


if __name__ == "__main__":
    arrays = {}
    for seed, (stem, (width, height)) in enumerate(SIZES.items()):
        image = make_image(width, height, seed)
        image.save(HERE / f"{stem}.png")
        arrays[stem] = timm_eval_pixels(image)
    np.savez_compressed(HERE / "resnet50d.gluon_in1k_eval_pixels.npz", **arrays)
