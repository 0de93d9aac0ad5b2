"""Top-1/top-5 of saved weights on a validation set with the paper's eval transform."""

import pathlib

from kresnet.errors import UserError
from kresnet.runs.folder import load_run_weights


def evaluate_weights(
    weights, model_name=None, data=None, num_classes=None, image_size=None, resize=None, batch_size=64, stage_depths=None,
    stage_widths=None, pretrained=None,
):
    """Evaluate a run folder or a `.weights.h5` file; returns a metrics dict (percentages).

    Settings not given come from the run folder's `recipe.toml` when there is one,
    else the paper's (1000 classes, 224 crop after resizing the shorter side to 256).

    Args:
        weights: run folder (uses its model.weights.h5) or a .weights.h5 file.
        model_name: architecture name; required for a bare weights file.
        data: validation folder (or a root holding val/); default from the recipe.
        num_classes: label count.
        image_size: centre-crop size.
        resize: shorter side before the crop.
        batch_size: evaluation batch size.
        stage_depths: blocks per stage when they differ from the name's (as `import-weights --depths`).
        stage_widths: stage widths when they differ from the default (narrow imported weights).
        pretrained: a pretrained tag (`"resnet50d.gluon_in1k"`, timm's `"resnet50.a1_in1k"`, or `"gluon_in1k"` with `model_name`),
            Hub id or weights file, evaluated with the tag's own eval transform; `weights` is then None.
    """
    if pretrained is not None:
        return _evaluate_pretrained(pretrained, model_name, data, batch_size, stage_depths, image_size, resize)
    if weights is None:
        raise UserError("evaluate: pass a run folder or .weights.h5, or --weights TAG (see `kresnet models --pretrained`)")
    weights = pathlib.Path(weights)
    config, eval_preset = None, None
    if weights.is_dir():
        from kresnet.classification.config import load_classification_recipe
        from kresnet.runs.folder import FINAL_WEIGHTS, open_run

        record = open_run(weights, "classification", needs=(FINAL_WEIGHTS,))
        config = load_classification_recipe(record.recipe_path)
        weights = record.weights
    from kresnet.models.pretrained import STATE_DICT_SUFFIXES

    if weights.suffix in (*STATE_DICT_SUFFIXES, ".keras") and weights.is_file():
        raise UserError(f"{weights}: a {weights.suffix} file is read by --weights {weights} (with --model NAME); "
                        "the positional argument takes a run folder or a .weights.h5")
    if not weights.is_file() or not weights.name.endswith(".weights.h5"):
        raise UserError(f"{weights}: expected an existing .weights.h5 file or a run folder")
    if config is not None:
        from kresnet.classification.data import dataset_root
        from kresnet.classification.inference import run_eval_transform

        recorded = run_eval_transform(config)
        if image_size is None and resize is None and recorded.published:
            eval_preset = recorded  # the run validated with its starting weights' own transform
        model_name = model_name or config.model.name
        num_classes = num_classes or config.model.num_classes
        image_size = image_size or recorded.eval_size
        resize = resize or recorded.resize_size
        data = data or dataset_root(config)
    if model_name is None:
        raise UserError("--model: required with a bare .weights.h5 (e.g. --model resnet50d)")
    if data is None:
        raise UserError("--data: required with a bare .weights.h5 (the ImageNet val/ folder or its root)")
    num_classes, image_size = num_classes or 1000, image_size or 224
    resize = resize or round(image_size * 256 / 224)

    import kresnet

    dataset, info = _validation_data(data, batch_size, num_classes, eval_preset=eval_preset, image_size=image_size,
                                     resize_size=resize)
    stage_overrides = {"stage_depths": stage_depths, "stage_widths": stage_widths}
    if config is not None:
        stage_overrides = {
            "stage_depths": stage_depths or config.model.stage_depths,
            "stage_widths": stage_widths or config.model.stage_widths,
        }
    model = kresnet.create_model(model_name, num_classes=num_classes, **stage_overrides)
    load_run_weights(model, weights, f"{model_name} with {num_classes} classes")
    results = _measure(model, dataset, weights)
    return {**results, **_scored(info), "model": model_name, "weights": str(weights), "image_size": image_size, "resize": resize}


def _evaluate_pretrained(pretrained, model_name, data, batch_size, stage_depths, image_size=None, resize=None):
    """Top-1/top-5 of a pretrained tag with its own eval transform, beside the published numbers; a weights
    file or Hub id without a tag uses `image_size` / `resize` (default the paper's 224 / 256)."""
    from kresnet.classification.inference import pretrained_model_name
    from kresnet.models.pretrained import load_pretrained, resolve
    from kresnet.models.weight_import import cli_flags

    model_name = pretrained_model_name(str(pretrained), model_name, asked_by="--weights")
    if data is None:
        raise UserError("--data: required with --weights (the ImageNet val/ folder or its root)")
    preset = resolve(model_name, pretrained).preset
    if preset is not None and (image_size or resize):
        raise UserError(f"evaluate --weights {pretrained}: the tag sets its own eval transform; drop --image-size/--resize")
    if preset is None:
        image_size = image_size or 224
        resize = resize or round(image_size * 256 / 224)
    model = load_pretrained(model_name, pretrained, label="--weights", how_to_set=cli_flags(depths="--depths"), stage_depths=stage_depths)
    dataset, info = _validation_data(data, batch_size, model.num_classes, eval_preset=preset, image_size=image_size,
                                     resize_size=resize)
    metrics = {**_measure(model, dataset, pretrained), **_scored(info), "model": model_name, "weights": str(pretrained)}
    if preset is None:
        metrics.update(image_size=image_size, resize=resize)
    else:
        metrics.update(
            published_top1=preset.top1, published_top5=preset.top5, image_size=preset.eval_size, resize=preset.resize_size,
            interpolation=preset.interpolation, crop_pct=preset.crop_pct,
        )
    return metrics


def _validation_data(data, batch_size, num_classes, eval_preset=None, image_size=None, resize_size=None):
    from kresnet.data.pipeline import build_dataset
    from kresnet.data.sources import resolve_split

    source = resolve_split(pathlib.Path(data).expanduser(), "val")
    if not pathlib.Path(str(source).split("*")[0]).parent.exists():
        raise UserError(f"--data: {data} not found (expected a folder of class folders, or a root holding val/)")
    if eval_preset is not None:
        image_size, resize_size = eval_preset.eval_size, eval_preset.resize_size
    return build_dataset(
        source, training=False, batch_size=batch_size, image_size=image_size, resize_size=resize_size,
        num_classes=num_classes, eval_preset=eval_preset,
    )


def _scored(info):
    """Images scored and skipped, counted after the pass: unreadable files were dropped, not scored."""
    images = None if info.num_examples is None else info.num_examples - info.skipped.count
    return {"images": images, "skipped_images": info.skipped.count}


def _measure(model, dataset, weights):
    import math

    from kresnet.classification.build import top_k_metrics
    from kresnet.tricks.losses import classification_loss

    model.compile(loss=classification_loss(), metrics=top_k_metrics(model.num_classes))
    results = model.evaluate(dataset, verbose="auto", return_dict=True)
    if not math.isfinite(float(results["loss"])):
        raise UserError(f"{weights}: the evaluation loss is {float(results['loss'])}: the model's outputs are not "
                        "finite, so its top-1 and top-5 would mean nothing")
    return {"top1": float(results["top1"]) * 100, "top5": float(results["top5"]) * 100}
