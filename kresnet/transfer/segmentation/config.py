"""The segmentation recipe schema (`task = "segmentation"`), one dataclass per TOML table.

Defaults follow GluonCV's FCN on ADE20K, the setup of the paper's Table 9: ResNet-50
dilated to output stride 8, auxiliary head (weight 0.2), batch 16 at lr 0.01 (0.16 per
256 images), momentum 0.9, L2 1e-4, poly decay (power 0.9), 120 epochs, base size 520,
crop 480, evaluation over scales 0.5..1.75 with flips.
"""

import dataclasses

from kresnet.errors import UserError
from kresnet.models.registry import list_models
from kresnet.recipe import load_recipe, setting
from kresnet.runs import sections
from kresnet.transfer.synthetic_data import with_synthetic_scenes


Meta = sections.paper_reference("Meta", pixel_accuracy="the paper's pixAcc (%)", mean_iou="the paper's mIoU (%)")


@dataclasses.dataclass
class Model:
    REMOVED_KEYS = {"backbone_classes": "the class count now comes from the file in model.backbone_weights; delete the key"}

    backbone: str = setting("resnet50d", choices=list_models(), help="a name from `kresnet models`")
    backbone_weights: str = setting(
        "", help="pretrained tag (e.g. gluon_in1k), hf-hub:<repo>, or a .weights.h5/.keras/.safetensors/.pth ('' = random init)"
    )
    output_stride: int = setting(8, choices=[8, 16, 32], help="8: dilated stages 3 and 4 (the paper)")
    aux: bool = setting(True, help="auxiliary FCN head on stage 3")
    aux_weight: float = setting(0.2, minimum=0.0, help="loss weight of the auxiliary head")
    dropout: float = setting(0.1, minimum=0.0, maximum=0.99)
    # Sizes belong to the backbone they were written for: `--set model.backbone=...` alone resets them to the new name's.
    stage_depths: list[int] | None = setting(None, minimum=1, follows="backbone",
                                             help="override blocks per stage (tiny models); default: the backbone name's")
    stage_widths: list[int] | None = setting(None, minimum=1, follows="backbone",
                                             help="override stage widths (tiny models); default: the weights file's, else the name's")
    fused_batch_norm: bool = sections.fused_batch_norm_setting()


@dataclasses.dataclass
class Data:
    REMOVED_KEYS = {"format": "renamed data.source (as in classification recipes)"}

    source: str = setting("ade20k", choices=["ade20k", "voc", "folder", "synthetic"])
    root: str = setting("data/ADEChallengeData2016", help="dataset folder (synthetic: generated there if missing)")
    train_split: str = setting("train", help="ade20k: train/val; voc: a list in ImageSets/Segmentation or a .txt "
                                             "under root; folder: a list file")
    val_split: str = setting("val")
    class_names: list[str] = setting([], help="name of each class id; folder: required; voc: empty means root's "
                                              "class_names.txt, else Pascal's 21")
    image_dir: str = setting("images", help="folder format: image folder")
    mask_dir: str = setting("masks", help="folder format: mask folder")
    image_suffix: str = setting(".jpg", help="folder format: image file name after the id")
    mask_suffix: str = setting(".png", help="folder format: mask file name after the id")
    reduce_zero_label: bool = setting(False, help="folder format: stored 0 is ignored, k is class k-1")
    synthetic_val_images: int = setting(100, minimum=1)


Data = with_synthetic_scenes(Data, synthetic_classes=setting(4, minimum=1, help="object classes (plus background) "
                                                                                "of generated scenes"),
                             synthetic_train_images=400)


@dataclasses.dataclass
class Train(sections.Train):
    batch_size: int = setting(16, minimum=1, help="global batch size")
    crop_size: int = setting(480, minimum=8)
    base_size: int = setting(520, minimum=8, help="longer side before the random scale")
    scale_range: list[float] = setting([0.5, 2.0], exclusive_minimum=0.0, help="random scale of base_size")


Optimizer = sections.with_defaults(sections.SgdOptimizer, "Optimizer", "GluonCV's FCN: plain momentum SGD, lr 0.01 "
                                   "for batch 16, L2 (`wd`) added to the gradient.", lr_per_256=0.16, nesterov=False)
Schedule = sections.with_defaults(sections.Schedule, "Schedule", "GluonCV's FCN: poly decay.", kind="poly")


@dataclasses.dataclass
class Eval:
    size: int = setting(520, minimum=8, help="longer side of evaluated images (padded to a square)")
    scales: list[float] = setting([1.0], exclusive_minimum=0.0, help="multi-scale factors")
    flip: bool = setting(False, help="also average horizontally flipped predictions")
    batch_size: int = setting(1, minimum=1)
    mean_iou: str = setting("present_classes", choices=["all_classes", "present_classes"],
                            help="all_classes: GluonCV's mean over every class (Table 9); "
                                 "present_classes: mmsegmentation's, over classes in truth or prediction")


SegmentationRecipe = sections.task_recipe("SegmentationRecipe", "segmentation", meta=Meta, model=Model, data=Data,
                                          train=Train, optimizer=Optimizer, schedule=Schedule, eval=Eval)


def load_segmentation_recipe(path, overrides=()):
    """Read and validate a segmentation recipe.

    Args:
        path: str. The TOML file.
        overrides: `section.key=value` strings from `--set`.
    """
    config = load_recipe(path, SegmentationRecipe, overrides)
    if len(config.train.scale_range) != 2 or config.train.scale_range[0] > config.train.scale_range[1]:
        raise UserError(f"{path}: train.scale_range: expected [low, high] with low <= high, got {config.train.scale_range}")
    if config.schedule.problems_with(config.train.epochs):
        raise UserError(f"{path}: {config.schedule.problems_with(config.train.epochs)[0]}")
    if not config.eval.scales:
        raise UserError(f"{path}: eval.scales: expected at least one scale")
    if config.data.source == "folder" and not config.data.class_names:
        raise UserError(f"{path}: data.class_names: the folder source needs the name of every class")
    return config
