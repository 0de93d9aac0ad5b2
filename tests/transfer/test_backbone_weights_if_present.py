"""`model.backbone_weights = "PATH?"`: the transfer demos start from the classification demo's backbone when its
file exists, else from random init, and say which in one line."""

import keras
import kresnet
import numpy as np
import pytest

from kresnet.bundled_recipes import BUNDLED_RECIPES
from kresnet.errors import UserError
from kresnet.classification.build import build_classifier
from kresnet.classification.config import load_classification_recipe
from kresnet.transfer.backbone import build_backbone
from kresnet.transfer.detection.config import load_detection_recipe
from kresnet.transfer.detection.runner import build_detector
from kresnet.transfer.segmentation.config import load_segmentation_recipe
from kresnet.transfer.segmentation.train import build_segmenter

TINY = {"stage_depths": [1, 1, 1, 1], "stage_widths": [8, 8, 16, 16]}
CONV = "stage4_block0_conv1"


def _saved_classifier(tmp_path, num_classes=10):
    classifier = kresnet.create_model("resnet18d", num_classes=num_classes, **TINY)
    path = tmp_path / "classifier.weights.h5"
    classifier.save_weights(path)
    return classifier, path


def test_present_file_is_loaded_and_logged(tmp_path):
    classifier, path = _saved_classifier(tmp_path)
    messages = []
    backbone = build_backbone("resnet18d", f"{path}?", log=messages.append, **TINY)
    np.testing.assert_array_equal(backbone.get_layer(CONV).get_weights()[0], classifier.backbone.get_layer(CONV).get_weights()[0])
    assert messages == [f"backbone: weights from {path} [resnet18d, blocks [1, 1, 1, 1], widths [8, 8, 16, 16]]"]


def test_absent_file_gives_random_init_and_says_so(tmp_path):
    missing = tmp_path / "runs" / "demo" / "model.weights.h5"
    messages = []
    backbone = build_backbone("resnet18d", f"{missing}?", log=messages.append, **TINY)
    assert backbone.stage_widths == TINY["stage_widths"]
    assert len(messages) == 1 and messages[0].startswith("backbone: random init") and str(missing) in messages[0]


@pytest.mark.parametrize("value", ["?", "gluon_in1k?", "hf-hub:timm/resnet18d.ra2_in1k?", "runs/demo/model.weights.h5??", "runs/demo/?"])
def test_a_question_mark_on_anything_but_a_local_weights_file_is_a_one_line_error(value):
    with pytest.raises(UserError) as error:
        build_backbone("resnet18d", value, log=print, **TINY)
    assert "model.backbone_weights" in str(error.value) and "\n" not in str(error.value)


def test_an_existing_file_without_question_mark_still_must_fit(tmp_path):
    # The '?' makes a missing file optional, not a broken one: a file of another architecture is still an error.
    _, path = _saved_classifier(tmp_path)
    with pytest.raises(UserError, match="model.backbone_weights"):
        build_backbone("resnet18d", f"{path}?", stage_depths=[1, 1, 1, 1], stage_widths=[16, 32, 64, 128])


def test_transfer_demos_take_the_classification_demos_backbone(tmp_path, monkeypatch):
    # The demos name runs/demo/model.weights.h5 relative to where they run, like `kresnet train demo` writes it.
    demo = load_classification_recipe(BUNDLED_RECIPES / "demo.toml")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    classifier = build_classifier(demo.model)
    classifier.save_weights(tmp_path / "runs" / "demo" / "model.weights.h5")
    expected = classifier.backbone.get_layer(CONV).get_weights()[0]

    segment = load_segmentation_recipe(BUNDLED_RECIPES / "transfer" / "demo_segment.toml")
    detect = load_detection_recipe(BUNDLED_RECIPES / "transfer" / "demo_detect.toml")
    for model_config in (segment.model, detect.model):
        assert model_config.backbone_weights == "runs/demo/model.weights.h5?"
        assert model_config.backbone == demo.model.name
    messages = []
    segmenter = build_segmenter(segment.model, num_classes=5, log=messages.append)
    np.testing.assert_array_equal(segmenter.get_layer(CONV).get_weights()[0], expected)
    detector = build_detector(detect, num_classes=3, log=messages.append)
    np.testing.assert_array_equal(detector.extractor.get_layer("backbone_pyramid").get_layer(CONV).get_weights()[0], expected)
    assert messages == ["backbone: weights from runs/demo/model.weights.h5 [resnet18d, blocks [1, 1, 1, 1], widths [16, 32, 64, 128]]"] * 2
    keras.backend.clear_session()


def test_a_trained_runs_file_with_optimizer_slots_loads(tmp_path):
    # `kresnet train` saves a compiled model: its .weights.h5 also holds the optimizer's kernel-shaped slots.
    classifier = kresnet.create_model("resnet18d", num_classes=10, **TINY)
    # The classifier ends in logits: a probability loss would turn its zero logits into NaN weights on JAX and PyTorch.
    classifier.compile(optimizer=keras.optimizers.SGD(momentum=0.9),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    classifier.train_on_batch(np.zeros((2, 32, 32, 3), "float32"), np.zeros((2,), "int32"))
    path = tmp_path / "model.weights.h5"
    classifier.save_weights(path)
    messages = []
    backbone = build_backbone("resnet18d", f"{path}?", log=messages.append, **TINY)
    np.testing.assert_array_equal(backbone.get_layer(CONV).get_weights()[0], classifier.backbone.get_layer(CONV).get_weights()[0])
    assert messages == [f"backbone: weights from {path} [resnet18d, blocks [1, 1, 1, 1], widths [8, 8, 16, 16]]"]
