"""Command functions of `kresnet transfer detect / evaluate / predict` for `task = "detection"` recipes.

Heavy imports (Keras, TensorFlow) happen inside the functions so `kresnet --help` stays fast.
"""

import pathlib

import typer

from kresnet.errors import UserError
from kresnet.data.image_files import image_files
from kresnet.runs.folder import (CLASSES, FINAL_WEIGHTS, METRICS, PREDICTIONS, default_run_dir,
                                load_run_weights, read_class_names, refuse_if_busy)


def _log(message):
    from kresnet.console import say

    say(message, err=True)


def _run_dir(recipe, out):
    return pathlib.Path(out) if out else default_run_dir(recipe)


def _weights(recipe, weights, out):
    path = pathlib.Path(weights) if weights else _run_dir(recipe, out) / FINAL_WEIGHTS
    if not path.is_file():
        raise UserError(f"{path}: detector weights not found (train with `kresnet transfer detect` or pass --weights)")
    return path


def _load_detector(config, num_classes, path):
    """The recipe's detector with the trained weights at `path`; a one-line error when they do not fit it."""
    from kresnet.runs.task import apply_run_settings
    from kresnet.transfer.detection.runner import build_detector, build_variables

    apply_run_settings(config)  # the precision the run trained in
    model = build_detector(config, num_classes, load_backbone=False)
    build_variables(model, config)
    return load_run_weights(model, path, "the recipe's detector (use the recipe.toml of the run that trained them)")


def _class_names(weights):
    """The class list a run wrote beside its weights (`<run>/classes.json`, also for `<run>/checkpoints/*`)."""
    names = read_class_names(weights)
    if names is None:
        raise UserError(f"{weights.parent / CLASSES}: class list not found beside the weights "
                        "(written by `kresnet transfer detect`)")
    return names


def _summary(metrics):
    """One line: VOC07 and area mAP (with the paper's number when the recipe has one), COCO AP for COCO data."""
    paper = f" (paper {metrics['expected_map']:.2f}%)" if metrics.get("expected_map") is not None else ""
    coco = f"  COCO AP {_percent(metrics['coco']['ap'])}" if "coco" in metrics else ""
    return f"VOC07 mAP {metrics['map_voc07']:.2f}%{paper}  area mAP {metrics['map_area']:.2f}%{coco}"


def _percent(value):
    """A COCO number for the console: pycocotools' -1 (no ground truth there) is stored as null, shown as n/a."""
    return "n/a" if value is None else f"{value:.2f}%"


def detect_command(recipe, overrides=(), out=None):
    """Train a Faster R-CNN from a recipe into a run folder (rerun resumes), then evaluate it.

    Args:
        recipe: path of a `task = "detection"` TOML recipe.
        overrides: `section.key=value` strings.
        out: run folder; default `runs/<recipe name>`.
    """
    from kresnet.transfer.detection.config import load_detection_recipe

    config = load_detection_recipe(recipe, overrides)
    run = _run_dir(recipe, out)
    refuse_if_busy(run)  # before the data and the model are built
    from kresnet.transfer.detection.trainer import train_detector

    metrics = train_detector(config, run, log=_log)
    typer.echo(f"{_summary(metrics)}  ->  {run / METRICS}")
    return metrics


def evaluate_command(recipe, overrides=(), weights=None, out=None):
    """Score trained detector weights on the recipe's test split; writes `eval_metrics.json`.

    Args:
        recipe: detection recipe path.
        overrides: `section.key=value` strings.
        weights: detector `.weights.h5`; default the run folder's `model.weights.h5`.
        out: run folder (default `runs/<recipe name>`), where the metrics go.
    """
    from kresnet.transfer.detection.config import load_detection_recipe
    from kresnet.runs.folder import EVAL_METRICS, RunFolder
    from kresnet.runs.report import evaluation_context
    from kresnet.transfer.detection.runner import evaluate_detector, load_splits

    config = load_detection_recipe(recipe, overrides)
    path = _weights(recipe, weights, out)
    with RunFolder(_run_dir(recipe, out)).hold() as run:
        _, test = load_splits(config, progress=_log)
        model = _load_detector(config, len(test.class_names), path)
        metrics = {**evaluate_detector(model, config, test), **evaluation_context(config.meta)}
        destination = run.write_json(EVAL_METRICS, metrics)
    typer.echo(f"{_summary(metrics)}  ->  {destination}")
    return metrics


