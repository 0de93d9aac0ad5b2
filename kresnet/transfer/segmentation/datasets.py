"""From a recipe's `[data]` table to the `SegmentationSamples` of a split."""

from kresnet.errors import UserError
from kresnet.transfer.segmentation import readers
from kresnet.transfer.segmentation.synthetic_scenes import scene_dataset, synthetic_class_names


def load_samples(data, split):
    """The samples of `split` ("train" or "val") for the recipe's `[data]` table; none is a `UserError`.

    Args:
        data: the recipe's `Data` table.
        split: str. "train" or "val"; mapped to `data.train_split` / `data.val_split`.
    """
    samples = _read_samples(data, split)
    if not len(samples):
        key = "train_split" if split == "train" else "val_split"
        raise UserError(f"data.{key} {getattr(data, key)!r}: no samples under {data.root}")
    return samples


def _read_samples(data, split):
    name = data.train_split if split == "train" else data.val_split
    if data.source == "ade20k":
        return readers.ade20k_samples(data.root, name)
    if data.source == "voc":
        return readers.voc_samples(data.root, name, data.class_names or None)
    if data.source == "folder":
        return readers.folder_samples(
            data.root,
            data.class_names,
            split_file=name or None,
            image_dir=data.image_dir,
            mask_dir=data.mask_dir,
            image_suffix=data.image_suffix,
            mask_suffix=data.mask_suffix,
            reduce_zero_label=data.reduce_zero_label,
        )
    root = scene_dataset(
        data.root,
        data.synthetic_classes,
        data.synthetic_train_images,
        data.synthetic_val_images,
        data.synthetic_image_size,
        data.synthetic_seed,
    )
    return readers.folder_samples(
        root,
        synthetic_class_names(data.synthetic_classes),
        split_file=f"splits/{split}.txt",
        image_suffix=".png",
    )
