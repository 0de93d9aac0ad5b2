"""`kresnet transfer segment | evaluate | predict` for segmentation recipes.

Heavy imports (Keras, TensorFlow) happen inside the functions so `kresnet --help` stays fast.
"""

import os
import pathlib

from kresnet.errors import UserError
from kresnet.data.image_files import image_files
from kresnet.runs.folder import (EVAL_METRICS, FINAL_WEIGHTS, METRICS, PREDICTIONS, default_run_dir,
                                load_run_weights, read_class_names, refuse_if_busy)


def _quiet_tensorflow():
    # tf.data logs a Python traceback for a bad mask before our one-line error; keep stderr clean.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def segment_command(recipe, overrides=(), out=None):
    """Train the FCN of a segmentation recipe into its run folder, resuming a stopped run.

    Args:
        recipe: path of the TOML recipe.
        overrides: `section.key=value` strings.
        out: run folder; `runs/<recipe stem>` by default.
    """
    _quiet_tensorflow()
    from kresnet.transfer.segmentation.config import load_segmentation_recipe

    config = load_segmentation_recipe(recipe, overrides)
    run = pathlib.Path(out or default_run_dir(recipe))
    refuse_if_busy(run)  # before the data and the model are built
    from kresnet.transfer.segmentation.train import train_segmentation

    metrics = train_segmentation(config, run)
    print(f"pixAcc {metrics['pixel_accuracy']:.2f}%  mIoU {metrics['mean_iou']:.2f}%  ({run / METRICS})")
    return metrics


def _weights_path(recipe, weights, out):
    weights = pathlib.Path(weights) if weights else pathlib.Path(out or default_run_dir(recipe)) / FINAL_WEIGHTS
    if not weights.is_file():
        raise UserError(f"--weights {weights}: not found (train first with `kresnet transfer segment {recipe}`)")
    return weights


def _load_segmenter(config, weights, num_classes):
    from kresnet.runs.task import apply_run_settings
    from kresnet.transfer.segmentation.train import build_segmenter

    apply_run_settings(config)  # the precision the run trained in
    config.model.backbone_weights = ""  # the segmenter's own weights replace the backbone's
    model = build_segmenter(config.model, num_classes)
    return load_run_weights(model, weights, "the recipe's segmenter (use the recipe.toml of the run that trained them)")


def _trained_segmenter(config, recipe, weights, out):
    from kresnet.transfer.segmentation.datasets import load_samples

    weights = _weights_path(recipe, weights, out)
    samples = load_samples(config.data, "val")
    return _load_segmenter(config, weights, samples.num_classes), samples


def _class_names(config, weights):
    """The classes a run was trained on: its `classes.json` (beside the weights or above), else the recipe's dataset."""
    from kresnet.transfer.segmentation.datasets import load_samples

    names = read_class_names(weights)
    return names if names is not None else load_samples(config.data, "val").class_names


def evaluate_command(recipe, overrides=(), weights=None, out=None):
    """Score trained segmenter weights on the recipe's validation split; prints and returns the metrics.

    Args:
        recipe: path of the TOML recipe.
        overrides: `section.key=value` strings (e.g. `eval.scales=[0.75,1.0,1.25]`, `eval.flip=true`).
        weights: the segmenter's `.weights.h5`; the run folder's `model.weights.h5` by default.
        out: run folder (where to look for weights and write `eval_metrics.json`).
    """
    _quiet_tensorflow()
    from kresnet.transfer.segmentation.config import load_segmentation_recipe
    from kresnet.transfer.segmentation.train import evaluate_segmenter

    from kresnet.runs.folder import RunFolder
    from kresnet.runs.report import evaluation_context

    config = load_segmentation_recipe(recipe, overrides)
    with RunFolder(pathlib.Path(out or default_run_dir(recipe))).hold() as run:
        model, samples = _trained_segmenter(config, recipe, weights, out)
        metrics = {**evaluate_segmenter(model, config, samples), **evaluation_context(config.meta)}
        destination = run.write_json(EVAL_METRICS, metrics)
    print(f"pixAcc {metrics['pixel_accuracy']:.2f}%  mIoU {metrics['mean_iou']:.2f}%  ({destination})")
    return metrics


