"""`EvalTransform`: what evaluation does to an image, as one object for `evaluate`, `predict`, Python users
and keras-hub presets (timm's `resolve_data_config` + `create_transform` in one value).

Two kinds: the paper's (shorter side to `resize_size` bilinear, centre crop `eval_size`, ImageNet
mean/std on the 0-255 scale) and a pretrained tag's own (timm's geometry with the tag's
`interpolation`, mean and std on the 0-1 scale). The pixels come from the same functions the
evaluation pipeline maps (`kresnet.data.decode.eval_image`, `augment.eval_pixels`).
"""

import dataclasses
import os
import re

from kresnet.errors import UserError


@dataclasses.dataclass(frozen=True)
class EvalTransform:
    """An evaluation transform: decode, resize the shorter side, centre crop, normalise.

    Args:
        eval_size: int. side of the centre crop (the model's input).
        resize_size: int. shorter side before the crop.
        interpolation: str or None. None: the paper's transform. Else a pretrained tag's:
            `"bilinear"` or `"bicubic"` (as PIL resizes), with `mean` and `std` on the 0-1 scale.
        mean: tuple of 3 floats or None. a tag's RGB mean (0-1).
        std: tuple of 3 floats or None. a tag's RGB std (0-1).

    Example:
    ```python
    model, transform, class_names = kresnet.load_for_inference("resnet50d.gluon_in1k")
    logits = model(transform("photo.jpg")[None])
    ```
    """

    eval_size: int = 224
    resize_size: int = 256
    interpolation: str | None = None
    mean: tuple | None = None
    std: tuple | None = None

    @classmethod
    def paper(cls, image_size=224, resize_size=None):
        """The paper's transform at `image_size` (resize_size default keeps 256/224)."""
        from kresnet.data.augment import default_resize_size

        return cls(int(image_size), int(resize_size or default_resize_size(image_size)))

    @classmethod
    def of_preset(cls, preset):
        """A pretrained tag's own transform (`kresnet.models.presets.Preset`)."""
        return cls(preset.eval_size, preset.resize_size, preset.interpolation, tuple(preset.mean), tuple(preset.std))

    @property
    def published(self):
        """True for a pretrained tag's own transform, False for the paper's."""
        return self.interpolation is not None

    @property
    def _preset(self):
        # What `augment.eval_pixels` and `build_dataset(eval_preset=...)` take for a tag's transform: this object.
        return self if self.published else None

    def describe(self):
        """One line, e.g. `shorter side 256 (bicubic), centre crop 224, mean/std (0.485, ...)`."""
        if not self.published:
            return f"shorter side {self.resize_size} (bilinear), centre crop {self.eval_size}, the paper's ImageNet mean/std"
        return (f"shorter side {self.resize_size} ({self.interpolation}), centre crop {self.eval_size}, "
                f"mean {tuple(self.mean)} std {tuple(self.std)}")

    def pixels(self, image):
        """TensorFlow: a decoded image (h, w, 3), uint8 or float in [0, 255] -> float32 (eval_size, eval_size, 3)."""
        from kresnet.data import augment

        return augment.eval_pixels(image, self.eval_size, self.resize_size, self._preset)

    def decode(self, contents):
        """TensorFlow: an encoded file (string scalar tensor) -> float32 (eval_size, eval_size, 3), as `evaluate` reads it."""
        from kresnet.data.decode import eval_image

        return eval_image(contents, self.eval_size, self.resize_size, self._preset)

    def __call__(self, image):
        """The model input of one image, a float32 NumPy array (eval_size, eval_size, 3).

        Args:
            image: a file path, the encoded bytes of a file, a PIL image, or an array (h, w, 3) or (h, w)
                of RGB values in [0, 255].
        """
        import numpy as np
        import tensorflow as tf

        if isinstance(image, (str, os.PathLike, bytes)):
            name = "the image bytes" if isinstance(image, bytes) else os.fspath(image)
            if not isinstance(image, bytes) and not os.path.isfile(name):
                raise UserError(f"{name}: no such file")
            try:
                contents = image if isinstance(image, bytes) else tf.io.read_file(name)
                return self.decode(contents).numpy()
            except tf.errors.OpError as error:
                raise UserError(f"{name}: {not_an_image(error)}") from None
        if hasattr(image, "convert"):  # a PIL image
            image = image.convert("RGB")
        array = np.asarray(image)
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=-1)
        if array.ndim != 3 or array.shape[-1] != 3:
            raise UserError(f"expected an image of shape (height, width, 3) or (height, width); got {array.shape}")
        return self.pixels(tf.convert_to_tensor(array)).numpy()

    def get_config(self):
        """A JSON-ready dict (the keras-hub image converter stores it)."""
        config = dataclasses.asdict(self)
        for key in ("mean", "std"):
            config[key] = None if config[key] is None else list(config[key])
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("mean", "std"):
            config[key] = None if config.get(key) is None else tuple(config[key])
        return cls(**config)


def not_an_image(error):
    """The one-line reason a file failed to read or decode, from TensorFlow's `OpError`
    (`{{function_node ...}} Unknown image file format. ... [Op:DecodeImage]` -> its middle)."""
    text = re.split(r"\s*\[Op:", re.sub(r"\{\{[^}]*\}\}", "", error.message))[0].strip()
    detail = text.splitlines()[-1].strip() if text else type(error).__name__
    return f"not an image TensorFlow can decode ({detail})"
