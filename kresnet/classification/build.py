"""Recipe -> the classification models: the classifier, its distillation teacher, and how they compile."""

import sys

import keras

from kresnet.errors import UserError
from kresnet.classification.config import JIT_COMPILE
from kresnet.tricks.distillation import DistillationModel
from kresnet.tricks.losses import classification_loss
from kresnet.tricks.low_precision import set_precision


def image_shape(data_format, input_size=None):
    """The model's input shape for a layout: (H, W, 3) or (3, H, W); None sizes take any size."""
    if data_format == "channels_first":
        check_channels_first_supported()
        return (3, input_size, input_size)
    return (input_size, input_size, 3)


def check_channels_first_supported(asked_by="model.data_format='channels_first'"):
    """TensorFlow's CPU convolutions are NHWC only: refuse the layout before a run starts, not at its first step."""
    from kresnet.tricks.low_precision import accelerator

    if keras.config.backend() == "tensorflow" and accelerator()[0] == "cpu":
        raise UserError(
            f"{asked_by}: TensorFlow on CPU supports only channels_last convolutions; "
            "use channels_last, a GPU, or the PyTorch or JAX backend"
        )


def build_classifier(model_config, input_size=None, class_names=None):
    """The recipe's classifier (logits in float32), from `model.weights` when the recipe names them.

    Args:
        model_config: the recipe's `[model]` table.
        input_size: fixed square input size, or None for any size.
        class_names: the dataset's class names in label order, when known: a run folder in
            `model.weights` that trained on other classes gives its backbone only.
    """
    import kresnet

    shape = image_shape(model_config.data_format, input_size)
    if model_config.weights:
        return load_starting_weights(model_config, shape, class_names)
    return kresnet.create_model(
        model_config.name,
        num_classes=model_config.num_classes,
        input_shape=shape,
        zero_gamma=model_config.zero_gamma,
        kernel_initializer=model_config.kernel_initializer,
        stage_depths=model_config.stage_depths,
        stage_widths=model_config.stage_widths,
        data_format=model_config.data_format,
        fused_batch_norm=model_config.fused_batch_norm,
    )


def load_starting_weights(model_config, shape, class_names=None):
    """The classifier of a fine-tuning run: the backbone from `model.weights` (a tag, Hub id, file or
    classification run folder), the head too when its classes are the dataset's, else a fresh head;
    then the stages and BatchNorm the recipe freezes.

    A run folder's head is kept only when the run trained on the same class names in the same order:
    the same number of other classes would otherwise silently start each new class from an old one.
    """
    import pathlib

    from kresnet.models.pretrained import load_pretrained
    from kresnet.models.resnet_classifier import ResNetClassifier
    from kresnet.runs.folder import FINAL_WEIGHTS, RECIPE, open_run

    weights = model_config.weights
    other_classes = None
    if (pathlib.Path(weights).expanduser() / RECIPE).is_file():  # a run folder (a keras-hub preset folder has none)
        run = open_run(weights, "classification", needs=(FINAL_WEIGHTS,), asked_by="model.weights")
        run_classes = run.class_names
        if class_names is not None and run_classes is not None and list(run_classes) != list(class_names):
            other_classes = run_classes
        weights = str(run.weights)
    options = dict(label="model.weights", input_shape=shape, stage_depths=model_config.stage_depths,
                   stage_widths=model_config.stage_widths, data_format=model_config.data_format,
                   fused_batch_norm=model_config.fused_batch_norm)
    if other_classes is None:
        model = load_pretrained(model_config.name, weights, num_classes=model_config.num_classes, **options)
    else:
        backbone = load_pretrained(model_config.name, weights, backbone_only=True, **options)
        model = ResNetClassifier(backbone, num_classes=model_config.num_classes, name=model_config.name)
        shown = ", ".join(other_classes[:5]) + (", ..." if len(other_classes) > 5 else "")
        print(f"{model_config.weights}: loaded the backbone only; the {model_config.num_classes}-class head is fresh "
              f"(the run trained on other classes: {shown})", file=sys.stderr)
    freeze(model, model_config.freeze_stages, model_config.freeze_bn)
    return model


