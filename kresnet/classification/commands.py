"""`kresnet train`, `evaluate`, `predict`, `export` and `ablate`: thin wrappers over the classification package.

Heavy imports (Keras, TensorFlow) happen inside the functions so `kresnet --help` stays fast.
"""

import json
import pathlib
from typing import List, Optional

import typer

from kresnet.bundled_recipes import resolve_recipe
from kresnet.errors import UserError
from kresnet.recipe import set_option

DEFAULT_RECIPE = "demo"


def train(
    recipe: str = typer.Argument(DEFAULT_RECIPE, help="TOML recipe file, or a bundled name such as demo or r50d."),
    set_: List[str] = set_option(),
    out: Optional[pathlib.Path] = typer.Option(None, "--out", help="Run folder (default runs/<recipe name>); rerun to resume."),
):
    """Train a classifier from a recipe; the same command again resumes from the last checkpoint."""
    from kresnet.classification.config import load_classification_recipe

    path = resolve_recipe(recipe)
    config = load_classification_recipe(path, set_ or [])
    from kresnet.runs.folder import METRICS, default_run_dir, refuse_if_busy

    out = out or default_run_dir(path)
    refuse_if_busy(out, config.distribution)  # before any data is generated or read
    from kresnet.classification.data import build_training_data, dataset_root

    if config.data.source == "imagenet":
        dataset_root(config)  # One-line error before any heavy import when ImageNet is missing.
    from kresnet.classification.trainer import train as run_training

    progress = _generation_progress(config)
    from kresnet.runs.seeding import seed_run

    seed_run(config.train.seed)  # the data's seeded shuffles follow the global seed too: set it before them
    data = build_training_data(config, progress=progress)
    metrics = run_training(config, out, data=data)
    from kresnet.runs.distribution import job_position

    index, count = job_position()
    # Only process 0 writes the run folder; the others say so rather than claim its metrics.json.
    where = f"->  {out / METRICS}" if index == 0 else f"(process {index} of {count}: process 0 writes {out / METRICS})"
    typer.echo(f"top-1 {metrics['top1']:.2f}%  top-5 {metrics['top5']:.2f}%  {where}")


def evaluate(
    weights: Optional[pathlib.Path] = typer.Argument(None, help="A run folder, or a .weights.h5 (training run or imported)."),
    model: Optional[str] = typer.Option(None, help="Model name (default: from the run folder's recipe)."),
    data: Optional[pathlib.Path] = typer.Option(None, help="Validation folder or dataset root (default: the recipe's)."),
    num_classes: Optional[int] = typer.Option(None, help="Classes (default: the recipe's, else 1000)."),
    image_size: Optional[int] = typer.Option(None, help="Centre crop size (default: the recipe's, else 224)."),
    resize: Optional[int] = typer.Option(None, help="Shorter side before cropping (default: the recipe's, else 256)."),
    batch_size: int = typer.Option(64, help="Batch size."),
    json_out: Optional[pathlib.Path] = typer.Option(None, "--json", help="Also write the metrics to this file."),
    depths: Optional[str] = typer.Option(None, help="Blocks per stage when they differ from the name's, e.g. 1,1,1,1."),
    widths: Optional[str] = typer.Option(None, help="Stage widths when they differ from 64,128,256,512 (narrow imported weights)."),
    pretrained: Optional[str] = typer.Option(
        None, "--weights", help="Instead: a pretrained tag, e.g. resnet50d.gluon_in1k (see `kresnet models --pretrained`), with its own eval transform."
    ),
):
    """Top-1/top-5 of trained or imported weights with the paper's eval transform (resize, centre crop)."""
    from kresnet.models.commands import parse_depths, parse_widths
    from kresnet.classification.evaluation import evaluate_weights

    if pretrained is not None and weights is not None:
        raise UserError("evaluate: pass either a run folder / .weights.h5 or --weights TAG, not both")
    if pretrained is not None:
        ignored = [name for name, value in (("--num-classes", num_classes), ("--widths", widths)) if value is not None]
        if ignored:
            raise UserError(f"evaluate --weights {pretrained}: the classes and widths come from the weights; "
                            f"drop {', '.join(ignored)}")
    metrics = evaluate_weights(
        weights, model, data, num_classes, image_size, resize, batch_size, parse_depths(depths), parse_widths(widths),
        pretrained=pretrained,
    )
    skipped = f", {metrics['skipped_images']} unreadable skipped" if metrics.get("skipped_images") else ""
    published = f"; published {metrics['published_top1']:.2f}% / {metrics['published_top5']:.2f}%" if "published_top1" in metrics else ""
    typer.echo(
        f"top-1 {metrics['top1']:.2f}%  top-5 {metrics['top5']:.2f}%  ({metrics['images']} images scored{skipped}{published})"
    )
    if json_out:
        json_out.write_text(json.dumps(metrics, indent=2) + "\n")


