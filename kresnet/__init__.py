"""kresnet: the ResNet variants and training tricks of "Bag of Tricks for Image
Classification with Convolutional Neural Networks" (He et al., 2019) for Keras 3.

Public names are imported lazily so that `kresnet --help` does not pay for a
deep-learning backend import.
"""

__version__ = "0.1.0"

_LAZY = {
    "create_model": "kresnet.models.registry",
    "create_backbone": "kresnet.models.registry",
    "list_models": "kresnet.models.registry",
    "load_model": "kresnet.models.registry",
    "model_spec": "kresnet.models.registry",
    "ResNetBackbone": "kresnet.models.resnet_backbone",
    "ResNetClassifier": "kresnet.models.resnet_classifier",
    "UserError": "kresnet.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'kresnet' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
