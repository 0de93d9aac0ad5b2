"""From what a user names to a classifier ready to predict: its model, its eval transform and its class names.

One reader for every source `kresnet predict`, `kresnet export` and `kresnet.load_for_inference` take:
a classification run folder (its recipe, `model.weights.h5` and `classes.json`), a pretrained tag or
Hub id (the tag's published eval transform, ImageNet's class names), a keras-hub preset folder
(kresnet's export or keras-hub's ResNet), or a weights file (`.weights.h5`, `.keras`, `.safetensors`,
`.pth`, with `model_name`). A transform not recorded anywhere is the paper's (224 crop of 256).
"""

import json
import pathlib
from typing import NamedTuple

from kresnet.errors import UserError
from kresnet.models.presets import HUB_PREFIX
from kresnet.runs.folder import CLASSES, FINAL_WEIGHTS, RECIPE, RunRecord, open_run

IMAGENET_CLASSES = 1000
WEIGHTS_SUFFIXES = (".h5", ".keras", ".safetensors", ".pth", ".pt", ".bin")


class Inference(NamedTuple):
    """A classifier ready to predict: unpack it as `model, transform, class_names`.

    Attributes:
        model: `ResNetClassifier` returning float32 logits.
        transform: `kresnet.data.eval_transform.EvalTransform`; `transform(path_or_array)` gives one input.
        class_names: list of str, the name of each output index.
    """

    model: object
    transform: object
    class_names: list


def load_for_inference(source, model_name=None, **kwargs):
    """A classifier, its eval transform and its class names, from a run folder, a tag, a preset folder or a file.

    As timm's `create_model(pretrained=True)` + `resolve_data_config` + `create_transform`: the transform
    is the one the weights are evaluated with (a tag's own, a run's recipe's), the same function
    `kresnet evaluate` maps over a validation set.

    Args:
        source: a classification run folder; a pretrained tag (`"resnet50d.gluon_in1k"`, or `"gluon_in1k"`
            with `model_name`) or Hub id (`"hf-hub:timm/resnet50d.gluon_in1k"`); a keras-hub preset folder;
            or a `.weights.h5`, `.keras`, `.safetensors` or `.pth` file (with `model_name`).
        model_name: str or None. The kresnet model name; needed for bare weights files and short tags.
        **kwargs: `ResNetBackbone` arguments for weights that are not a run's, e.g. `stage_depths=[1, 1, 1, 1]`
            when a file's blocks per stage differ from its name's.

    Returns:
        `Inference(model, transform, class_names)`.

    Example:
    ```python
    model, transform, class_names = kresnet.load_for_inference("resnet50d.gluon_in1k")
    probabilities = keras.ops.softmax(model(transform("photo.jpg")[None]))[0]
    ```
    """
    text = str(source)
    path = pathlib.Path(text).expanduser()
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    if path.is_dir() and (path / RECIPE).is_file():
        if kwargs:
            raise UserError(f"{path}: a run's recipe sets its architecture; drop {', '.join(kwargs)}")
        return _from_run(path)
    if path.is_dir():
        return _from_preset_folder(path, model_name, kwargs)
    if path.is_file():
        return _from_weights_file(path, model_name, kwargs)
    if not text.startswith(HUB_PREFIX) and ("/" in text or path.suffix in WEIGHTS_SUFFIXES):
        raise UserError(f"{text}: no such file or folder")
    return _from_tag(text, model_name, kwargs)


def _from_run(folder):
    import contextlib
    import dataclasses
    import io

    from kresnet.classification.build import build_classifier
    from kresnet.classification.config import load_classification_recipe
    from kresnet.models.pretrained import load_trained_weights

    record = open_run(folder, "classification", needs=(FINAL_WEIGHTS,))
    config = load_classification_recipe(record.recipe_path)
    # The recipe's own classifier (a fine-tuned one takes its stage sizes from its starting weights),
    # channels_last as predict feeds it; its classes are the run's.
    class_names = record.class_names
    m = dataclasses.replace(config.model, num_classes=config.model.num_classes or len(class_names or ()),
                            data_format="channels_last")
    with contextlib.redirect_stderr(io.StringIO()):  # "the head is fresh" speaks of training; the run's head loads next
        model = build_classifier(m)
    load_trained_weights(model, record.weights, f"the recipe's [model] ({m.name} with {m.num_classes} classes)")
    return Inference(model, run_eval_transform(config), _class_names(class_names, m.num_classes, record.path / CLASSES))


