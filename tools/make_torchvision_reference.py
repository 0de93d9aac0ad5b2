"""Make the torchvision reference fixtures of the transfer parity tests (tests/fixtures/reference/torchvision/).

Builds torchvision's own `fcn_resnet50` and `fasterrcnn_resnet50_fpn` (v1) structures with
seeded random weights, every ResNet stage 16 times narrower and the FPN, box head and class
count shrunk, so each state dict stays a few hundred KB. Everything else is torchvision's
code path: its ResNet blocks and dilation, `FCNHead`, `IntermediateLayerGetter`,
`BackboneWithFPN` with `LastLevelMaxPool`, `AnchorGenerator`, `RPNHead`,
`RegionProposalNetwork`, `MultiScaleRoIAlign`, `TwoMLPHead`, `FastRCNNPredictor`,
`RoIHeads` and `GeneralizedRCNNTransform`. Each state dict is saved in torchvision's own
format (a `.pth` of `model.state_dict()`, rounded to float16; the model keeps the rounded
values), with the float32 outputs kresnet must reproduce. kresnet never imports
torchvision; this script needs the `[reference]` extra:

    pip install -e ".[reference]"
    python tools/make_torchvision_reference.py        # rewrites tests/fixtures/reference/torchvision/

The output is deterministic for a given torchvision and torch version (seeded).
"""

import argparse
import json
import pathlib

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.models import resnet
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.models.segmentation.fcn import FCN, FCNHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # torchvision's, on the 0-1 scale
# ResNet-50's blocks per stage; every stage WIDTH_DIVISOR times narrower (widths 4, 8, 16, 32; outputs 16..128).
STAGE_DEPTHS = (3, 4, 6, 3)
WIDTH_DIVISOR = 16
FCN_CLASSES = 3
FCN_SIZES = ((48, 48), (42, 58))  # (height, width); 42 x 58 is neither square nor a multiple of the stride 8
DETECTION_CLASSES = 4  # object classes; torchvision's predictor adds the background
FPN_CHANNELS = 8
BOX_HEAD_DIM = 32
# torchvision's level mapping with 224 px as level 4 sends every box of a 128 px image to P2/P3;
# 48 px makes the small images reach P2..P5 (the bundled recipe keeps 224).
CANONICAL_SCALE = 48
RPN_POST_NMS_TEST = 300  # torchvision's 1000 would make the RoI outputs several MB
# Detector inputs: padded (height, width) and the real image sizes inside; sides multiples of 32.
DETECTION_CASES = {"128x96": ((96, 128), [(96, 128), (80, 100)]), "96x96": ((96, 96), [(96, 96)])}
POOLED_PER_LEVEL = 4  # RoIs per FPN level whose pooled features are stored
GT_BOXES = [  # per image of the 128x96 case: (boxes xyxy, labels in 1..DETECTION_CLASSES)
    ([[10, 20, 60, 90], [70, 30, 125, 80], [5, 5, 40, 30]], [1, 3, 4]),
    ([[20, 10, 90, 70], [50, 40, 95, 78]], [2, 1]),
]


class NarrowResNet(resnet.ResNet):
    """torchvision's ResNet with every stage `WIDTH_DIVISOR` times narrower (its 7x7 stem keeps 64 channels)."""

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        return super()._make_layer(block, planes // WIDTH_DIVISOR, blocks, stride, dilate)


def narrow_resnet50(**kwargs):
    return NarrowResNet(resnet.Bottleneck, list(STAGE_DEPTHS), num_classes=1, **kwargs)


def stage_channels():
    return [4 * 64 * 2**stage // WIDTH_DIVISOR for stage in range(4)]


def randomise(model, generator):
    """Random conv/linear weights and biases and BatchNorm scales and shifts (torchvision zero-inits none of
    these here, but a random scale makes a wrong BN mapping visible)."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            shape = module.weight.shape
            module.weight.data = torch.rand(shape, generator=generator) + 0.5
            module.bias.data = (torch.rand(shape, generator=generator) - 0.5) * 0.4
        elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = module.weight[0].numel()
            module.weight.data = torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5
            if module.bias is not None:
                module.bias.data = torch.randn(module.bias.shape, generator=generator) * 0.1


def calibrate(model, images):
    """Set every BatchNorm's running statistics to those of `images` (one training-mode pass): random
    convolutions would otherwise blow activations up block after block."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: after one batch, exactly its statistics
    model.train()
    with torch.no_grad():
        model(images)
    model.eval()
    for norm in norms:
        # A channel that is (almost) always zero after a ReLU would get a variance near 0 and a scale of
        # 1/sqrt(eps): float rounding of the two implementations' BN formulas, amplified 300-fold,
        # would then decide the comparison. Trained networks have no such channels.
        norm.running_var.clamp_(min=0.1)


def save_float16_state_dict(model, path):
    """Save the state dict rounded to float16 (torchvision's .pth format); the model gets the rounded values."""
    rounded = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in rounded.items()})
    torch.save({k: v.contiguous() for k, v in rounded.items()}, path)
    return path.stat().st_size


