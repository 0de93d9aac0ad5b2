"""Write the synthetic classification dataset in the ILSVRC folder layout, once, and reuse it.

`OUT/{train,val}/<class_dir>/*.JPEG`, with class folders named `s0000_circle_solid`,
`s0001_square_solid`, ... so that sorted folder order is the class index, exactly
as for ImageNet's synsets. The images therefore go through the same reader and
augmentation as real data.
"""

import os
import pathlib
import shutil
import tempfile

from PIL import Image

from kresnet.data.synthetic import SceneGenerator, class_name

# Bump when the generator's pixels change, so stale caches are not reused.
GENERATOR_VERSION = 1
_COMPLETE_MARKER = ".complete"


def class_dir_name(class_index, num_classes):
    """Folder name of a synthetic class; sorted folder names follow class indices."""
    return f"s{class_index:04d}_{class_name(class_index, num_classes)}"


def write_classification_dataset(out_dir, num_classes=10, per_class=100, image_size=64, seed=0, val_per_class=None, progress=None):
    """Generate the dataset as JPEG files in the ILSVRC folder layout.

    Train sample i of class k is generator index `i * num_classes + k`; validation
    samples continue after the last training index, so the splits never share an image.

    Args:
        out_dir: str or path. Root to create; `train/` and `val/` go under it.
        num_classes: int. Number of classes.
        per_class: int. Training images per class.
        image_size: int. Image side in pixels.
        seed: int. Generator seed.
        val_per_class: int or None. Validation images per class; `None` means
            `max(1, per_class // 5)`.
        progress: callable or None. Called with the number of images written so far.

    Returns:
        The dataset root as a `pathlib.Path`.
    """
    root = pathlib.Path(out_dir)
    val_per_class = max(1, per_class // 5) if val_per_class is None else int(val_per_class)
    generator = SceneGenerator(num_classes=num_classes, image_size=image_size, seed=seed)
    names = [class_dir_name(k, num_classes) for k in range(num_classes)]
    splits = (("train", 0, per_class), ("val", per_class, val_per_class))
    written = 0
    for split, first, count in splits:
        for name in names:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for i in range(first, first + count):
            for k, name in enumerate(names):
                image, _ = generator.classification_sample(i * num_classes + k)
                Image.fromarray(image).save(root / split / name / f"{name}_{i:06d}.JPEG", quality=90)
                written += 1
                if progress is not None:
                    progress(written)
    return root


def cache_dir():
    """Where generated datasets are kept: `$KRESNET_CACHE`, default `~/.cache/kresnet`."""
    return pathlib.Path(os.environ.get("KRESNET_CACHE") or pathlib.Path.home() / ".cache" / "kresnet")


def cached_classification_dataset(num_classes=10, per_class=100, image_size=64, seed=0, val_per_class=None, progress=None):
    """The synthetic dataset for these settings from the cache, generated on first use.

    Generation goes to a temporary folder that is renamed into place when complete,
    so an interrupted run never leaves a half-written dataset behind to be reused.

    Args:
        num_classes: int. Number of classes.
        per_class: int. Training images per class.
        image_size: int. Image side in pixels.
        seed: int. Generator seed.
        val_per_class: int or None. Validation images per class (see `write_classification_dataset`).
        progress: callable or None. Called with the number of images written so far.

    Returns:
        The dataset root (`pathlib.Path`) holding `train/` and `val/`.
    """
    val_per_class = max(1, per_class // 5) if val_per_class is None else int(val_per_class)
    key = f"synthetic-v{GENERATOR_VERSION}-c{num_classes}-n{per_class}-v{val_per_class}-s{image_size}-seed{seed}"
    return build_once(
        cache_dir() / key,
        lambda folder: write_classification_dataset(folder, num_classes, per_class, image_size, seed, val_per_class, progress),
    )


def build_once(target, write):
    """`target`, written by `write(folder)` the first time and reused afterwards.

    Generation goes to a temporary folder beside `target` that is renamed into place
    when complete, so an interrupted run never leaves a half-written dataset behind to
    be reused, and two processes building the same dataset keep one complete copy.

    Args:
        target: pathlib.Path. The finished folder.
        write: callable. Fills the folder it is given.
    """
    target = pathlib.Path(target)
    if (target / _COMPLETE_MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        write(scratch)
        (scratch / _COMPLETE_MARKER).touch()
        scratch.chmod(0o755)  # mkdtemp makes it private; the cache is readable like any dataset
        try:
            scratch.rename(target)
        except OSError:
            # Another process finished first (or a stale partial folder exists): keep the complete one.
            if not (target / _COMPLETE_MARKER).exists():
                shutil.rmtree(target, ignore_errors=True)
                scratch.rename(target)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return target