def run_eval_transform(config):
    """The eval transform a classification recipe validates with (`data.eval_transform`: the recipe's size and
    resize, or its starting weights' own)."""
    from kresnet.classification.data import eval_transform
    from kresnet.data.eval_transform import EvalTransform

    settings = eval_transform(config)
    if settings.get("eval_preset") is not None:
        return EvalTransform.of_preset(settings["eval_preset"])
    return EvalTransform.paper(settings["image_size"], settings["resize_size"])


def _from_preset_folder(folder, model_name, kwargs):
    from kresnet.models.keras_hub_preset import preset_model_name
    from kresnet.models.pretrained import load_pretrained

    if not (folder / "config.json").is_file():
        raise UserError(f"{folder}: neither a run folder (no {RECIPE}) nor a keras-hub preset folder (no config.json)")
    model = load_pretrained(model_name or preset_model_name(folder), folder, **kwargs)
    if not hasattr(model, "num_classes"):
        raise UserError(f"{folder}: holds a backbone only, no classifier to predict with")
    return Inference(model, _preset_transform(folder), _class_names(RunRecord(folder, "", {}).class_names, model.num_classes, folder / CLASSES))


def _preset_transform(folder):
    """The eval transform a kresnet export recorded in its image converter, else the paper's."""
    from kresnet.data.eval_transform import EvalTransform

    converter = folder / "image_converter.json"
    if converter.is_file():
        config = json.loads(converter.read_text(encoding="utf-8")).get("config", {})
        if "eval_transform" in config:
            return EvalTransform.from_config(config["eval_transform"])
    return EvalTransform.paper()


def _from_weights_file(path, model_name, kwargs):
    from kresnet.data.eval_transform import EvalTransform
    from kresnet.models.pretrained import load_pretrained

    if model_name is None:
        raise UserError(f"{path}: a weights file does not name its model; add --model NAME (e.g. --model resnet50d)")
    model = load_pretrained(model_name, path, **kwargs)
    return Inference(model, EvalTransform.paper(), _class_names(None, model.num_classes))


def _from_tag(text, model_name, kwargs):
    from kresnet.data.eval_transform import EvalTransform
    from kresnet.models.pretrained import load_pretrained, resolve

    model_name = pretrained_model_name(text, model_name)
    preset = resolve(model_name, text).preset
    model = load_pretrained(model_name, text, **kwargs)
    transform = EvalTransform.paper() if preset is None else EvalTransform.of_preset(preset)
    return Inference(model, transform, _class_names(None, model.num_classes))


def pretrained_model_name(text, model_name=None, asked_by=None):
    """The model name of a pretrained checkpoint: `model_name`, else the one its full name or Hub id names.

    Args:
        text: a full name (`resnet50d.gluon_in1k`, timm's `resnet50.a1_in1k`), a Hub id, or a tag with `model_name`.
        model_name: str or None.
        asked_by: the option that named it, for the message (e.g. "--weights").
    """
    if model_name is not None:
        return model_name
    from kresnet.models import presets

    try:
        return presets.preset_named(text).name
    except UserError as error:
        where = f"{asked_by}: " if asked_by else ""
        raise UserError(f"{where}{error}, or add --model NAME") from None


def _class_names(names, num_classes, source=None):
    """A run's or preset's class names; else ImageNet's names for 1000 classes; else `class 0`, `class 1`, ..."""
    if names is not None and len(names) != num_classes:
        raise UserError(f"{source}: {len(names)} class names for a {num_classes}-class model")
    if names is None and num_classes == IMAGENET_CLASSES:
        from kresnet.data.sources import imagenet_synsets

        names = imagenet_synsets()
    if names is None:
        return [f"class {index}" for index in range(num_classes)]
    return readable_class_names(names)


def readable_class_names(names):
    """ImageNet's 1000 synsets (`n01440764`, ...) as words (`tench`, ...), from keras-hub's table; others as they are."""
    from kresnet.data.sources import imagenet_synsets

    if list(names) != imagenet_synsets():
        return list(names)
    import keras_hub

    return [keras_hub.utils.imagenet_id_to_name(index) for index in range(IMAGENET_CLASSES)]
