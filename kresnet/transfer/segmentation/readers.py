"""Segmentation dataset readers: ADE20K (SceneParsing), Pascal VOC and a generic image/mask folder.

Every reader lists (image, mask) file pairs and knows how to turn a stored mask into
class ids in `[0, num_classes)` with `IGNORE_LABEL` (255) for pixels that carry no class.
Masks are decoded with Pillow because palette PNGs (VOC, the folder layout) store class
ids as palette indices, which `tf.io.decode_png` would expand to colours.
"""

import csv
import dataclasses
import pathlib

import numpy as np
from PIL import Image

from kresnet.errors import UserError
from kresnet.transfer.class_list import read_class_list

IGNORE_LABEL = 255
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

VOC_CLASSES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip

ADE20K_NUM_CLASSES = 150
ADE20K_SPLIT_FOLDERS = {"train": "training", "val": "validation"}


@dataclasses.dataclass(frozen=True)
class SegmentationSamples:
    """A list of image/mask file pairs and the rule that maps stored mask values to class ids.

    Args:
        image_paths: list of str. One image file per sample.
        mask_paths: list of str. The mask of each image, same order.
        class_names: list of str. Name of class id `i` at index `i`.
        reduce_zero_label: bool. Stored 0 means "ignore" and stored `k` means class `k - 1`
            (ADE20K's convention); otherwise stored values are class ids.
    """

    image_paths: list
    mask_paths: list
    class_names: list
    reduce_zero_label: bool = False

    @property
    def num_classes(self):
        return len(self.class_names)

    def __len__(self):
        return len(self.image_paths)


def read_mask(path, num_classes, reduce_zero_label=False, expected_size=None):
    """Decode one mask file into uint8 class ids with `IGNORE_LABEL` for unlabelled pixels.

    Args:
        path: str. A single-channel or palette PNG.
        num_classes: int. Valid class ids are `[0, num_classes)`.
        reduce_zero_label: bool. Map stored 0 to ignore and `k` to `k - 1`.
        expected_size: optional (height, width) of the image the mask belongs to.

    Raises:
        UserError: naming the file, if the mask is not single-channel, its size differs
            from `expected_size`, or it holds labels out of range.
    """
    path = str(path)
    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "P", "I", "I;16"):
                raise UserError(f"mask {path}: expected a single-channel or palette PNG, got mode {image.mode}")
            stored = np.asarray(image).astype(np.int64)
    except (OSError, SyntaxError) as error:
        raise UserError(f"mask {path}: cannot be read ({error})") from None
    if expected_size is not None and tuple(stored.shape) != tuple(int(s) for s in expected_size):
        raise UserError(
            f"mask {path}: size {stored.shape[1]}x{stored.shape[0]} (WxH) differs from its image "
            f"{int(expected_size[1])}x{int(expected_size[0])}"
        )
    if reduce_zero_label:
        labels = np.where(stored == 0, IGNORE_LABEL, stored - 1)
        bad = (labels != IGNORE_LABEL) & (labels >= num_classes)
        if bad.any():
            raise UserError(f"mask {path}: value {int(stored[bad].max())} out of range, expected 0..{num_classes}")
    else:
        labels = stored
        bad = (labels != IGNORE_LABEL) & ((labels < 0) | (labels >= num_classes))
        if bad.any():
            raise UserError(
                f"mask {path}: value {int(labels[bad].max())} out of range, "
                f"expected 0..{num_classes - 1} or {IGNORE_LABEL} (ignore)"
            )
    return labels.astype(np.uint8)


