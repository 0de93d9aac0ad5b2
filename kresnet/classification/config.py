"""The classification recipe schema: one dataclass per TOML table, every trick a key.

Defaults are the paper's baseline (Section 2 of He et al., 2019): ResNet-50,
NAG with momentum 0.9, 1e-4 weight decay as L2 on the gradient, lr 0.1 per 256
images, 120 epochs, step decay /10 at epochs 30/60/90, no tricks.
"""

import dataclasses

from kresnet.errors import UserError
from kresnet.models.registry import list_models
from kresnet.recipe import load_recipe, recipe_from_dict, setting
from kresnet.runs import sections


# The recipe's `train.jit_compile` words -> Keras' `jit_compile` argument (also `kresnet bench model --jit-compile`).
JIT_COMPILE = {"auto": "auto", "on": True, "off": False}

Meta = sections.paper_reference("Meta", top1="the paper's ImageNet top-1 (%)", top5="the paper's ImageNet top-5 (%)")


@dataclasses.dataclass
class Model:
    name: str = setting("resnet50", choices=list_models(), help="a name from `kresnet models`")
    num_classes: int = setting(1000, minimum=0, help="0: the classes of data.root's train/ folder")
    weights: str = setting("", help="start from these weights (fine-tuning): a tag (gluon_in1k, resnet50d.gluon_in1k), "
                                    "hf-hub:<repo>, a .weights.h5/.safetensors/.pth/.keras file or a classification run "
                                    "folder; the head is new when the classes differ; empty: random init")
    freeze_stages: int = setting(0, minimum=0, maximum=4, help="with weights: the stem and stages 1..N keep their "
                                                                "loaded weights (4: only the head trains)")
    freeze_bn: bool = setting(False, help="with weights: BatchNorm keeps its loaded statistics and scale (inference mode)")
    zero_gamma: bool = setting(False, help="zero-init the last BN gamma of every residual block (random init only)")
    kernel_initializer: str = setting("glorot_uniform", choices=["glorot_uniform", "he_normal"])
    stage_depths: list[int] | None = setting(None, minimum=1, help="override blocks per stage (tiny models)")
    stage_widths: list[int] | None = setting(None, minimum=1, help="override stage widths, default [64, 128, 256, 512]")
    fused_batch_norm: bool = sections.fused_batch_norm_setting()
    data_format: str = setting(
        "channels_last", choices=["channels_last", "channels_first"],
        help="the model's tensor layout; channels_last is as fast or faster on every backend on a CPU (measured); "
             "channels_first: not on TensorFlow CPU",
    )


@dataclasses.dataclass
class Data:
    source: str = setting("imagenet", choices=["imagenet", "synthetic"])
    root: str = setting("data/imagenet", help="ImageNet folder: train/ and val/ class folders or TFRecords")
    image_size: int = setting(224, minimum=8, help="training crop and evaluation crop size")
    eval_resize: int = setting(256, minimum=8, help="shorter side before the evaluation centre crop")
    eval_transform: str = setting("recipe", choices=["recipe", "weights"],
                                  help="weights: validate with the model.weights tag's own eval transform (size, crop, "
                                       "interpolation, mean/std) instead of image_size/eval_resize")
    min_crop_area: float = setting(0.08, exclusive_minimum=0.0, maximum=1.0, help="smallest training crop, fraction of the image area (paper: 0.08)")
    synthetic_classes: int = setting(10, minimum=2)
    synthetic_per_class: int = setting(200, minimum=1, help="training images per synthetic class")
    synthetic_val_per_class: int = setting(50, minimum=1, help="validation images per synthetic class")
    synthetic_image_size: int = setting(64, minimum=16, help="stored size of the generated images")
    synthetic_seed: int = setting(0, minimum=0, help="generator seed of the synthetic dataset")


@dataclasses.dataclass
class Train(sections.Train):
    validation_steps: int = setting(0, minimum=0, help="0: the whole validation set")
    jit_compile: str = setting("auto", choices=list(JIT_COMPILE), help="Keras jit_compile (XLA / torch.compile)")


@dataclasses.dataclass
class Tricks:
    label_smoothing: float = setting(0.0, minimum=0.0, maximum=0.999)
    mixup_alpha: float = setting(0.0, minimum=0.0, help="0: no mixup")
    mixup_off_epochs: int = setting(0, minimum=0, help="final epochs trained without mixup")