def predict_command(recipe, images, overrides=(), weights=None, out=None):
    """Segment images and write `<stem>_overlay.png` (colours over the photo) and `<stem>_mask.png`.

    The class names come from `classes.json` beside the weights (written by `segment`), so
    predicting needs no dataset; for weights without one, from the recipe's dataset.

    Args:
        recipe: path of the TOML recipe (model, classes, eval size, scales, flip).
        images: image files or folders of images.
        overrides: `section.key=value` strings.
        weights: the segmenter's `.weights.h5`; the run folder's `model.weights.h5` by default.
        out: run folder; the PNGs go to `<out>/predictions/`.
    """
    _quiet_tensorflow()
    import numpy as np
    from PIL import Image

    from kresnet.transfer.segmentation.config import load_segmentation_recipe
    from kresnet.transfer.segmentation.evaluation import predict_labels, predict_probabilities, resize_for_eval
    from kresnet.transfer.segmentation.overlay import overlay, palette
    from kresnet.transfer.segmentation.readers import read_image

    config = load_segmentation_recipe(recipe, overrides)
    files = image_files(images)
    weights = _weights_path(recipe, weights, out)
    class_names = _class_names(config, weights)
    model = _load_segmenter(config, weights, len(class_names))
    target = pathlib.Path(out or default_run_dir(recipe)) / PREDICTIONS
    target.mkdir(parents=True, exist_ok=True)
    colours = palette(len(class_names)).reshape(-1).tolist()
    written = []
    for path in files:
        image = read_image(path)
        padded, valid_size = resize_for_eval(image, config.eval.size)
        probabilities = predict_probabilities(model, padded[None], config.eval.scales, config.eval.flip)
        labels = predict_labels(probabilities[0], valid_size, image.shape[:2])
        Image.fromarray(overlay(image, labels, len(class_names))).save(target / f"{path.stem}_overlay.png")
        mask = Image.fromarray(labels, mode="P")
        mask.putpalette(colours)
        mask.save(target / f"{path.stem}_mask.png")
        present = [class_names[c] for c in np.unique(labels)]
        print(f"{path} -> {target / (path.stem + '_overlay.png')}  classes: {', '.join(present)}")
        written.append(target / f"{path.stem}_overlay.png")
    return written


def _class_names_without_data(config):
    """The recipe's class names: `data.class_names`, VOC's (or the VOC folder's list), else the dataset's."""
    from kresnet.transfer.segmentation.datasets import load_samples
    from kresnet.transfer.segmentation.readers import voc_class_names

    if config.data.class_names:
        return list(config.data.class_names)
    if config.data.source == "voc":
        return voc_class_names(config.data.root)
    return load_samples(config.data, "val").class_names


def import_weights_command(recipe, path, overrides=(), out=None):
    """Import a torchvision FCN state dict (`fcn_resnet50`) as the recipe's segmenter.

    Writes `<out>/model.weights.h5` and `<out>/classes.json`, which `evaluate` and `predict` read by default.

    Args:
        recipe: segmentation recipe path (its `[model]` must describe the file's FCN, e.g. the bundled
            `voc_fcn_resnet50_torchvision`).
        path: the `.pth` or `.safetensors` state dict.
        overrides: `section.key=value` strings.
        out: folder to write to; default `runs/<recipe name>`.
    """
    from kresnet.models.weight_import import load_state_dict
    from kresnet.transfer.imported_weights import write_imported_model
    from kresnet.transfer.segmentation.config import load_segmentation_recipe
    from kresnet.transfer.segmentation.torchvision_fcn import import_torchvision_fcn, torchvision_fcn_classes
    from kresnet.transfer.segmentation.train import build_segmenter

    _quiet_tensorflow()
    config = load_segmentation_recipe(recipe, overrides)
    state = load_state_dict(path)
    names = _class_names_without_data(config)
    if len(names) != torchvision_fcn_classes(state):
        raise UserError(f"{path}: an FCN of {torchvision_fcn_classes(state)} classes, but the recipe's data has "
                        f"{len(names)} ({', '.join(names[:4])}, ...); set data.class_names to the file's classes")
    config.model.backbone_weights = ""  # the FCN's own weights carry the backbone
    model = import_torchvision_fcn(build_segmenter(config.model, len(names)), state)
    return write_imported_model(model, names, recipe, path, out)
