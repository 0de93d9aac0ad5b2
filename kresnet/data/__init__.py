"""ImageNet-style input pipelines on tf.data, the paper's augmentation, mixup and synthetic data.

Names are imported lazily: `kresnet.data.synthetic` needs only NumPy and Pillow,
and importing it must not pay for TensorFlow.
"""

from kresnet.lazy_names import lazy_exports

_LAZY = {
    "build_dataset": "kresnet.data.pipeline",
    "DatasetInfo": "kresnet.data.sources",
    "resolve_split": "kresnet.data.sources",
    "apply_mixup": "kresnet.data.mixup",
    "skipped_images_callback": "kresnet.data.skips",
    "SceneGenerator": "kresnet.data.synthetic",
    "write_classification_dataset": "kresnet.data.synthetic_dataset",
    "cached_classification_dataset": "kresnet.data.synthetic_dataset",
    "convert_folder": "kresnet.data.tfrecords",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
