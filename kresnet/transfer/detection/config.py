"""The detection recipe schema (`task = "detection"`): one dataclass per TOML table.

Defaults follow Detectron2's Faster R-CNN R50-FPN on VOC07+12 (the paper's
Table 8 setting): short side 600 / long side at most 1000, horizontal flip,
SGD momentum 0.9, L2 1e-4, lr 0.02 for 16 images (0.32 per 256) with warmup.
"""

import dataclasses

from kresnet.data.imagenet_stats import MEAN_RGB, STD_RGB
from kresnet.errors import UserError
from kresnet.models.registry import list_models
from kresnet.recipe import load_recipe, setting
from kresnet.runs import sections
from kresnet.transfer.detection.anchors import GRID_STRIDES
from kresnet.transfer.detection.roi_align import LEVEL_RULES
from kresnet.transfer.synthetic_data import with_synthetic_scenes

# [model] keys that are `FasterRCNN` arguments of the same name.
DETECTOR_KEYS = (
    "fpn", "fpn_channels", "anchor_sizes", "aspect_ratios", "anchor_offset", "round_anchors", "anchor_grid_stride",
    "pixel_mean", "pixel_std", "head_dim", "pooler_size", "pooler_sampling_ratio", "roi_aligned", "roi_canonical_size",
    "roi_canonical_level", "roi_level_rule", "rpn_batch_size", "rpn_pre_nms_topk_train", "rpn_post_nms_topk_train",
    "rpn_pre_nms_topk_test", "rpn_post_nms_topk_test", "rpn_nms_threshold", "rpn_min_size", "rpn_box_loss_beta",
    "roi_batch_size", "roi_positive_fraction", "rcnn_box_loss_beta", "score_threshold", "nms_threshold",
    "detections_pre_nms_topk", "detection_min_size", "max_detections", "freeze_bn", "freeze_stem",
)


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
    fused_batch_norm: bool = sections.fused_batch_norm_setting()
    fpn: bool = setting(True, help="feature pyramid P2..P6; false: the original single C4 map (stride 16)")
    fpn_channels: int = setting(256, minimum=1, help="FPN width, and the RPN conv's")
    anchor_sizes: list[float] = setting([32.0, 64.0, 128.0, 256.0, 512.0], exclusive_minimum=0.0,
                                        help="one anchor size per level P2..P6 (all on C4 without FPN)")
    aspect_ratios: list[float] = setting([0.5, 1.0, 2.0], exclusive_minimum=0.0)
    anchor_offset: float = setting(0.5, minimum=0.0, maximum=1.0, help="anchor centre in its cell: 0.5 the centre, "
                                                                      "0 the top-left corner (torchvision)")
    round_anchors: bool = setting(False, help="round the cell anchors to whole pixels (torchvision)")
    anchor_grid_stride: str = setting("level", choices=list(GRID_STRIDES),
                                      help="anchor spacing: the level's stride, or padded side // feature side "
                                           "per axis (image_over_grid, torchvision)")
    pixel_mean: list[float] = setting(list(MEAN_RGB), help="RGB mean (0-255) the detector subtracts: the paper's; "
                                                           "torchvision weights: [123.675, 116.28, 103.53]")
    pixel_std: list[float] = setting(list(STD_RGB), exclusive_minimum=0.0,
                                     help="RGB std (0-255); torchvision weights: [58.395, 57.12, 57.375]")
    head_dim: int = setting(1024, minimum=1)
    pooler_size: int = setting(7, minimum=1)
    pooler_sampling_ratio: int = setting(2, minimum=1, help="RoIAlign samples per bin side")
    roi_aligned: bool = setting(True, help="RoIAlign's half-pixel shift (Detectron2); torchvision's v1 detector: false")
    roi_canonical_size: float = setting(224.0, exclusive_minimum=0.0, help="RoI size read from roi_canonical_level")
    roi_canonical_level: int = setting(4, minimum=2, maximum=5)
    roi_level_rule: str = setting("detectron2", choices=list(LEVEL_RULES),
                                  help="rounding guard of the level formula: log2(s/224 + 1e-8) or log2(s/224) + 1e-6 "
                                       "(torchvision)")
    rpn_batch_size: int = setting(256, minimum=1)
    rpn_pre_nms_topk_train: int = setting(2000, minimum=1)
    rpn_post_nms_topk_train: int = setting(1000, minimum=1)
    rpn_pre_nms_topk_test: int = setting(1000, minimum=1)
    rpn_post_nms_topk_test: int = setting(1000, minimum=1)
    rpn_nms_threshold: float = setting(0.7, minimum=0.0, maximum=1.0)
    rpn_min_size: float = setting(0.0, minimum=0.0, help="drop proposals not wider and taller (px); torchvision 1e-3")
    rpn_box_loss_beta: float = setting(0.0, minimum=0.0, help="smooth-L1 beta, 0 = L1 (Detectron2); torchvision 1/9")
    roi_batch_size: int = setting(512, minimum=1)
    roi_positive_fraction: float = setting(0.25, exclusive_minimum=0.0, maximum=1.0)
    rcnn_box_loss_beta: float = setting(0.0, minimum=0.0, help="smooth-L1 beta, 0 = L1 (Detectron2); torchvision 1/9")
    score_threshold: float = setting(0.05, minimum=0.0, maximum=1.0)
    nms_threshold: float = setting(0.5, minimum=0.0, maximum=1.0, help="IoU of the per-class NMS of detections")
    detections_pre_nms_topk: int = setting(1000, minimum=1, help="best (box, class) candidates entering that NMS")
    detection_min_size: float = setting(0.0, minimum=0.0, help="drop detections not wider and taller (px); "
                                                               "torchvision 1e-2")
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
    synthetic_test_images: int = setting(50, minimum=1)
    synthetic_max_objects: int = setting(3, minimum=1)


Data = with_synthetic_scenes(Data, synthetic_image_size=setting(64, minimum=32, help="side of the square scenes (px)"))


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
    for key in ("pixel_mean", "pixel_std"):
        if len(getattr(config.model, key)) != 3:
            problems.append(f"model.{key}: expected 3 values (R, G, B), got {getattr(config.model, key)}")
    if config.data.short_side > config.data.max_side:
        problems.append(f"data.short_side: expected <= data.max_side ({config.data.max_side}), got {config.data.short_side}")
    problems += config.schedule.problems_with(epochs)
    if problems:
        raise UserError(f"{path}: {problems[0]}")
    return config


def detector_arguments(model):
    """The `FasterRCNN` keyword arguments of a recipe's `[model]` table (all but the backbone and its weights).

    Args:
        model: the recipe's `Model` table.
    """
    return {key: getattr(model, key) for key in DETECTOR_KEYS}