def predict(
    weights: str = typer.Argument(
        ..., help="A classification run folder, a pretrained tag (resnet50d.gluon_in1k), an hf-hub: id, a keras-hub preset "
                  "folder, or a weights file (.weights.h5, .keras, .safetensors, .pth; with --model).",
    ),
    images: List[pathlib.Path] = typer.Argument(..., help="Image files (read whatever their suffix), and folders (their .jpg, .jpeg, .png and .bmp files)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name, for a weights file or a short tag (e.g. resnet50d)."),
    top_k: int = typer.Option(5, "--top-k", min=1, help="Classes shown per image."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document (for scripts) instead of text."),
    batch_size: int = typer.Option(32, min=1, help="Images per model call."),
    depths: Optional[str] = typer.Option(None, help="Blocks per stage when the weights' differ from the name's, e.g. 1,1,1,1."),
):
    """Top-k classes and probabilities of images, with the weights' own eval transform (as `kresnet evaluate`)."""
    from kresnet.classification.inference import load_for_inference
    from kresnet.classification.prediction import format_text, predict_images
    from kresnet.data.image_files import image_files
    from kresnet.models.commands import parse_depths

    files = image_files(images)  # a missing path fails before the model loads
    inference = load_for_inference(weights, model, stage_depths=parse_depths(depths))
    top_k = min(top_k, len(inference.class_names))

    def report_skip(path, reason):
        typer.echo(f"skipped {path}: {reason}", err=True)

    predictions = predict_images(inference, files, top_k=top_k, batch_size=batch_size, on_skip=report_skip)
    if not predictions.images:
        raise UserError(f"none of the {len(files)} files could be read as an image")
    if json_out:
        document = {
            "weights": weights, "model": inference.model.name, "num_classes": len(inference.class_names),
            "transform": inference.transform.get_config(), "predictions": predictions.images, "skipped": predictions.skipped,
        }
        typer.echo(json.dumps(document, indent=2))
        return
    typer.echo(f"{weights}: {inference.model.name}, {len(inference.class_names)} classes; {inference.transform.describe()}")
    for line in format_text(predictions):
        typer.echo(line)
    if predictions.skipped:
        typer.echo(f"{len(predictions.images)} images predicted, {len(predictions.skipped)} skipped (not images)")


def export(
    weights: str = typer.Argument(..., help="What `kresnet predict` takes: a run folder, a pretrained tag, an hf-hub: id, a preset or weights file."),
    out: pathlib.Path = typer.Argument(..., help="The keras-hub preset folder to write (must not exist yet)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name, for a weights file or a short tag."),
    depths: Optional[str] = typer.Option(None, help="Blocks per stage when the weights' differ from the name's, e.g. 1,1,1,1."),
):
    """Write a keras-hub preset: keras_hub.models.ImageClassifier.from_preset(OUT) is then the classifier with its eval transform."""
    from kresnet.classification.inference import load_for_inference
    from kresnet.models.commands import parse_depths
    from kresnet.models.keras_hub_classifier import save_preset

    if out.exists():
        raise UserError(f"{out}: already exists; choose a new folder")
    inference = load_for_inference(weights, model, stage_depths=parse_depths(depths))
    save_preset(inference.model, inference.transform, out, class_names=inference.class_names)
    typer.echo(f"{weights} -> {out} (keras-hub preset: {inference.model.name}, {len(inference.class_names)} classes; "
               f"{inference.transform.describe()})")


def ablate(
    rows: str = typer.Option("all", help="Comma-separated rows (see --list), or all."),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds."),
    recipe: str = typer.Option(DEFAULT_RECIPE, help="Base recipe the rows modify (e.g. demo, cifar10_ablation)."),
    data: Optional[pathlib.Path] = typer.Option(None, "--data", help="Folder dataset ROOT/{train,val}/<class>/ instead of the recipe's data."),
    set_: List[str] = set_option(),
    out: pathlib.Path = typer.Option(pathlib.Path("runs/ablation"), "--out", help="Folder for the runs and the table."),
    teacher: Optional[pathlib.Path] = typer.Option(
        None, "--teacher", help="A finished `kresnet train` run folder: the teacher of the distillation rows (which run only with one)."
    ),
    manifest: Optional[str] = typer.Option(
        None, "--manifest", help="A manifest.csv (`kresnet data cifar10` writes one) the dataset must match before training; "
        "none: no check [default: the recipe's own <recipe>.images.csv, if any]."),
    list_rows: bool = typer.Option(False, "--list", help="Print the rows and what they change, then exit."),
):
    """Run recipe rows x paired seeds; print top-1 per seed and the paired difference to the row it extends, with 95% intervals."""
    from kresnet.classification import ablation

    if list_rows:
        for name, overrides in ablation.ROWS.items():
            extends = f"[on {ablation.EXTENDS[name]}] " if ablation.EXTENDS[name] else ""
            distils = " + the --teacher run's model and weights" if name in ablation.TEACHER_ROWS else ""
            typer.echo(f"{name:18s} {extends}{' '.join(overrides)}{distils}")
        return
    overrides = (ablation.folder_dataset_overrides(data) if data else []) + list(set_ or [])
    recipe_path = resolve_recipe(recipe)
    table = ablation.run_ablation(
        recipe_path, ablation.parse_rows(rows, with_teacher=teacher is not None),
        [_int(s, "--seeds") for s in seeds.split(",")], overrides, out, teacher=teacher,
        manifest=ablation.recipe_manifest(recipe_path, manifest),
    )
    typer.echo(table)


def _int(text, option):
    try:
        return int(text)
    except ValueError:
        raise UserError(f"{option}: expected comma-separated integers, got {text!r}") from None


def _generation_progress(config):
    if config.data.source != "synthetic":
        return None
    total = config.data.synthetic_classes * (config.data.synthetic_per_class + config.data.synthetic_val_per_class)

    def report(done):
        if done == 1 or done % 500 == 0 or done == total:
            typer.echo(f"generating synthetic dataset: {done}/{total} images", err=True)

    return report