def float16_input(shape, generator):
    """A normalised NCHW image batch, rounded to float16 (stored so) and used in float32."""
    return torch.randn(shape, generator=generator).half().float()


def normalise(pixels):
    """0-255 NHWC pixels -> the normalised NCHW batch of `GeneralizedRCNNTransform.normalize`."""
    transform = GeneralizedRCNNTransform(1, 1, IMAGENET_MEAN, IMAGENET_STD)
    return torch.stack([transform.normalize(image.permute(2, 0, 1).float() / 255) for image in pixels])


def nhwc(tensor):
    return tensor.permute(0, 2, 3, 1).numpy().astype(np.float32)


def make_fcn(out, generator):
    """torchvision's `_fcn_resnet` wiring (layer4 -> FCNHead, aux on layer3) on the narrow, dilated ResNet-50."""
    backbone = narrow_resnet50(replace_stride_with_dilation=[False, True, True])
    channels = stage_channels()
    model = FCN(
        IntermediateLayerGetter(backbone, return_layers={"layer4": "out", "layer3": "aux"}),
        FCNHead(channels[3], FCN_CLASSES),
        FCNHead(channels[2], FCN_CLASSES),
    )
    randomise(model, generator)
    calibrate(model, float16_input((4, 3, 64, 64), generator))
    size = save_float16_state_dict(model, out / "fcn_resnet50.pth")
    model.eval()
    arrays = {}
    with torch.no_grad():
        for height, width in FCN_SIZES:
            images = float16_input((1, 3, height, width), generator)
            result = model(images)
            key = f"{height}x{width}"
            arrays[f"{key}_images"] = nhwc(images).astype(np.float16)
            arrays[f"{key}_logits"] = nhwc(result["out"])
            arrays[f"{key}_aux_logits"] = nhwc(result["aux"])
    np.savez(out / "fcn_resnet50_outputs.npz", **arrays)
    return {"classes": FCN_CLASSES, "sizes": [list(s) for s in FCN_SIZES], "pth_bytes": size}


def build_detector(norm_layer):
    """`fasterrcnn_resnet50_fpn`'s modules (v1), narrow: ResNet-50-B body, FPN P2..P6, RPN, RoIAlign, two-fc head."""
    channels = stage_channels()
    body = narrow_resnet50(norm_layer=norm_layer)
    backbone = BackboneWithFPN(body, {f"layer{k}": str(v) for v, k in enumerate([1, 2, 3, 4])}, channels, FPN_CHANNELS)
    pooler = MultiScaleRoIAlign(["0", "1", "2", "3"], output_size=7, sampling_ratio=2, canonical_scale=CANONICAL_SCALE)
    return FasterRCNN(
        backbone,
        num_classes=None,
        rpn_anchor_generator=AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5),
        box_roi_pool=pooler,
        box_head=TwoMLPHead(FPN_CHANNELS * 7 * 7, BOX_HEAD_DIM),
        box_predictor=FastRCNNPredictor(BOX_HEAD_DIM, DETECTION_CLASSES + 1),
        rpn_post_nms_top_n_test=RPN_POST_NMS_TEST,
    )