def read_image(path):
    """Decode one image file into uint8 RGB (H, W, 3) with Pillow (for predict and tests)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError) as error:
        raise UserError(f"image {path}: cannot be read ({error})") from None


def read_sample(samples, index):
    """Load image and validated mask number `index` of `samples` as NumPy uint8 arrays."""
    image = read_image(samples.image_paths[index])
    mask = read_mask(samples.mask_paths[index], samples.num_classes, samples.reduce_zero_label, image.shape[:2])
    return image, mask


def _require_dir(path, what):
    path = pathlib.Path(path)
    if not path.is_dir():
        raise UserError(f"{what} {path}: folder not found; put the dataset there or fix the recipe's data.root")
    return path


def _pair_masks(image_paths, mask_for):
    masks = []
    for image_path in image_paths:
        mask_path = mask_for(image_path)
        if not mask_path.is_file():
            raise UserError(f"mask {mask_path}: not found for image {image_path}")
        masks.append(str(mask_path))
    return [str(p) for p in image_paths], masks


def read_ade20k_class_names(root):
    """The 150 ADE20K class names, the first synonym of each.

    `objectInfo150.txt` (tab-separated, synonyms split by ", ") is preferred when present:
    `objectInfo150.csv` writes both spaces and synonym breaks as ";", so its first token
    shortens multi-word names ("chest of drawers" reads as "chest").

    Args:
        root: str. Folder holding `objectInfo150.txt` or `objectInfo150.csv`; numbered
            names `class_<i>` when neither is there.
    """
    root = pathlib.Path(root)
    if (root / "objectInfo150.txt").is_file():
        lines = (root / "objectInfo150.txt").read_text(encoding="utf-8").splitlines()[1:]
        names = [line.split("\t")[-1].split(",")[0].strip() for line in lines if line.strip()]
    elif (root / "objectInfo150.csv").is_file():
        with open(root / "objectInfo150.csv", newline="", encoding="utf-8") as handle:
            names = [row["Name"].split(";")[0].strip() for row in csv.DictReader(handle)]
    else:
        return [f"class_{i}" for i in range(ADE20K_NUM_CLASSES)]
    if len(names) != ADE20K_NUM_CLASSES:
        raise UserError(f"class table in {root}: {len(names)} names, expected {ADE20K_NUM_CLASSES}")
    return names


def ade20k_samples(root, split="train"):
    """ADE20K / SceneParsing: `images/[training|validation]/*.jpg` and `annotations/.../*.png`.

    Args:
        root: str. Folder holding `images/` and `annotations/` (ADEChallengeData2016), with
            per-split subfolders or, as in the SceneParsing sample, flat.
        split: str. "train" or "val"; ignored for a flat layout.
    """
    root = pathlib.Path(root)
    images_dir = _require_dir(root / "images", "ADE20K images")
    annotations_dir = _require_dir(root / "annotations", "ADE20K annotations")
    split_folder = ADE20K_SPLIT_FOLDERS.get(split, split)
    if (images_dir / split_folder).is_dir():
        images_dir, annotations_dir = images_dir / split_folder, annotations_dir / split_folder
    image_paths = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not image_paths:
        raise UserError(f"ADE20K images {images_dir}: no images found")
    images, masks = _pair_masks(image_paths, lambda p: annotations_dir / (p.stem + ".png"))
    return SegmentationSamples(images, masks, read_ade20k_class_names(root), reduce_zero_label=True)


def _read_split_list(path):
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"split list {path}: not found")
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids:
        raise UserError(f"split list {path}: empty, expected one sample id per line")
    return ids


def voc_class_names(root, class_names=None):
    """Class names of a VOC-layout segmentation folder: given, else its `class_names.txt`, else VOC's 21.

    Args:
        root: path. The folder holding `JPEGImages/`.
        class_names: list of str or None. The recipe's `data.class_names`.
    """
    if class_names:
        return list(class_names)
    return read_class_list(root) or list(VOC_CLASSES)


def voc_samples(root, split="train", class_names=None):
    """VOC-layout segmentation: a split list, `JPEGImages/<id>.jpg` and `SegmentationClass/<id>.png`.

    Pascal VOC2012 and labelme's export (`labelme2voc.py`, whose PNG masks are
    in `SegmentationClassPNG/` in older versions) both read.

    Args:
        root: str. A `VOC2012`-style folder, or a `VOCdevkit` folder holding `VOC2012`.
        split: str. A list in `ImageSets/Segmentation`, e.g. "train", "val",
            "trainval", or any `.txt` file path relative to `root`.
        class_names: list of str or None. See `voc_class_names`.
    """
    root = pathlib.Path(root)
    if not (root / "SegmentationClass").is_dir() and (root / "VOC2012").is_dir():
        root = root / "VOC2012"
    masks_dir = root / "SegmentationClass"
    if not any(masks_dir.glob("*.png")) and (root / "SegmentationClassPNG").is_dir():
        masks_dir = root / "SegmentationClassPNG"  # older labelme: .npy in SegmentationClass, PNGs here
    masks_dir = _require_dir(masks_dir, "VOC masks")
    split_file = root / split if split.endswith(".txt") else root / "ImageSets" / "Segmentation" / f"{split}.txt"
    ids = _read_split_list(split_file)
    image_paths = [root / "JPEGImages" / f"{image_id}.jpg" for image_id in ids]
    for path in image_paths:
        if not path.is_file():
            raise UserError(f"image {path}: listed in {split_file} but not found")
    images, masks = _pair_masks(image_paths, lambda p: masks_dir / (p.stem + ".png"))
    return SegmentationSamples(images, masks, voc_class_names(root, class_names))


def folder_samples(
    root,
    class_names,
    split_file=None,
    image_dir="images",
    mask_dir="masks",
    image_suffix=".jpg",
    mask_suffix=".png",
    reduce_zero_label=False,
):
    """A generic image/mask folder: `<image_dir>/<id><image_suffix>` with `<mask_dir>/<id><mask_suffix>`.

    Args:
        root: str. The dataset folder.
        class_names: list of str. Name of each class id; its length is the number of classes.
        split_file: optional str. A file (relative to `root`) listing one sample id per line;
            all images in `image_dir` when omitted.
        image_dir: str. Image folder relative to `root`.
        mask_dir: str. Mask folder relative to `root`.
        image_suffix: str. What follows the id in an image file name, e.g. "_img.jpg".
        mask_suffix: str. What follows the id in a mask file name, e.g. "_gt.png".
        reduce_zero_label: bool. Stored 0 is ignored and stored `k` is class `k - 1`.
    """
    root = pathlib.Path(root)
    images_dir = _require_dir(root / image_dir, "images")
    masks_dir = _require_dir(root / mask_dir, "masks")
    if not class_names:
        raise UserError("data.class_names: expected a non-empty list of class names")
    if split_file:
        ids = _read_split_list(root / split_file)
    else:
        ids = sorted(p.name[: -len(image_suffix)] for p in images_dir.iterdir() if p.name.endswith(image_suffix))
    if not ids:
        raise UserError(f"images {images_dir}: no files ending in {image_suffix}")
    image_paths = [images_dir / f"{sample_id}{image_suffix}" for sample_id in ids]
    for path in image_paths:
        if not path.is_file():
            raise UserError(f"image {path}: listed but not found")
    suffix_length = len(image_suffix)
    images, masks = _pair_masks(image_paths, lambda p: masks_dir / (p.name[:-suffix_length] + mask_suffix))
    return SegmentationSamples(images, masks, list(class_names), reduce_zero_label)
