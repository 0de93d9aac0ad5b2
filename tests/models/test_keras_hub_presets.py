"""keras-hub presets both ways: folders keras-hub itself writes (ResNet v1 and vd) load into kresnet with keras-hub's
logits, incompatible ones are one-line errors, and kresnet's exports load as `keras_hub.models.ImageClassifier`."""

import os
import subprocess
import sys

import keras
import keras_hub
import numpy as np
import pytest

import kresnet
from tests.models.hub_cache import IMAGENET_STAND_IN, add_imagenet_stand_in, make_offline_hub
from tests.models.test_pretrained import _one_line_error

# Tiny keras-hub configs (keras-hub requires 64 filters in the first stage); two blocks in stage 2.
STAGES = {"stackwise_num_filters": [64, 8, 8, 16], "stackwise_num_blocks": [1, 2, 1, 1], "stackwise_num_strides": [1, 2, 2, 2]}
LAYOUTS = {
    # keras-hub block_type: (stem filters, stem kernels, the kresnet name it loads as)
    "bottleneck_block_vd": ([8, 8, 16], [3, 3, 3], "resnet50d"),
    "bottleneck_block": ([64], [7], "resnet50b"),
    "basic_block": ([64], [7], "resnet18"),
}


def _keras_hub_backbone(block_type, **overrides):
    filters, kernels, _ = LAYOUTS.get(block_type, LAYOUTS["bottleneck_block_vd"])
    settings = {"input_conv_filters": filters, "input_conv_kernel_sizes": kernels, **STAGES, "block_type": block_type, **overrides}
    return keras_hub.models.ResNetBackbone(**settings)


