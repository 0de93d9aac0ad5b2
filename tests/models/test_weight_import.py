"""Importing timm state dicts reproduces timm's logits (files in tests/fixtures/reference)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kresnet
from kresnet.models.weight_import import build_model_for, import_state_dict, infer_stage_depths, load_state_dict

REFERENCES = [("bottleneck_b_1111", "resnet50b"), ("bottleneck_d_1111", "resnet50d"), ("basic_d_1111", "resnet18d")]
REFERENCE_WIDTHS = [8, 16, 24, 32]  # the narrow stages of the reference files (tools/make_timm_reference.py)


def _imported(reference_dir, file_stem, name):
    state = load_state_dict(reference_dir / f"{file_stem}.safetensors")
    model = build_model_for(state, name, stage_depths=infer_stage_depths(state))
    return import_state_dict(model, state)


@pytest.mark.parametrize("file_stem, name", REFERENCES)
def test_imported_logits_match_timm(testdata, file_stem, name):
    reference = testdata / "reference"
    model = _imported(reference, file_stem, name)
    # 97 px is odd: it exercises the ceil-mode, pad-excluding average pool of ResNet-D.
    for size in (96, 97):
        images = np.load(reference / f"input_{size}_nhwc.npy")
        expected = np.load(reference / f"{file_stem}_input_{size}_logits.npy")
        logits = keras.ops.convert_to_numpy(model(images, training=False))
        assert np.abs(logits - expected).max() <= 1e-4, (file_stem, size)


# The reference files themselves are float16 .safetensors; these are the other combinations.
@pytest.mark.parametrize("suffix, dtype", [(".pth", "float16"), (".pth", "float32"), (".safetensors", "float32")])
def test_pth_and_safetensors_files_in_float16_and_float32_import_the_same(testdata, tmp_path, suffix, dtype):
    reference = testdata / "reference"
    state = load_state_dict(reference / "basic_d_1111.safetensors")
    path = tmp_path / f"model{suffix}"
    if suffix == ".pth":
        import torch
        torch.save({"state_dict": {k: torch.from_numpy(v.astype(dtype)) for k, v in state.items()}}, path)
    else:
        from safetensors.numpy import save_file

        save_file({k: v.astype(dtype) for k, v in state.items()}, str(path))
    loaded = load_state_dict(path)
    assert loaded.keys() == state.keys()
    model = import_state_dict(build_model_for(loaded, "resnet18d", stage_depths=[1, 1, 1, 1]), loaded)
    images = np.load(reference / "input_96_nhwc.npy")
    expected = np.load(reference / "basic_d_1111_input_96_logits.npy")
    assert np.abs(keras.ops.convert_to_numpy(model(images, training=False)) - expected).max() <= 1e-4


def test_headless_state_dict_gives_a_backbone(testdata):
    state = load_state_dict(testdata / "reference" / "basic_d_1111.safetensors")
    del state["fc.weight"], state["fc.bias"]
    model = import_state_dict(build_model_for(state, "resnet18d", stage_depths=[1, 1, 1, 1]), state)
    assert isinstance(model, kresnet.ResNetBackbone)
    # Its features are those of the backbone imported with the head.
    full = _imported(testdata / "reference", "basic_d_1111", "resnet18d")
    images = np.load(testdata / "reference" / "input_97_nhwc.npy")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(images, training=False)),
        keras.ops.convert_to_numpy(full.backbone(images, training=False)),
        atol=1e-6,
    )


def test_shape_mismatch_and_unknown_key_name_the_key(testdata):
    state = load_state_dict(testdata / "reference" / "basic_d_1111.safetensors")
    bad_shape = dict(state, **{"layer2.0.conv1.weight": np.zeros((3, 3, 3, 3), "float32")})
    model = build_model_for(state, "resnet18d", stage_depths=[1, 1, 1, 1])
    with pytest.raises(ValueError, match="shape mismatch for 'layer2.0.conv1.weight'"):
        import_state_dict(model, bad_shape)
    with pytest.raises(ValueError, match="unknown key 'layer9.extra'"):
        import_state_dict(model, dict(state, **{"layer9.extra": np.zeros(1, "float32")}))
    with pytest.raises(ValueError, match="no key 'layer1.0.bn1.weight'"):
        import_state_dict(model, {k: v for k, v in state.items() if k != "layer1.0.bn1.weight"})


def test_unreadable_files_and_wrong_block_type_are_one_line_errors(testdata, tmp_path, capsys, run_cli):
    import torch
    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole_module.pth")  # a pickled model, not a state dict
    (tmp_path / "corrupt.safetensors").write_bytes(b"not a safetensors file")
    basic = testdata / "reference" / "basic_d_1111.safetensors"
    out = str(tmp_path / "x.weights.h5")
    for argv, message in [
        ([tmp_path / "whole_module.pth", "--model", "resnet18d"], "whole_module.pth: not a readable PyTorch state dict"),
        ([tmp_path / "corrupt.safetensors", "--model", "resnet18d"], "corrupt.safetensors: not a readable PyTorch state dict"),
        ([basic, "--model", "resnet50d", "--depths", "1,1,1,1"], "basic blocks but resnet50d has bottleneck blocks"),
        # timm/torchvision bottlenecks stride on the 3x3 conv (B): the A layout has the same shapes but must refuse them.
        ([testdata / "reference" / "bottleneck_b_1111.safetensors", "--model", "resnet50", "--depths", "1,1,1,1"], "use resnet50b"),
    ]:
        assert run_cli(["import-weights", *argv, "--out", out]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("error:") and message in error and "\n" not in error, error


def test_cli_import_weights_writes_loadable_weights(testdata, tmp_path, capsys, run_cli):
    out = tmp_path / "imported.weights.h5"
    weights = testdata / "reference" / "bottleneck_d_1111.safetensors"
    assert run_cli(["import-weights", weights, "--model", "resnet50d", "--depths", "1,1,1,1", "--out", out]) == 0
    assert "10 classes" in capsys.readouterr().out
    model = kresnet.create_model("resnet50d", num_classes=10, stage_depths=[1, 1, 1, 1], stage_widths=REFERENCE_WIDTHS)
    model.load_weights(out)
    images = np.load(testdata / "reference" / "input_97_nhwc.npy")
    expected = np.load(testdata / "reference" / "bottleneck_d_1111_input_97_logits.npy")
    assert np.abs(keras.ops.convert_to_numpy(model(images, training=False)) - expected).max() <= 1e-4


def test_cli_imports_torchvision_naming_into_a_whole_keras_model(testdata, tmp_path, run_cli):
    # torchvision's ResNets are ResNet-B with the same module names as timm's (conv1, bn1,
    # layerN.M.*, downsample.{0,1}, fc), which the B reference file has.
    out = tmp_path / "imported.keras"
    weights = testdata / "reference" / "bottleneck_b_1111.safetensors"
    argv = ["import-weights", weights, "--model", "resnet50b", "--depths", "1,1,1,1", "--out", out]
    assert run_cli(argv) == 0
    model = kresnet.load_model(out)
    images = np.load(testdata / "reference" / "input_97_nhwc.npy")
    expected = np.load(testdata / "reference" / "bottleneck_b_1111_input_97_logits.npy")
    assert np.abs(keras.ops.convert_to_numpy(model(images, training=False)) - expected).max() <= 1e-4


def test_cli_reports_wrong_depths_and_variant_in_one_line(testdata, tmp_path, capsys, run_cli):
    weights = str(testdata / "reference" / "bottleneck_d_1111.safetensors")
    out = str(tmp_path / "x.weights.h5")
    for argv, message in [
        (["--model", "resnet50d"], "pass --depths 1,1,1,1"),
        (["--model", "resnet50b", "--depths", "1,1,1,1"], "deep 3x3 stem"),
    ]:
        assert run_cli(["import-weights", weights, "--out", out, *argv]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("error:") and message in error and "\n" not in error


NEXT_BACKEND = {"jax": "torch", "torch": "tensorflow", "tensorflow": "jax"}
_LOAD_ON_OTHER_BACKEND = """
import json, sys
import keras, numpy as np, kresnet
spec = json.loads(sys.argv[1])
model = kresnet.create_model("resnet50d", num_classes=5, stage_depths=[1, 1, 1, 1], stage_widths=[8, 8, 16, 16])
model.load_weights(spec["weights"])
np.save(spec["out"], keras.ops.convert_to_numpy(model(np.load(spec["images"]), training=False)))
"""


def test_weights_saved_on_this_backend_give_the_same_logits_on_the_next(tmp_path):
    backend = keras.config.backend()
    model = kresnet.create_model("resnet50d", num_classes=5, stage_depths=[1, 1, 1, 1], stage_widths=[8, 8, 16, 16])
    images = np.random.rand(2, 49, 49, 3).astype("float32")
    # Random running statistics, so that inference-mode BN is not the identity.
    for layer in model.backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.random.uniform(-0.5, 0.5, layer.moving_mean.shape))
            layer.moving_variance.assign(np.random.uniform(0.5, 2.0, layer.moving_variance.shape))
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    model.save_weights(tmp_path / "model.weights.h5")
    np.save(tmp_path / "images.npy", images)
    spec = {"weights": str(tmp_path / "model.weights.h5"), "images": str(tmp_path / "images.npy"), "out": str(tmp_path / "out.npy")}
    env = {"KERAS_BACKEND": NEXT_BACKEND[backend], "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", _LOAD_ON_OTHER_BACKEND, json.dumps(spec)], check=True, env={**os.environ, **env})
    assert np.abs(np.load(tmp_path / "out.npy") - expected).max() <= 1e-4