def level_of(boxes):
    """torchvision's `LevelMapper` level (2..5) of each box, for choosing the stored pooled features."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    level = torch.floor(4 + torch.log2(torch.sqrt(area) / CANONICAL_SCALE) + torch.tensor(1e-6))
    return torch.clamp(level, 2, 5).long()


def detector_inference(model, images, image_sizes):
    """Every intermediate of torchvision's eval forward on an already normalised, padded batch."""
    image_list = ImageList(images, image_sizes)
    features = model.backbone(images)
    levels = list(features.values())
    objectness, deltas = model.rpn.head(levels)
    anchors = model.rpn.anchor_generator(image_list, levels)[0]
    recorded = {}
    filter_proposals = model.rpn.filter_proposals

    def recording_filter(*args):
        recorded["proposals"] = result = filter_proposals(*args)
        return result

    model.rpn.filter_proposals = recording_filter
    proposals, _ = model.rpn(image_list, features)
    del model.rpn.filter_proposals
    scores = recorded["proposals"][1]
    pooled = model.roi_heads.box_roi_pool(features, proposals, image_sizes)
    box_features = model.roi_heads.box_head(pooled)
    class_logits, box_regression = model.roi_heads.box_predictor(box_features)
    detections, _ = model.roi_heads(features, proposals, image_sizes)
    batch = images.shape[0]
    # Anchors are whole pixels (rounded cell anchors on integer strides): exact in float16.
    arrays = {"image_sizes": np.asarray(image_sizes, np.float32), "anchors": anchors.numpy().astype(np.float16)}
    for index, (name, level) in enumerate(features.items()):
        arrays[f"features_{index}"] = nhwc(level)
    arrays["rpn_logits"] = torch.cat([o.permute(0, 2, 3, 1).reshape(batch, -1) for o in objectness], 1).numpy()
    arrays["rpn_deltas"] = torch.cat([d.permute(0, 2, 3, 1).reshape(batch, -1, 4) for d in deltas], 1).numpy()
    counts = [len(p) for p in proposals]
    start = 0
    for image, (boxes, image_scores, count) in enumerate(zip(proposals, scores, counts)):
        arrays[f"proposals_{image}"] = boxes.numpy()
        arrays[f"proposal_scores_{image}"] = image_scores.numpy()
        levels_of_boxes = level_of(boxes)
        chosen = torch.cat([torch.where(levels_of_boxes == level)[0][:POOLED_PER_LEVEL] for level in range(2, 6)])
        arrays[f"pooled_index_{image}"] = chosen.numpy().astype(np.int32)
        arrays[f"pooled_{image}"] = pooled[start:start + count][chosen].permute(0, 2, 3, 1).numpy()
        arrays[f"class_logits_{image}"] = class_logits[start:start + count].numpy()
        arrays[f"box_regression_{image}"] = box_regression[start:start + count].numpy()
        for key in ("boxes", "scores", "labels"):
            arrays[f"detections_{key}_{image}"] = detections[image][key].numpy()
        start += count
    return arrays


class RecordingSampler:
    """torchvision's balanced sampler, recording which entries it picked (the kresnet test replays them)."""

    def __init__(self, sampler):
        self.sampler, self.picked = sampler, []

    def __call__(self, labels):
        positive, negative = self.sampler(labels)
        self.picked = [torch.where(p | n)[0].numpy().astype(np.int32) for p, n in zip(positive, negative)]
        return positive, negative


def detector_training(model, images, image_sizes):
    """The four losses of torchvision's training forward on the padded batch, with the anchors and RoIs it sampled."""
    model.train()
    targets = [{"boxes": torch.tensor(b, dtype=torch.float32), "labels": torch.tensor(l)} for b, l in GT_BOXES]
    rpn_sampler = model.rpn.fg_bg_sampler = RecordingSampler(model.rpn.fg_bg_sampler)
    roi_sampler = model.roi_heads.fg_bg_sampler = RecordingSampler(model.roi_heads.fg_bg_sampler)
    image_list = ImageList(images, image_sizes)
    features = model.backbone(images)
    proposals, rpn_losses = model.rpn(image_list, features, targets)
    candidates = [torch.cat([p, t["boxes"]]) for p, t in zip(proposals, targets)]  # what the RoI sampler indexes
    _, roi_losses = model.roi_heads(features, proposals, image_sizes, targets)
    model.eval()
    arrays = {"losses": np.asarray([rpn_losses["loss_objectness"].item(), rpn_losses["loss_rpn_box_reg"].item(),
                                    roi_losses["loss_classifier"].item(), roi_losses["loss_box_reg"].item()])}
    for image, (boxes, labels) in enumerate(GT_BOXES):
        arrays[f"gt_boxes_{image}"] = np.asarray(boxes, np.float32)
        arrays[f"gt_labels_{image}"] = np.asarray(labels, np.int32)
        arrays[f"rpn_sampled_{image}"] = rpn_sampler.picked[image]
        # The proposals of the training forward (what the RoI head samples from, with the ground truth) and
        # the sampled RoIs by their boxes.
        arrays[f"train_proposals_{image}"] = proposals[image].detach().numpy()
        arrays[f"roi_sampled_boxes_{image}"] = candidates[image][roi_sampler.picked[image]].detach().numpy()
    return arrays


