"""kresnet: the ResNet variants and training tricks of "Bag of Tricks for Image
Classification with Convolutional Neural Networks" (He et al., 2019) for Keras 3.

Public names are imported lazily so that `kresnet --help` does not pay for a
deep-learning backend import.
"""

from kresnet.lazy_names import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "create_model": "kresnet.models.factory",
    "create_backbone": "kresnet.models.factory",
    "list_models": "kresnet.models.registry",
    "load_model": "kresnet.models.registry",
    "model_spec": "kresnet.models.registry",
    # Through the module of its keras-hub task, so that this one import lets keras-hub's
    # `ImageClassifier.from_preset` find kresnet's task for a kresnet preset folder.
    "ResNetBackbone": "kresnet.models.keras_hub_classifier",
    "ResNetImageClassifier": "kresnet.models.keras_hub_classifier",
    "ResNetClassifier": "kresnet.models.resnet_classifier",
    "EvalTransform": "kresnet.data.eval_transform",
    "load_for_inference": "kresnet.classification.inference",
    "UserError": "kresnet.errors",
}
# The paper's tricks (kresnet/tricks.py), importable as `kresnet.NAME` or `kresnet.tricks.NAME`.
_TRICKS = (
    "DistillationModel", "MixupSchedule", "NesterovL2SGD", "WarmupStepDecay", "apply_mixup", "distillation_loss",
    "is_bias_or_norm", "label_smoothing_loss", "precision", "scaled_learning_rate", "warmup_cosine", "zero_gamma",
)
_LAZY.update({name: "kresnet.tricks" for name in _TRICKS})

__all__ = sorted(_LAZY) + ["__version__"]

_LAZY["tricks"] = "kresnet.tricks"

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
