"""On a fixed batch, kresnet's four Faster R-CNN losses equal torchvision's (`fasterrcnn_resnet50_fpn`, training mode).

Both samplers draw at random, so the comparison replays torchvision's draw: the reference recorded which
anchors and which RoIs its `BalancedPositiveNegativeSampler` picked (tools/make_torchvision_reference.py),
and a kresnet detector whose `sampling_priority` ranks exactly those first picks the same set, provided
kresnet labels every anchor and RoI as torchvision does. The RoI head also gets torchvision's proposals of
that forward: kresnet's own equal them (test_torchvision_faster_rcnn_parity.py), except that float rounding
may trade one near-tied proposal for another, and a sampled RoI must exist on both sides. Everything else
is kresnet's own: the matching (IoU 0.7/0.3 with the low-quality rule for the RPN, 0.5 for the RoIs), the
ground truth appended to the proposals, the box encoding (weights 1 and 10, 10, 5, 5), the features and
heads from the pixels, the smooth-L1 losses with beta 1/9 and the normalisation by the number sampled.
"""

import numpy as np
import pytest
from keras import ops

from kresnet.transfer.detection.faster_rcnn import LOSS_NAMES, FasterRCNN
from tests.transfer.detection.torchvision_reference import imported_detector, numpy_tree, padded_pixels, reference_folder

CASE = "128x96"
MAX_BOXES = 4  # ground-truth slots per image (the reference has 3 and 2 boxes)


class ReplayedSample(FasterRCNN):
    """A detector whose balanced sampling picks torchvision's recorded anchors and RoIs."""

    # {"rpn": [anchor indices per image], "roi": [(K, 4) sampled RoI boxes per image], "proposals": [(P, 4) per image]}
    recorded = None

    def region_proposals(self, rpn_logits, rpn_deltas, image_sizes, training=False):
        if not training:
            return super().region_proposals(rpn_logits, rpn_deltas, image_sizes, training)
        length = self.settings["rpn_post_nms_topk_train"]
        boxes = np.zeros((len(self.recorded["proposals"]), length, 4), np.float32)
        valid = np.zeros(boxes.shape[:2], bool)
        for image, proposals in enumerate(self.recorded["proposals"]):
            boxes[image, :len(proposals)] = proposals
            valid[image, :len(proposals)] = True
        return ops.convert_to_tensor(boxes), ops.zeros(valid.shape), ops.convert_to_tensor(valid)

    def sampling_priority(self, stage, labels, boxes):
        labels = ops.convert_to_numpy(labels)
        priority = np.zeros(labels.shape, np.float32)
        for image, picked in enumerate(self.recorded[stage]):
            if stage == "rpn":  # the anchors are the same in both, in the same order
                priority[image, picked] = 1.0
                continue
            # RoIs are found by their box (torchvision's proposals, then the ground truth).
            candidates = ops.convert_to_numpy(boxes)[image]
            for box in picked:
                distance = np.abs(candidates - box).max(axis=1)
                assert distance.min() == 0, f"torchvision's RoI {box} is not among the candidates"
                priority[image, distance.argmin()] = 1.0
        return ops.convert_to_tensor(priority)


@pytest.fixture(scope="module")
def case(testdata):
    return np.load(reference_folder(testdata) / f"fasterrcnn_{CASE}.npz")


def _targets(case):
    images = len(case["image_sizes"])
    boxes = np.zeros((images, MAX_BOXES, 4), np.float32)
    labels = np.zeros((images, MAX_BOXES), np.int32)
    valid = np.zeros((images, MAX_BOXES), bool)
    for image in range(images):
        count = len(case[f"gt_boxes_{image}"])
        boxes[image, :count] = case[f"gt_boxes_{image}"]
        labels[image, :count] = case[f"gt_labels_{image}"] - 1  # kresnet's classes start at 0, torchvision's at 1
        valid[image, :count] = True
    return {"gt_boxes": boxes, "gt_labels": labels, "gt_valid": valid}


def test_four_losses_equal_torchvisions_on_its_sample(testdata, case):
    images, height, width, _ = case["pixels"].shape
    model, config = imported_detector(testdata, height, width, cls=ReplayedSample)
    model.recorded = {"rpn": [case[f"rpn_sampled_{i}"] for i in range(images)],
                      "roi": [case[f"roi_sampled_boxes_{i}"] for i in range(images)],
                      "proposals": [case[f"train_proposals_{i}"] for i in range(images)]}
    inputs = {"images": padded_pixels(case, np.asarray(config.model.pixel_mean, np.float32)),
              "image_sizes": case["image_sizes"], **_targets(case)}
    outputs = model(inputs, training=True)
    # The replay picked as many anchors and RoIs as torchvision: each set equal, not a subset of it.
    picked = numpy_tree([outputs["rpn_picked"], outputs["roi_picked"]])
    assert picked[0].sum(axis=1).tolist() == [len(case[f"rpn_sampled_{i}"]) for i in range(images)]
    assert picked[1].sum(axis=1).tolist() == [len(case[f"roi_sampled_boxes_{i}"]) for i in range(images)]
    losses = numpy_tree(model.loss_terms(outputs))
    # torchvision's order: objectness, RPN box regression, classifier, box regression.
    for name, expected in zip(LOSS_NAMES, case["losses"]):
        assert abs(losses[name] - expected) <= 1e-4 * abs(expected), (name, float(losses[name]), expected)
