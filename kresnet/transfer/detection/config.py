"""The detection recipe schema (`task = "detection"`): one dataclass per TOML table.

Defaults follow Detectron2's Faster R-CNN R50-FPN on VOC07+12 (the paper's
Table 8 setting): short side 600 / long side at most 1000, horizontal flip,
SGD momentum 0.9, L2 1e-4, lr 0.02 for 16 images (0.32 per 256) with warmup.
"""

import dataclasses

from kresnet.errors import UserError
from kresnet.models.registry import list_models
from kresnet.recipe import load_recipe, setting
from kresnet.runs import sections


Meta = sections.paper_reference("Meta", map="the paper's VOC07 mAP (%)")


@dataclasses.dataclass
class Model:
    backbone: str = setting("resnet50d", choices=list_models(), help="a name from `kresnet models`")
    backbone_weights: str = setting("", help="pretrained tag (gluon_in1k), hf-hub:<repo>, or a .weights.h5/.keras/.safetensors/.pth; empty: random init")
    # Sizes belong to the backbone they were written for: `--set model.backbone=...` alone resets them to the new name's.
    stage_depths: list[int] | None = setting(None, minimum=1, follows="backbone",
                                             help="override blocks per stage (tiny models); default: the backbone name's")
    stage_widths: list[int] | None = setting(None, minimum=1, follows="backbone",
                                             help="override stage widths (tiny models); default: the weights file's, else the name's")
    fpn: bool = setting(True, help="feature pyramid P2..P6; false: the original single C4 map (stride 16)")
    fpn_channels: int = setting(256, minimum=1, help="FPN width, and the RPN conv's")
    anchor_sizes: list[float] = setting([32.0, 64.0, 128.0, 256.0, 512.0], exclusive_minimum=0.0,
                                        help="one anchor size per level P2..P6 (all on C4 without FPN)")
    aspect_ratios: list[float] = setting([0.5, 1.0, 2.0], exclusive_minimum=0.0)
    head_dim: int = setting(1024, minimum=1)
    pooler_size: int = setting(7, minimum=1)
    rpn_batch_size: int = setting(256, minimum=1)
    rpn_pre_nms_topk_train: int = setting(2000, minimum=1)
    rpn_post_nms_topk_train: int = setting(1000, minimum=1)
    rpn_pre_nms_topk_test: int = setting(1000, minimum=1)
    rpn_post_nms_topk_test: int = setting(1000, minimum=1)
    roi_batch_size: int = setting(512, minimum=1)
    score_threshold: float = setting(0.05, minimum=0.0, maximum=1.0)
    max_detections: int = setting(100, minimum=1)
    freeze_bn: bool = setting(True, help="backbone BN uses its moving statistics (small batches)")
    freeze_stem: bool = setting(True, help="do not train the backbone's stem")


@dataclasses.dataclass
class Data:
    REMOVED_KEYS = {"format": "renamed data.source (as in classification recipes)"}

    source: str = setting("voc", choices=["voc", "coco", "synthetic"])
    root: str = setting("data/VOCdevkit", help="VOCdevkit folder (voc) or dataset folder (coco)")
    train_splits: list[str] = setting(["VOC2007/trainval", "VOC2012/trainval"],
                                      help="VOC year/split, a split name of an exported folder, or a .txt under root")
    test_splits: list[str] = setting(["VOC2007/test"])
    class_names: list[str] = setting([], help="object classes in label order; empty: voc: root's class_names.txt, "
                                              "else the 20 Pascal classes; coco: the JSON's categories by id "
                                              "(labelme's _background_ is never an object class)")
    coco_train_json: str = setting("annotations/instances_train2017.json", help="relative to root")
    coco_train_images: str = setting("train2017")
    coco_test_json: str = setting("annotations/instances_val2017.json")
    coco_test_images: str = setting("val2017")
    short_side: int = setting(600, minimum=16)
    max_side: int = setting(1000, minimum=16)
    flip: bool = setting(True)
    max_boxes: int = setting(100, minimum=1, help="ground-truth slots per image")
    synthetic_classes: int = setting(4, minimum=1)
    synthetic_image_size: int = setting(64, minimum=32)
    synthetic_train_images: int = setting(200, minimum=1)
    synthetic_test_images: int = setting(50, minimum=1)
    synthetic_max_objects: int = setting(3, minimum=1)
    synthetic_seed: int = setting(0, minimum=0, help="generator seed of the synthetic scenes (train.seed leaves them alone)")


@dataclasses.dataclass
class Train(sections.Train):
    REMOVED_KEYS = {"eval_batch_size": "renamed eval.batch_size (as in segmentation recipes)"}

    epochs: int = setting(12, minimum=1)
    batch_size: int = setting(16, minimum=1, help="global batch size")


@dataclasses.dataclass
class Eval:
    batch_size: int = setting(8, minimum=1, help="images per evaluation batch")


Optimizer = sections.with_defaults(sections.SgdOptimizer, "Optimizer", "Detectron2's Faster R-CNN: plain momentum SGD, "
                                   "lr 0.02 for batch 16.", lr_per_256=0.32, nesterov=False)
Schedule = sections.with_defaults(sections.Schedule, "Schedule", "Detectron2's 1x schedule scaled to 12 epochs: short "
                                  "warmup, /10 at epochs 8 and 11.", warmup_epochs=0.1, step_epochs=[8, 11])


DetectionRecipe = sections.task_recipe("DetectionRecipe", "detection", meta=Meta, model=Model, data=Data, train=Train,
                                       optimizer=Optimizer, schedule=Schedule, eval=Eval)


def load_detection_recipe(path, overrides=()):
    """Read and validate a detection recipe, including the checks that span keys.

    Args:
        path: the TOML file.
        overrides: `section.key=value` strings from `--set`.
    """
    config = load_recipe(path, DetectionRecipe, overrides)
    epochs = config.train.epochs
    problems = []
    if config.model.fpn and len(config.model.anchor_sizes) != 5:
        problems.append(f"model.anchor_sizes: expected 5 sizes (P2..P6), got {config.model.anchor_sizes}")
    if config.data.short_side > config.data.max_side:
        problems.append(f"data.short_side: expected <= data.max_side ({config.data.max_side}), got {config.data.short_side}")
    problems += config.schedule.problems_with(epochs)
    if problems:
        raise UserError(f"{path}: {problems[0]}")
    return config
