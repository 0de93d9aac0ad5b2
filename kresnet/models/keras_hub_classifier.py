"""kresnet classifiers as keras-hub tasks: `keras_hub.models.ImageClassifier.from_preset(folder)` on a
folder kresnet exported gives the task, its weights and a preprocessor that applies the eval transform.

keras-hub picks a task class by its `backbone_cls`, so these three classes make kresnet's
`ResNetBackbone` a first-class keras-hub model: `ResNetImageConverter` (the `EvalTransform` of the
weights: resize the shorter side, centre crop, normalise), `ResNetImageClassifierPreprocessor` and
`ResNetImageClassifier`. keras-hub's own `ImageConverter` resizes the whole image to a square
instead, which is not the transform published accuracies were measured with.
"""

import keras
import keras_hub
import numpy as np

from kresnet.data.eval_transform import EvalTransform
from kresnet.models.resnet_backbone import ResNetBackbone

# ImageConverter settings that the eval transform replaces; its saved config still lists them.
_CONVERTER_SETTINGS = (
    "image_size", "scale", "offset", "crop_to_aspect_ratio", "pad_to_aspect_ratio", "interpolation", "antialias",
    "bounding_box_format",
)


@keras.saving.register_keras_serializable(package="kresnet")
class ResNetImageConverter(keras_hub.layers.ImageConverter):
    """Images (h, w, 3) or batches (n, h, w, 3) of RGB values in [0, 255] -> the model's input, by `EvalTransform`.

    Args:
        eval_transform: `kresnet.data.eval_transform.EvalTransform` or its config dict. Defaults to the
            paper's (shorter side 256, centre crop 224).

    Example:
    ```python
    converter = ResNetImageConverter(EvalTransform.paper(224))
    inputs = converter(np.random.randint(0, 256, (2, 300, 400, 3)))  # (2, 224, 224, 3)
    ```
    """

    backbone_cls = ResNetBackbone

    def __init__(self, eval_transform=None, **kwargs):
        if isinstance(eval_transform, dict):
            eval_transform = EvalTransform.from_config(eval_transform)
        eval_transform = eval_transform or EvalTransform.paper()
        for key in _CONVERTER_SETTINGS:
            kwargs.pop(key, None)
        super().__init__(image_size=(eval_transform.eval_size, eval_transform.eval_size), **kwargs)
        self.eval_transform = eval_transform

    def call(self, inputs):
        import tensorflow as tf

        if not tf.executing_eagerly():  # inside tf.data (keras-hub's predict and fit): a TensorFlow tensor
            return self._convert(tf.convert_to_tensor(inputs))
        # Eager: NumPy, TensorFlow or any backend's array (convert_to_numpy also fetches a torch GPU tensor).
        array = np.asarray(inputs) if isinstance(inputs, (np.ndarray, list, tuple)) or tf.is_tensor(inputs) else (
            keras.ops.convert_to_numpy(inputs))
        return keras.ops.convert_to_tensor(self._convert(tf.convert_to_tensor(array)).numpy())

    def _convert(self, images):
        """One image (h, w, 3) or a batch (n, h, w, 3), TensorFlow in and out."""
        import tensorflow as tf

        if images.shape.rank == 3:
            return self.eval_transform.pixels(images)
        size = self.eval_transform.eval_size
        return tf.map_fn(self.eval_transform.pixels, images, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))

    def get_config(self):
        return {**super().get_config(), "eval_transform": self.eval_transform.get_config()}


@keras.saving.register_keras_serializable(package="kresnet")
class ResNetImageClassifierPreprocessor(keras_hub.models.ImageClassifierPreprocessor):
    """keras-hub's image classifier preprocessor with kresnet's `ResNetImageConverter`.

    A preset without `image_converter.json` (a bare `ResNetBackbone.save_to_preset`) gets the paper's transform.
    """

    backbone_cls = ResNetBackbone
    image_converter_cls = ResNetImageConverter

    @classmethod
    def _add_missing_kwargs(cls, loader, kwargs):
        import pathlib

        preset = pathlib.Path(str(getattr(loader, "preset", "")))
        if "image_converter" not in kwargs and preset.is_dir() and not (preset / "image_converter.json").is_file():
            kwargs["image_converter"] = ResNetImageConverter()
        return super()._add_missing_kwargs(loader, kwargs)


@keras.saving.register_keras_serializable(package="kresnet")
class ResNetImageClassifier(keras_hub.models.ImageClassifier):
    """keras-hub's `ImageClassifier` task on a kresnet `ResNetBackbone`: average pooling, a float32 linear head
    (logits), and a preprocessor with the eval transform.

    Example:
    ```python
    import kresnet  # registers kresnet's classes with keras-hub
    task = keras_hub.models.ImageClassifier.from_preset("exported_folder")
    logits = task.predict(images)  # uint8 images of any size; the preprocessor resizes and crops
    ```
    """

    backbone_cls = ResNetBackbone
    preprocessor_cls = ResNetImageClassifierPreprocessor


def to_keras_hub_task(classifier, eval_transform):
    """The keras-hub task of a kresnet `ResNetClassifier` (same backbone and head weights) with `eval_transform`.

    Args:
        classifier: `ResNetClassifier`.
        eval_transform: `EvalTransform` of its weights.
    """
    preprocessor = ResNetImageClassifierPreprocessor(image_converter=ResNetImageConverter(eval_transform))
    task = ResNetImageClassifier(
        backbone=classifier.backbone, num_classes=classifier.num_classes, preprocessor=preprocessor, head_dtype="float32",
        name=classifier.name,
    )
    task.get_layer("predictions").set_weights(classifier.get_layer("predictions").get_weights())
    return task


def save_preset(classifier, eval_transform, folder, class_names=None):
    """Write `classifier` as a keras-hub task preset folder (with `classes.json` when `class_names` are given).

    The folder is written under a temporary name and renamed, so an interrupted export leaves no partial preset.

    Args:
        classifier: `ResNetClassifier`.
        eval_transform: `EvalTransform` of its weights (the preprocessor applies it).
        folder: path of the new folder.
        class_names: list of str or None.
    """
    import json
    import os
    import pathlib
    import shutil

    folder = pathlib.Path(folder)
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        to_keras_hub_task(classifier, eval_transform).save_to_preset(str(partial))
        if class_names is not None:
            (partial / "classes.json").write_text(json.dumps(list(class_names), indent=2) + "\n", encoding="utf-8")
        os.replace(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