@dataclasses.dataclass
class Distillation:
    teacher_model: str = setting("", help="teacher architecture; empty: no distillation")
    teacher_weights: str = setting("", help="teacher weights: .weights.h5, .safetensors/.pth, or a pretrained tag (resnet152d.gluon_in1k)")
    teacher_stage_depths: list[int] | None = setting(None, minimum=1, help="the teacher's blocks per stage, when not its name's")
    teacher_stage_widths: list[int] | None = setting(None, minimum=1, help="the teacher's stage widths, when not the default")
    temperature: float = setting(20.0, exclusive_minimum=0.0)


@dataclasses.dataclass
class Distribution:
    """Data-parallel training; `train.batch_size` stays the global batch (see kresnet/runs/distribution.py)."""

    strategy: str = setting("none", choices=["none", "data_parallel"], help="data_parallel: JAX or TensorFlow, all local devices")
    multi_host: bool = setting(False, help="join a multi-host job (JAX only: the KERAS_DISTRIBUTION_* variables); needs data_parallel")
    cpu_devices: int = setting(
        0, minimum=0,
        help="split the CPU into this many devices when training on it (JAX, TensorFlow; try the multi-device path, not faster); 0: one",
    )

    def problems(self):
        """One-line problems of this table (empty when consistent)."""
        # Alone, each process of a multi-host job would train the whole run by itself and race the others for --out.
        for key, value in (("multi_host", self.multi_host), ("cpu_devices", self.cpu_devices)):
            if value and self.strategy != "data_parallel":
                shown = str(value).lower()
                return [f"distribution.{key}={shown} needs distribution.strategy=\"data_parallel\", got {self.strategy!r}"]
        return []


ClassificationRecipe = sections.task_recipe(
    "ClassificationRecipe", meta=Meta, model=Model, data=Data, train=Train, optimizer=sections.SgdOptimizer,
    schedule=sections.Schedule, tricks=Tricks, distillation=Distillation, distribution=Distribution,
)


def load_classification_recipe(path, overrides=()):
    """Read and validate a classification recipe, including the checks that span keys.

    Args:
        path: the TOML file.
        overrides: `section.key=value` strings from `--set`.
    """
    config = load_recipe(path, ClassificationRecipe, overrides)
    check_consistency(config, source=str(path))
    return config


def classification_recipe_from_dict(data, overrides=()):
    """Like `load_classification_recipe`, from a nested dict.

    Args:
        data: nested dict of tables.
        overrides: `section.key=value` strings.
    """
    config = recipe_from_dict(data, ClassificationRecipe, overrides)
    check_consistency(config, source="recipe")
    return config


def check_consistency(config, source):
    """Raise a one-line UserError for values that are valid alone but not together."""
    epochs = config.train.epochs
    problems = config.schedule.problems_with(epochs) + config.distribution.problems()
    if config.schedule.step_epochs != sorted(config.schedule.step_epochs):
        problems.append(f"schedule.step_epochs: expected increasing epochs, got {config.schedule.step_epochs}")
    if config.tricks.mixup_off_epochs >= epochs:
        problems.append(f"tricks.mixup_off_epochs: expected fewer than train.epochs ({epochs}), got {config.tricks.mixup_off_epochs}")
    if bool(config.distillation.teacher_model) != bool(config.distillation.teacher_weights):
        problems.append("distillation: set both teacher_model and teacher_weights, or neither")
    if config.distillation.teacher_model and config.distillation.teacher_model not in list_models():
        problems.append(f"distillation.teacher_model: expected a name from `kresnet models`, got {config.distillation.teacher_model!r}")
    if config.model.num_classes == 1:
        problems.append("model.num_classes: expected at least 2 classes (or 0: the classes of the data), got 1")
    if config.model.num_classes == 0 and config.data.source == "synthetic":
        problems.append("model.num_classes: 0 (from the data) needs data.source = \"imagenet\" (a folder); synthetic "
                        "data has data.synthetic_classes")
    if not config.model.weights and (config.model.freeze_stages or config.model.freeze_bn):
        problems.append("model.freeze_stages / model.freeze_bn: freezing needs model.weights (nothing is loaded to keep)")
    if config.data.eval_transform == "weights" and not config.model.weights:
        problems.append("data.eval_transform = \"weights\": needs model.weights (a pretrained tag)")
    if config.data.eval_resize < config.data.image_size:
        problems.append(f"data.eval_resize: expected >= data.image_size ({config.data.image_size}), got {config.data.eval_resize}")
    if problems:
        raise UserError(f"{source}: {problems[0]}")