def make_detector(out, generator):
    # torchvision builds the untrained detector with BatchNorm2d and the pretrained one with FrozenBatchNorm2d
    # (same state dict keys): the first calibrates the statistics, the second is the model saved and run.
    trainable = build_detector(torch.nn.BatchNorm2d)
    randomise(trainable, generator)
    # Output scales of a half-trained detector: objectness logits of a few units, RPN deltas well under
    # one (most proposals stay inside the image) and class scores spread over (0, 1).
    for module, factor in ((trainable.backbone.fpn, 0.7), (trainable.rpn.head.bbox_pred, 0.1),
                           (trainable.roi_heads.box_predictor.cls_score, 0.5)):
        for parameter in module.parameters():
            parameter.data *= factor
    calibrate(trainable.backbone.body, normalise(torch.randint(0, 256, (4, 96, 128, 3), generator=generator, dtype=torch.uint8)))
    model = build_detector(FrozenBatchNorm2d)
    state = {k: v for k, v in trainable.state_dict().items() if not k.endswith("num_batches_tracked")}
    model.load_state_dict(state)
    size = save_float16_state_dict(model, out / "fasterrcnn_resnet50_fpn.pth")
    model.eval()
    cases = {}
    with torch.no_grad():
        for name, ((height, width), image_sizes) in DETECTION_CASES.items():
            pixels = torch.randint(0, 256, (len(image_sizes), height, width, 3), generator=generator, dtype=torch.uint8)
            images = normalise(pixels)
            for index, (h, w) in enumerate(image_sizes):  # torchvision pads the normalised batch with zeros
                images[index, :, h:, :] = 0
                images[index, :, :, w:] = 0
            arrays = detector_inference(model, images, image_sizes)
            arrays["pixels"] = pixels.numpy()
            if name == "128x96":
                arrays.update(detector_training(model, images, image_sizes))
            np.savez(out / f"fasterrcnn_{name}.npz", **arrays)
            cases[name] = {"padded": [height, width], "image_sizes": [list(s) for s in image_sizes],
                           "detections": [len(arrays[f"detections_scores_{i}"]) for i in range(len(image_sizes))],
                           "proposals": [len(arrays[f"proposals_{i}"]) for i in range(len(image_sizes))]}
    return {"classes": DETECTION_CLASSES, "fpn_channels": FPN_CHANNELS, "box_head_dim": BOX_HEAD_DIM,
            "canonical_scale": CANONICAL_SCALE, "rpn_post_nms_top_n_test": RPN_POST_NMS_TEST, "cases": cases,
            "pth_bytes": size}


def make_transform(out, photos):
    """`GeneralizedRCNNTransform(800, 1333)` on real JPEGs (PIL decoding, as torchvision's references)."""
    transform = GeneralizedRCNNTransform(800, 1333, IMAGENET_MEAN, IMAGENET_STD).eval()
    arrays, names = {}, []
    for index, photo in enumerate(photos):
        image = torch.from_numpy(np.asarray(Image.open(photo).convert("RGB"))).permute(2, 0, 1).float() / 255
        with torch.no_grad():
            batch, _ = transform([image])
        height, width = batch.image_sizes[0]
        # Only every 16th row and column of the resized image is stored (the padding is zeros): 40 KB, not 11 MB.
        resized = batch.tensors[0, :, :height, :width]
        arrays[f"size_{index}"] = np.asarray([height, width, image.shape[1], image.shape[2]], np.int32)
        arrays[f"grid_{index}"] = resized[:, ::16, ::16].permute(1, 2, 0).numpy()
        arrays[f"padded_{index}"] = np.asarray(batch.tensors.shape[-2:], np.int32)
        names.append(photo.name)
    np.savez(out / "rcnn_transform.npz", **arrays)
    return {"photos": names}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = pathlib.Path(__file__).resolve().parents[1]
    parser.add_argument("--out", type=pathlib.Path, default=root / "tests" / "fixtures" / "reference" / "torchvision")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    meta = {
        "torchvision": torchvision.__version__.split("+")[0],
        "torch": torch.__version__.split("+")[0],
        "stage_depths": list(STAGE_DEPTHS),
        "stage_widths": [64 * 2**stage // WIDTH_DIVISOR for stage in range(4)],
        "fcn": make_fcn(out, generator),
        "faster_rcnn": make_detector(out, generator),
        "transform": make_transform(out, sorted((root / "tests" / "fixtures" / "coco" / "images").glob("*.jpg"))),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    for path in sorted(out.iterdir()):
        print(f"{path.name}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
