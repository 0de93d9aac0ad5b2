"""Config round trips and saving: what a user reloads is the model they saved."""

import subprocess
import sys

import keras
import numpy as np

import kresnet

TINY = {"stage_widths": [4, 4, 8, 8], "stem_width": 4, "stage_depths": [1, 1, 1, 1]}


def test_backbone_config_round_trip():
    backbone = kresnet.create_backbone("resnet50d", output_stride=16, zero_gamma=True, **TINY)
    config = backbone.get_config()
    restored = kresnet.ResNetBackbone.from_config(config)
    assert restored.get_config() == config
    assert isinstance(restored, kresnet.ResNetBackbone)
    assert list(restored.pyramid_outputs) == ["P2", "P3", "P4", "P5"]


def test_classifier_config_round_trip():
    model = kresnet.create_model("resnet18c", num_classes=4, dropout=0.2, **TINY)
    config = model.get_config()
    restored = kresnet.ResNetClassifier.from_config(config)
    assert restored.get_config() == config


def test_keras_file_save_and_load_keeps_predictions(tmp_path):
    model = kresnet.create_model("resnet50d", num_classes=4, **TINY)
    images = np.random.rand(2, 40, 40, 3).astype("float32")
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, kresnet.ResNetClassifier)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(images, training=False)), expected, atol=1e-6)


_LOAD_IN_A_FRESH_PROCESS = """
import sys
import keras, numpy as np
import kresnet
model = kresnet.load_model(sys.argv[1])
np.save(sys.argv[3], keras.ops.convert_to_numpy(model(np.load(sys.argv[2]), training=False)))
"""


def test_load_model_finds_kresnet_classes_in_a_fresh_process(tmp_path):
    # `import kresnet` alone registers nothing (it is lazy); a bare keras.saving.load_model
    # in a new interpreter would not find ResNetClassifier. kresnet.load_model must.
    model = kresnet.create_model("resnet18d", num_classes=3, **TINY)
    images = np.random.rand(1, 33, 33, 3).astype("float32")
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "images.npy", images)
    argv = [str(tmp_path / name) for name in ("model.keras", "images.npy", "out.npy")]
    subprocess.run([sys.executable, "-c", _LOAD_IN_A_FRESH_PROCESS, *argv], check=True)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-6)
