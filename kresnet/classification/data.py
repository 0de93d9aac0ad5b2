"""Recipe `[data]` -> the training and validation streams (`kresnet.data.build_dataset`)."""

import dataclasses
import pathlib

from kresnet.errors import UserError


@dataclasses.dataclass
class TrainingData:
    """What the trainer consumes.

    Args:
        train: callable(first_step) -> the endless dataset of (images, one-hot labels) from that optimizer
            step of the run on, unmixed (the trainer adds mixup).
        val: finite validation dataset (paper eval transform), one-hot labels; under data-parallel
            training also weights (0 for the padding of the last batch, so each image counts once).
        steps_per_epoch: optimizer steps per epoch.
        validation_steps: batches per validation pass, or None for the whole set.
        num_classes: label width.
        skipped: dict {"train": SkipCounter, "val": SkipCounter} of unreadable images dropped.
        class_names: the class folder names in label order, when the source names them.
    """

    train: object
    val: object
    steps_per_epoch: int
    validation_steps: int | None
    num_classes: int
    skipped: dict = None
    class_names: list = None


def dataset_root(config, progress=None):
    """The folder holding train/ and val/ (synthetic: generated into the cache on first use).

    Args:
        config: the whole recipe.
        progress: optional callable(images written) while generating synthetic data.
    """
    data = config.data
    if data.source == "synthetic":
        from kresnet.data.synthetic_dataset import cached_classification_dataset

        return cached_classification_dataset(
            num_classes=data.synthetic_classes,
            per_class=data.synthetic_per_class,
            image_size=data.synthetic_image_size,
            seed=data.synthetic_seed,
            val_per_class=data.synthetic_val_per_class,
            progress=progress,
        )
    root = pathlib.Path(data.root).expanduser()
    if not root.exists():
        raise UserError(
            f"data.root: ImageNet not found at {root}: put the ILSVRC-2012 train/ and val/ class folders "
            "(or TFRecord shards, see `kresnet data --help`) there or pass --set data.root=PATH; "
            "to try kresnet without ImageNet run `kresnet train recipes/demo.toml`"
        )
    return root


def build_training_data(config, progress=None):
    """Training (unmixed; the trainer adds mixup) and validation datasets for the recipe.

    Args:
        config: the whole recipe.
        progress: optional callable while generating synthetic data.
    """
    from kresnet.data.pipeline import build_dataset
    from kresnet.runs.fit import epoch_steps
    from kresnet.data.sources import resolve_split
    from kresnet.runs.distribution import input_shard

    root = dataset_root(config, progress)
    d, t = config.data, config.train
    # Each process of a multi-host job reads its own share of every global batch.
    shard = input_shard(config.distribution)
    if t.batch_size % shard[0]:
        raise UserError(f"train.batch_size={t.batch_size} must be divisible by the {shard[0]} processes of the job")
    common = dict(batch_size=t.batch_size // shard[0], shard=shard, data_format=config.model.data_format)
    train_source, val_source = resolve_split(root, "train"), resolve_split(root, "val")

    train_options = dict(training=True, seed=t.seed, repeat=True, min_crop_area=d.min_crop_area,
                         image_size=d.image_size, **common)
    train, info = build_dataset(train_source, num_classes=config.model.num_classes or None, **train_options)
    if not config.model.num_classes:
        # `model.num_classes = 0`: the classes are the training folder's (fine-tuning on a user's photos).
        if info.num_classes < 2:
            raise UserError(f"{train_source}: {info.num_classes} class folder; a classifier needs at least 2 classes "
                            "(one folder of images per class)")
        config.model.num_classes = info.num_classes

    def train_from(first_step):
        if first_step == 0:
            return train
        return build_dataset(train_source, num_classes=info.num_classes, skip_counter=info.skipped,
                             first_batch=first_step, **train_options)[0]

    # Data-parallel devices split every batch evenly, the last one included: it is padded (weight 0).
    padded = config.distribution.strategy == "data_parallel"
    val, val_info = build_dataset(val_source, training=False, pad_last_batch=padded, num_classes=config.model.num_classes,
                                  **eval_transform(config), **common)
    if info.num_classes != config.model.num_classes:
        raise UserError(f"model.num_classes: the dataset at {root} has {info.num_classes} classes, recipe says {config.model.num_classes}")
    try:
        steps = epoch_steps(info.num_examples or None, t.batch_size, t.steps_per_epoch)
    except UserError as error:
        raise UserError(f"{error} ({train_source})") from None
    validation_steps = t.validation_steps or val_info.num_batches
    if validation_steps is None and val_info.num_examples:
        # A known count keeps Keras from probing the end of the (unknown-cardinality) set.
        validation_steps = -(-val_info.num_examples // t.batch_size)
    return TrainingData(train_from, val, steps, validation_steps, info.num_classes,
                        skipped={"train": info.skipped, "val": val_info.skipped}, class_names=info.class_names)


def eval_transform(config):
    """`build_dataset` arguments of the validation transform: the recipe's size and resize, or with
    `data.eval_transform = "weights"` those of the `model.weights` tag (size, crop, interpolation, mean/std), or
    of the run folder `model.weights` names."""
    d = config.data
    if d.eval_transform == "recipe":
        return {"image_size": d.image_size, "resize_size": d.eval_resize}
    from kresnet.models.pretrained import resolve
    from kresnet.runs.folder import FINAL_WEIGHTS, RECIPE, open_run

    if (pathlib.Path(config.model.weights).expanduser() / RECIPE).is_file():
        from kresnet.classification.config import load_classification_recipe

        record = open_run(config.model.weights, "classification", needs=(FINAL_WEIGHTS,), asked_by="model.weights")
        return eval_transform(load_classification_recipe(record.recipe_path))

    try:
        preset = resolve(config.model.name, config.model.weights).preset
    except UserError as error:
        raise UserError(f"model.weights={config.model.weights!r}: {error}") from None
    if preset is None:
        raise UserError(f"data.eval_transform = \"weights\": model.weights {config.model.weights!r} is not a pretrained "
                        "tag with a published eval transform; set data.eval_transform = \"recipe\"")
    return {"image_size": preset.eval_size, "resize_size": preset.resize_size, "eval_preset": preset}