def freeze(classifier, stages=0, batchnorm=False):
    """Keep loaded weights: the stem and stages 1..`stages` stop training, and with `batchnorm` every
    BatchNorm layer runs in inference mode on its loaded statistics (Keras: a non-trainable BatchNorm).

    Args:
        classifier: a kresnet classifier.
        stages: int. 0: nothing frozen; 4: the whole backbone (only the head trains).
        batchnorm: bool. Freeze every BatchNorm layer of the backbone.
    """
    frozen = ("stem",) + tuple(f"stage{index}_" for index in range(1, stages + 1)) if stages else ()
    for layer in classifier.backbone.layers:
        if layer.name.startswith(frozen) or (batchnorm and isinstance(layer, keras.layers.BatchNormalization)):
            layer.trainable = False


def load_teacher(config, input_size=None):
    """The frozen distillation teacher from `distillation.teacher_weights`: a kresnet `.weights.h5`, a PyTorch
    state dict, or a pretrained tag such as `resnet152d.gluon_in1k`; its classes come from the file.

    Args:
        config: the whole recipe.
        input_size: fixed square input size, or None.
    """
    from kresnet.models.pretrained import load_pretrained
    from kresnet.models.weight_import import recipe_keys

    # The teacher sees the student's batches, so it takes the student's layout.
    shape = image_shape(config.model.data_format, input_size)
    teacher = load_pretrained(
        config.distillation.teacher_model,
        config.distillation.teacher_weights,
        label="distillation.teacher_weights",
        how_to_set=recipe_keys("distillation.teacher_"),
        input_shape=shape,
        stage_depths=config.distillation.teacher_stage_depths,
        stage_widths=config.distillation.teacher_stage_widths,
        data_format=config.model.data_format,
    )
    if teacher.num_classes != config.model.num_classes:
        raise UserError(
            f"distillation.teacher_weights: the teacher has {teacher.num_classes} classes but model.num_classes is "
            f"{config.model.num_classes}; a teacher needs the student's classes"
        )
    teacher.trainable = False
    return teacher


def build_models(config, input_size=None, teacher=None, class_names=None):
    """(training model, classifier): the classifier itself, or a `DistillationModel` around it when the
    recipe names a teacher.

    Args:
        config: the whole recipe.
        input_size: fixed square input size, or None.
        teacher: a ready teacher model; by default loaded from the recipe when it names one.
        class_names: the dataset's class names (see `build_classifier`).
    """
    classifier = build_classifier(config.model, input_size, class_names)
    model = classifier
    if teacher is None and config.distillation.teacher_model:
        teacher = load_teacher(config, input_size)
    if teacher is not None:
        model = DistillationModel(
            classifier, teacher, temperature=config.distillation.temperature, label_smoothing=config.tricks.label_smoothing
        )
    return model, classifier


def top_k_metrics(num_classes):
    """Top-1 and top-5 accuracy (top-k with k = the number of classes when there are fewer than 5)."""
    return [keras.metrics.CategoricalAccuracy(name="top1"),
            keras.metrics.TopKCategoricalAccuracy(k=min(5, num_classes), name="top5")]


def compile_classifier(model, optimizer, config):
    """Compile with the recipe's loss (label smoothing), top-1/top-5 and `train.jit_compile`.

    Under `mixed_float16`, `auto_scale_loss=True` wraps the optimizer in Keras' dynamic
    `LossScaleOptimizer`.
    """
    model.compile(
        optimizer=optimizer,
        loss=classification_loss(config.tricks.label_smoothing),
        # Weighted: the weight-0 padding of a data-parallel validation set must not count
        # (training batches carry no weights, so nothing changes there).
        weighted_metrics=top_k_metrics(config.model.num_classes),
        auto_scale_loss=True,
        jit_compile=JIT_COMPILE[config.train.jit_compile],
    )


def build_training_model(config, steps_per_epoch, input_size=None, teacher=None):
    """Set the precision policy and return (compiled training model, classifier), as a run does.

    Args:
        config: the whole recipe.
        steps_per_epoch: optimizer steps per epoch (for the schedule).
        input_size: fixed square input size, or None.
        teacher: a ready teacher model; by default loaded from the recipe when it names one.
    """
    from kresnet.runs.task import build_task_optimizer

    set_precision(config.train.precision)
    model, classifier = build_models(config, input_size, teacher)
    compile_classifier(model, build_task_optimizer(config, steps_per_epoch), config)
    return model, classifier
