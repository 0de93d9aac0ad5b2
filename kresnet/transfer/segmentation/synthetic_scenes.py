"""A segmentation dataset of kresnet's synthetic scenes, written in the image/mask folder layout.

Layout: `images/<id>.png`, `masks/<id>.png` (palette PNG: 0 = background, k + 1 = object
class k), `splits/train.txt` and `splits/val.txt`. Images are PNG, not JPEG, so the
pixels the model sees are exactly the generated ones.
"""

import pathlib

from PIL import Image

from kresnet.data.synthetic import SceneGenerator, class_name
from kresnet.data.synthetic_dataset import GENERATOR_VERSION, build_once, cache_dir
from kresnet.transfer.segmentation.overlay import palette



def synthetic_class_names(num_classes):
    """"background" then the generator's name of each object class."""
    return ["background"] + [class_name(k, num_classes) for k in range(num_classes)]


def write_scene_dataset(out_dir, num_classes=4, num_train=400, num_val=100, image_size=64, seed=0):
    """Generate scenes with masks into `out_dir`; train ids come first, val ids follow, never shared.

    Args:
        out_dir: str or path. The folder to fill.
        num_classes: int. Object classes (the dataset has `num_classes + 1` with background).
        num_train: int. Training scenes.
        num_val: int. Validation scenes.
        image_size: int. Image side in pixels.
        seed: int. Generator seed.

    Returns:
        `out_dir` as a `pathlib.Path`.
    """
    root = pathlib.Path(out_dir)
    for folder in ("images", "masks", "splits"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    generator = SceneGenerator(num_classes=num_classes, image_size=image_size, seed=seed)
    colours = palette(num_classes + 1).reshape(-1).tolist()
    ids = [f"scene_{i:06d}" for i in range(num_train + num_val)]
    for index, scene_id in enumerate(ids):
        scene = generator.scene(index)
        Image.fromarray(scene.image).save(root / "images" / f"{scene_id}.png")
        mask = Image.fromarray(scene.mask, mode="P")
        mask.putpalette(colours)
        mask.save(root / "masks" / f"{scene_id}.png")
    (root / "splits" / "train.txt").write_text("\n".join(ids[:num_train]) + "\n")
    (root / "splits" / "val.txt").write_text("\n".join(ids[num_train:]) + "\n")
    return root


def scene_dataset(root="", num_classes=4, num_train=400, num_val=100, image_size=64, seed=0):
    """The synthetic scene dataset for these settings, generated on first use.

    Generation is atomic (see `kresnet.data.synthetic_dataset.build_once`).

    Args:
        root: str. Where to keep it; "" means the kresnet cache (`$KRESNET_CACHE`).
        num_classes, num_train, num_val, image_size, seed: see `write_scene_dataset`.
    """
    if root:
        target = pathlib.Path(root)
    else:
        key = f"synthetic-seg-v{GENERATOR_VERSION}-c{num_classes}-n{num_train}-v{num_val}-s{image_size}-seed{seed}"
        target = cache_dir() / key
    return build_once(target, lambda folder: write_scene_dataset(folder, num_classes, num_train, num_val, image_size, seed))