def predict_command(recipe, images, overrides=(), weights=None, out=None, threshold=0.5):
    """Detect objects in image files (or folders of them); write copies with boxes, names and scores drawn.

    Args:
        recipe: detection recipe path.
        images: list of image files or folders.
        overrides: `section.key=value` strings.
        weights: detector `.weights.h5`; default the run folder's `model.weights.h5`.
        out: run folder (default `runs/<recipe name>`); images go to `<out>/predictions/`.
        threshold: float. Lowest score drawn.
    """
    from PIL import Image

    from kresnet.transfer.detection.config import load_detection_recipe
    from kresnet.transfer.detection.dataset import make_record
    from kresnet.transfer.detection.draw import draw_detections
    from kresnet.transfer.detection.inference import detect_records

    config = load_detection_recipe(recipe, overrides)
    path = _weights(recipe, weights, out)
    files = image_files(images)
    class_names = _class_names(path)
    records = []
    for file in files:
        try:
            with Image.open(file) as image:
                width, height = image.size
        except OSError as error:
            raise UserError(f"{file}: not a readable image ({error})") from None
        records.append(make_record(file.name, file, width, height, [], [], []))
    model = _load_detector(config, len(class_names), path)
    detections = detect_records(model, records, config.eval.batch_size, config.data.short_side,
                                config.data.max_side)
    destination = _run_dir(recipe, out) / PREDICTIONS
    destination.mkdir(parents=True, exist_ok=True)
    for file, detection in zip(files, detections):
        if detection is None:
            typer.echo(f"{file}: unreadable image (corrupt or truncated); skipped")
            continue
        target = destination / f"{file.stem}.png"
        count = draw_detections(file, detection, class_names, target, threshold)
        typer.echo(f"{target}: {count} object(s)")
    return destination



def _object_classes(config):
    """(names, torchvision label ids) of the recipe's object classes: COCO's category ids, else 1..K."""
    data = config.data
    if data.source == "coco":
        from kresnet.transfer.detection.coco import read_coco

        root = pathlib.Path(data.root)
        dataset = read_coco(root / data.coco_test_json, root / data.coco_test_images)
        return dataset.class_names, list(dataset.category_ids)
    if data.source == "synthetic":
        from kresnet.transfer.detection.synthetic_voc import synthetic_class_names

        names = synthetic_class_names(data.synthetic_classes)
    else:
        from kresnet.transfer.detection.voc import dataset_class_names

        names = list(data.class_names) or dataset_class_names([pathlib.Path(data.root)])
    return names, list(range(1, len(names) + 1))


def import_weights_command(recipe, path, overrides=(), out=None):
    """Import a torchvision `fasterrcnn_resnet50_fpn` state dict as the recipe's detector.

    Writes `<out>/model.weights.h5` and `<out>/classes.json`, which `evaluate` and `predict` read by default.
    torchvision's class indices are the dataset's label ids (COCO category ids); the recipe's classes pick
    theirs from the file.

    Args:
        recipe: detection recipe path (its `[model]` must describe the file's detector, e.g. the bundled
            `coco_faster_rcnn_resnet50_fpn_torchvision`).
        path: the `.pth` or `.safetensors` state dict.
        overrides: `section.key=value` strings.
        out: folder to write to; default `runs/<recipe name>`.
    """
    from kresnet.models.weight_import import load_state_dict
    from kresnet.transfer.imported_weights import write_imported_model
    from kresnet.transfer.detection.config import load_detection_recipe
    from kresnet.transfer.detection.runner import build_detector
    from kresnet.transfer.detection.torchvision_faster_rcnn import import_torchvision_faster_rcnn

    config = load_detection_recipe(recipe, overrides)
    state = load_state_dict(path)
    names, label_ids = _object_classes(config)
    model = build_detector(config, len(names), load_backbone=False)
    import_torchvision_faster_rcnn(model, state, label_ids)
    return write_imported_model(model, names, recipe, path, out)