def _randomise(model, seed=0):
    """Random weights everywhere, BatchNorm statistics included (a fresh BN is the identity and would hide swaps)."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        values = rng.normal(0.0, 0.3, variable.shape)
        if "variance" in variable.path:
            values = np.abs(values) + 0.5
        variable.assign(values.astype("float32"))


def _images(size=97, seed=1):
    # An odd size exercises the stride-2 padding and ResNet-D's average-pool shortcut on odd maps.
    return np.random.default_rng(seed).uniform(-2.0, 2.0, (2, size, size, 3)).astype("float32")


def _numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


@pytest.mark.parametrize("block_type", sorted(LAYOUTS))
def test_keras_hub_presets_load_with_keras_hub_logits(block_type, tmp_path):
    name = LAYOUTS[block_type][2]
    task = keras_hub.models.ResNetImageClassifier(backbone=_keras_hub_backbone(block_type), num_classes=5)
    _randomise(task)
    task.save_to_preset(str(tmp_path / "task"))
    task.backbone.save_to_preset(str(tmp_path / "backbone"))
    images = _images()

    model = kresnet.create_model(name, weights=tmp_path / "task")
    assert model.num_classes == 5 and model.backbone.stage_depths == [1, 2, 1, 1]
    np.testing.assert_allclose(_numpy(model(images, training=False)), _numpy(task(images, training=False)), atol=1e-5)
    backbone = kresnet.create_backbone(name, weights=tmp_path / "backbone")
    np.testing.assert_allclose(_numpy(backbone(images)), _numpy(task.backbone(images)), atol=1e-5)
    # Named by the folder alone: the Python and CLI entry points infer the model from the preset.
    inferred, _, class_names = kresnet.load_for_inference(tmp_path / "task")
    assert inferred.name == name and class_names == [f"class {i}" for i in range(5)]


def test_incompatible_keras_hub_presets_are_one_line_errors(tmp_path):
    cases = {
        "v2": (_keras_hub_backbone("bottleneck_block", input_conv_filters=[64], input_conv_kernel_sizes=[7], use_pre_activation=True),
               "use_pre_activation=True (ResNetV2"),
        "basic_vd": (_keras_hub_backbone("basic_block_vd"), "basic_block_vd, whose first block has a 1x1 projection"),
        "three_stages": (_keras_hub_backbone("bottleneck_block_vd", stackwise_num_filters=[64, 8, 8], stackwise_num_blocks=[1, 1, 1],
                                             stackwise_num_strides=[1, 2, 2]), "3 stages"),
    }
    for folder, (backbone, message) in cases.items():
        backbone.save_to_preset(str(tmp_path / folder))
        _one_line_error(lambda: kresnet.create_backbone("resnet50d", weights=tmp_path / folder), message)
    _keras_hub_backbone("bottleneck_block_vd").save_to_preset(str(tmp_path / "vd"))
    _one_line_error(lambda: kresnet.create_backbone("resnet50b", weights=tmp_path / "vd"), "not resnet50b")
    (tmp_path / "empty").mkdir()
    _one_line_error(lambda: kresnet.create_backbone("resnet50d", weights=tmp_path / "empty"), "no config.json")


@pytest.fixture
def stand_in_tag(testdata, tmp_path, monkeypatch):
    hub = make_offline_hub(tmp_path, monkeypatch, testdata / "reference")
    add_imagenet_stand_in(hub, testdata / "reference")
    return IMAGENET_STAND_IN.removeprefix("timm/")


def test_an_export_loads_as_a_keras_hub_image_classifier_with_its_eval_transform(stand_in_tag, testdata, tmp_path, run_cli):
    folder = tmp_path / "exported"
    assert run_cli(["export", stand_in_tag, folder, "--depths", "1,1,1,1"]) == 0
    model, transform, class_names = kresnet.load_for_inference(stand_in_tag, stage_depths=[1, 1, 1, 1])

    task = keras_hub.models.ImageClassifier.from_preset(str(folder))
    assert isinstance(task, kresnet.ResNetImageClassifier) and task.num_classes == 1000
    assert task.preprocessor.image_converter.eval_transform == transform  # the tag's: 160 of 168, bicubic
    from PIL import Image

    # Photos of one size, as a batch of uint8 pixels: keras-hub's predict runs the preprocessor, then the model.
    photos = np.stack([np.asarray(Image.open(path).convert("RGB").resize((131, 101)))
                       for path in (testdata / "ade20k" / "images").glob("*.jpg")])
    expected = _numpy(model(np.stack([transform(photo) for photo in photos]), training=False))
    np.testing.assert_allclose(task.predict(photos, verbose=0), expected, atol=1e-4)
    # ... and kresnet reads its own export back: the classifier, the transform and the class names.
    again, again_transform, again_names = kresnet.load_for_inference(folder)
    assert again_transform == transform and again_names == class_names and again_names[0] == "tench"
    np.testing.assert_allclose(_numpy(again(np.stack([transform(p) for p in photos]), training=False)), expected, atol=1e-5)
    assert run_cli(["export", stand_in_tag, folder]) == 2  # never over an existing folder


def test_a_backbone_preset_gets_a_fresh_head_and_the_papers_transform(tmp_path):
    backbone = kresnet.create_backbone("resnet18d", stage_depths=[1, 1, 1, 1], stage_widths=[8, 8, 16, 16], stem_width=8)
    backbone.save_to_preset(str(tmp_path / "preset"))
    task = keras_hub.models.ImageClassifier.from_preset(str(tmp_path / "preset"), num_classes=3)
    assert task.preprocessor.image_converter.eval_transform == kresnet.EvalTransform.paper(224)
    assert task.predict(np.zeros((1, 250, 300, 3), "uint8"), verbose=0).shape == (1, 3)


def test_a_fresh_process_loads_an_export_as_an_image_classifier(tmp_path):
    # In a new process nothing has registered kresnet's classes: the documented import must bring the task too.
    model = kresnet.create_model("resnet18d", num_classes=3, stage_depths=[1, 1, 1, 1], stage_widths=[8, 8, 16, 16])
    from kresnet.models.keras_hub_classifier import save_preset

    save_preset(model, kresnet.EvalTransform.paper(64), tmp_path / "preset", class_names=["a", "b", "c"])
    script = (
        "import sys, keras_hub\nfrom kresnet import ResNetBackbone\n"
        "task = keras_hub.models.ImageClassifier.from_preset(sys.argv[1])\n"
        "assert type(task).__name__ == 'ResNetImageClassifier' and task.num_classes == 3, task\n"
        "assert task.preprocessor.image_converter.eval_transform.eval_size == 64\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "preset")], check=True, env=env)
