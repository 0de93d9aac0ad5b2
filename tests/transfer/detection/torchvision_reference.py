"""The torchvision Faster R-CNN reference of the parity tests: its files, and kresnet's detector built to match it.

tools/make_torchvision_reference.py made the reference from torchvision's `fasterrcnn_resnet50_fpn` modules,
narrowed (stages 16 times narrower, FPN 8 channels, box head 32, 4 classes) and with its RoI level mapping at
48 px instead of 224 so that RoIs of 128 px images reach every level. kresnet builds its detector from the
bundled recipe with only those sizes overridden.
"""

import numpy as np
from keras import ops

import kresnet
from kresnet.bundled_recipes import resolve_recipe
from kresnet.models.weight_import import load_state_dict
from kresnet.transfer.detection.config import detector_arguments, load_detection_recipe
from kresnet.transfer.detection.faster_rcnn import FasterRCNN
from kresnet.transfer.detection.torchvision_faster_rcnn import import_torchvision_faster_rcnn, torchvision_detector_classes

RECIPE = "coco_faster_rcnn_resnet50_fpn_torchvision"
STAGE_WIDTHS = [4, 8, 16, 32]
NARROW = ["model.fpn_channels=8", "model.head_dim=32", "model.roi_canonical_size=48", "model.rpn_post_nms_topk_test=300"]
CASES = ("128x96", "96x96")  # width x height of the padded batch; 128x96 holds a second, 100x80 image


def reference_folder(testdata):
    return testdata / "reference" / "torchvision"


def reference_recipe(overrides=()):
    return load_detection_recipe(resolve_recipe(RECIPE, folder="transfer"), [*NARROW, *overrides])


def imported_detector(testdata, height, width, overrides=(), cls=FasterRCNN):
    """kresnet's detector of the bundled recipe (narrowed) for `height` x `width` inputs, with the reference weights."""
    state = load_state_dict(reference_folder(testdata) / "fasterrcnn_resnet50_fpn.pth")
    config = reference_recipe(overrides)
    backbone = kresnet.create_backbone(config.model.backbone, input_shape=[height, width, 3], stage_widths=STAGE_WIDTHS)
    model = cls(backbone, torchvision_detector_classes(state), **detector_arguments(config.model))
    return import_torchvision_faster_rcnn(model, state), config


def padded_pixels(case, pixel_mean):
    """The case's 0-255 batch padded as kresnet's pipeline pads: with the mean pixel (torchvision's 0 once normalised)."""
    images = case["pixels"].astype("float32")
    for index, (height, width) in enumerate(case["image_sizes"].astype(int)):
        images[index, height:] = pixel_mean
        images[index, :, width:] = pixel_mean
    return images


def numpy_tree(values):
    if isinstance(values, dict):
        return {key: numpy_tree(value) for key, value in values.items()}
    if isinstance(values, (list, tuple)):
        return [numpy_tree(value) for value in values]
    return ops.convert_to_numpy(values)


def relative_error(got, expected):
    """max |got - expected| / max |expected|: the error against the scale of the values."""
    return float(np.abs(np.asarray(got, np.float64) - expected).max() / np.abs(expected).max())


def assert_same_ranking(boxes, scores, labels, expected_boxes, expected_scores, expected_labels, box_tol, score_tol,
                        allowed_misses=0):
    """The same boxes with the same labels and scores, ranked alike up to the order of near ties.

    Entries are paired one to one by label, box (within `box_tol`) and score (within `score_tol`); the
    pairs must come in the reference's order except between entries whose reference scores lie within
    `score_tol` (a tie that float rounding may break either way). At most `allowed_misses` entries of
    either side may stay unpaired: a top-k cut or an NMS decision on a score or IoU that float rounding
    sets on the other side of the line.
    """
    assert len(scores) == len(expected_scores), (len(scores), len(expected_scores))
    unpaired = set(range(len(expected_scores)))
    paired = []  # reference index of each of our entries that found one, in our order
    for j in range(len(scores)):
        candidates = [k for k in unpaired if labels[j] == expected_labels[k] and abs(scores[j] - expected_scores[k]) <= score_tol
                      and np.abs(boxes[j] - expected_boxes[k]).max() <= box_tol]
        if candidates:
            best = min(candidates, key=lambda k: np.abs(boxes[j] - expected_boxes[k]).max())
            unpaired.discard(best)
            paired.append(best)
    misses = len(scores) - len(paired)
    assert misses <= allowed_misses, f"{misses} of {len(scores)} entries have no counterpart (allowed {allowed_misses})"
    for earlier, later in zip(paired, paired[1:]):
        assert expected_scores[later] <= expected_scores[earlier] + score_tol, (earlier, later)
