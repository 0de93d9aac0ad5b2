"""`weights=`: tags, Hub ids and local files resolve through a real (offline) Hub cache to timm's logits."""

import keras
import numpy as np
import pytest

import kresnet
from kresnet.models import presets
from tests.models.hub_cache import add_to_hub_cache, make_offline_hub

ONE_BLOCK = {"stage_depths": [1, 1, 1, 1]}  # the reference files' depths; their narrow widths come from the files
NARROW = {**ONE_BLOCK, "stage_widths": [8, 16, 24, 32]}  # a Keras weights file carries no shape: say it


@pytest.fixture
def reference(testdata):
    return testdata / "reference"


@pytest.fixture
def hub(tmp_path, monkeypatch, reference):
    return make_offline_hub(tmp_path, monkeypatch, reference)


def _logits(model, reference, size=97):
    return keras.ops.convert_to_numpy(model(np.load(reference / f"input_{size}_nhwc.npy"), training=False))


@pytest.mark.parametrize(
    "name, weights, stem",
    [
        ("resnet50d", "gluon_in1k", "bottleneck_d_1111"),
        ("resnet50d", "hf-hub:timm/resnet50d.gluon_in1k", "bottleneck_d_1111"),
        ("resnet50b", "resnet50b.gluon_in1k", "bottleneck_b_1111"),  # timm's resnet50 is kresnet's B layout
        ("resnet50b", "resnet50.gluon_in1k", "bottleneck_b_1111"),  # timm's own name of that checkpoint
        ("resnet50d", "resnet50d.gluon_in1k", "bottleneck_d_1111"),
        ("resnet18d", "ra2_in1k", "basic_d_1111"),
    ],
)
def test_tags_and_hub_ids_load_timm_logits(hub, reference, name, weights, stem):
    model = kresnet.create_model(name, weights=weights, **ONE_BLOCK)
    assert model.num_classes == 10  # from the file
    expected = np.load(reference / f"{stem}_input_97_logits.npy")
    assert np.abs(_logits(model, reference) - expected).max() <= 1e-4


def test_second_load_reuses_the_converted_cache(hub, reference, tmp_path, monkeypatch):
    first = kresnet.create_model("resnet50d", weights="gluon_in1k", **ONE_BLOCK)
    cached = list((tmp_path / "kresnet_cache").rglob("*.weights.h5"))
    assert len(cached) == 1 and "timm--resnet50d.gluon_in1k" in str(cached[0])

    from kresnet.models.weight_import import import_state_dict as converter

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted a second time")

    monkeypatch.setattr("kresnet.models.weight_import.import_state_dict", no_conversion)
    second = kresnet.create_model("resnet50d", weights="gluon_in1k", **ONE_BLOCK)
    np.testing.assert_array_equal(_logits(second, reference), _logits(first, reference))
    # A damaged cache entry (a full disk, say) is removed and converted again, not trusted.
    monkeypatch.setattr("kresnet.models.weight_import.import_state_dict", converter)
    cached[0].write_bytes(b"damaged")
    third = kresnet.create_model("resnet50d", weights="gluon_in1k", **ONE_BLOCK)
    np.testing.assert_array_equal(_logits(third, reference), _logits(first, reference))
    assert cached[0].stat().st_size > 1000


def test_other_classes_load_the_backbone_only_with_a_fresh_head(hub, reference, capsys):
    full = kresnet.create_model("resnet50d", weights="gluon_in1k", **ONE_BLOCK)
    model = kresnet.create_model("resnet50d", num_classes=3, weights="gluon_in1k", **ONE_BLOCK)
    assert "loaded the backbone only; the 3-class head is fresh" in capsys.readouterr().err
    assert model.num_classes == 3
    images = np.load(reference / "input_96_nhwc.npy")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.backbone(images, training=False)),
        keras.ops.convert_to_numpy(full.backbone(images, training=False)),
        atol=1e-5,
    )
    backbone = kresnet.create_backbone("resnet50d", weights="gluon_in1k", output_stride=8, **ONE_BLOCK)
    assert isinstance(backbone, kresnet.ResNetBackbone) and backbone.output_stride == 8


def _one_line_error(call, *fragments):
    with pytest.raises(kresnet.UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and all(fragment in message for fragment in fragments), message


def test_unknown_tags_and_layout_mismatches_are_one_line_errors(hub):
    _one_line_error(lambda: kresnet.create_model("resnet50d", weights="gluon"), "no such tag for resnet50d", "a1_in1k, a2_in1k")
    # Same shapes, wrong strides: B weights into the A layout must not load silently.
    _one_line_error(lambda: kresnet.create_model("resnet50", weights="resnet50b.gluon_in1k", **ONE_BLOCK), "ResNet-B layout", "resnet50b")
    _one_line_error(
        lambda: kresnet.create_model("resnet50", weights="hf-hub:timm/resnet50.gluon_in1k", **ONE_BLOCK), "ResNet-B layout"
    )
    _one_line_error(lambda: kresnet.create_model("resnet50d", weights="resnet18d.ra2_in1k", **ONE_BLOCK), "basic blocks")
    _one_line_error(lambda: kresnet.create_model("resnet50d", weights="gluon_in1k"), "pass stage_depths=[1, 1, 1, 1]")
    _one_line_error(lambda: kresnet.create_model("resnet50d", weights="gluon_in1k", stage_widths=[8, 8, 8, 8], **ONE_BLOCK),
                    "[8, 16, 24, 32] stage widths but resnet50d is built with [8, 8, 8, 8]; pass stage_widths=[8, 16, 24, 32]")
    _one_line_error(lambda: kresnet.create_model("resnet50d", weights="gluon_in1k", dropout=0.2, **ONE_BLOCK), "dropout")


def test_every_checkpoint_answers_to_kresnets_name_timms_name_and_its_hub_id():
    for preset in presets.all_presets():
        for name in (preset.full_name, preset.hub_id.split("/")[-1], "hf-hub:" + preset.hub_id):
            assert presets.find_preset(name) is preset
    assert presets.find_preset("resnet50.a1_in1k").full_name == "resnet50b.a1_in1k"
    assert presets.preset_named("resnet50.tv_in1k").full_name == "resnet50b.tv_in1k"


@pytest.mark.parametrize("call, fragments", [
    # Misspelt names and tags list the close matches; a bare tag of several models lists them.
    (lambda: presets.preset_named("resnet50.tv_in1"), ["close matches: resnet50.tv_in1k", "resnet50.tv2_in1k"]),
    (lambda: presets.preset_named("resnet50d.gluon"), ["close matches: resnet50d.gluon_in1k"]),
    (lambda: presets.preset_named("tv_in1k"), ["a tag, not a full name", "resnet18.tv_in1k", "resnet50b.tv_in1k"]),
    (lambda: presets.preset_named("a1_in1"), ["close matches: a1_in1k"]),
    (lambda: kresnet.create_model("resnet50d", weights="gluon_in1"), ["no such tag for resnet50d; close matches: gluon_in1k"]),
    (lambda: kresnet.create_model("resnet50d", weights="resnet50d.gluon_in1"), ["close matches: resnet50d.gluon_in1k"]),
    # timm's name of B weights into kresnet's A layout: the error says both names and the model to use.
    (lambda: kresnet.create_model("resnet50", weights="resnet50.a1_in1k"), ["resnet50b.a1_in1k (timm: resnet50.a1_in1k)", "resnet50b"]),
])
def test_unknown_or_ambiguous_names_are_one_line_errors_with_close_matches(call, fragments):
    _one_line_error(call, *fragments)


def test_offline_without_cache_says_which_file_to_fetch(hub):
    _one_line_error(
        lambda: kresnet.create_model("resnet50d", weights="a1_in1k"),
        "HF_HUB_OFFLINE",
        "https://huggingface.co/timm/resnet50d.a1_in1k/resolve/main/model.safetensors",
        "weights=",
    )


def test_corrupt_hub_file_is_an_error_and_removed(hub, tmp_path):
    path = add_to_hub_cache(hub, "timm/resnet50d.a1_in1k", b"truncated download")
    _one_line_error(lambda: kresnet.create_model("resnet50d", weights="a1_in1k", **ONE_BLOCK), "corrupt or partial", "removed")
    assert not path.exists() and not path.resolve().exists()


def test_local_files_load_with_classes_from_the_file(reference, tmp_path):
    imported = kresnet.create_model("resnet50d", weights=reference / "bottleneck_d_1111.safetensors", **ONE_BLOCK)
    expected = np.load(reference / "bottleneck_d_1111_input_97_logits.npy")
    imported.save_weights(tmp_path / "model.weights.h5")
    imported.save(tmp_path / "model.keras")
    for path in (tmp_path / "model.weights.h5", tmp_path / "model.keras"):
        model = kresnet.create_model("resnet50d", weights=path, **NARROW)
        assert model.num_classes == 10
        assert np.abs(_logits(model, reference) - expected).max() <= 1e-4
    _one_line_error(lambda: kresnet.create_model("resnet50c", weights=tmp_path / "model.keras"), "not resnet50c")


def test_keras_hub_preset_folder_round_trip(reference, tmp_path):
    import keras_hub

    backbone = kresnet.create_backbone("resnet50d", weights=reference / "bottleneck_d_1111.safetensors", **ONE_BLOCK)
    folder = tmp_path / "resnet50d_preset"
    backbone.save_to_preset(str(folder))
    images = np.load(reference / "input_96_nhwc.npy")
    expected = keras.ops.convert_to_numpy(backbone(images, training=False))
    from_hub = keras_hub.models.Backbone.from_preset(str(folder))
    from_kresnet = kresnet.create_backbone("resnet50d", weights=folder)
    for loaded in (from_hub, from_kresnet):
        assert isinstance(loaded, kresnet.ResNetBackbone)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(images, training=False)), expected, atol=1e-5)


def test_preset_table_covers_timm_tags():
    table = {preset.full_name: preset for preset in presets.all_presets()}
    assert len(table) == 62
    gluon = table["resnet50d.gluon_in1k"]
    assert (gluon.hub_id, gluon.origin, gluon.top1, gluon.eval_size, gluon.resize_size, gluon.interpolation) == (
        "timm/resnet50d.gluon_in1k", "GluonCV", 79.08, 224, 256, "bicubic",
    )
    assert table["resnet50b.tv_in1k"].hub_id == "timm/resnet50.tv_in1k" and table["resnet50b.tv_in1k"].origin == "torchvision"
    assert {preset.name for preset in table.values()} <= set(kresnet.list_models())
    assert presets.presets_of("resnet18b") == presets.presets_of("resnet18")  # basic blocks: A and B are one layout
    assert not presets.presets_of("resnet50")


def test_models_pretrained_prints_the_table(run_cli, capsys):
    # `--pretrained`, not `--weights`: elsewhere (`evaluate --weights TAG`) --weights takes a value.
    assert run_cli(["models", "--pretrained", "--match", "resnet50d."]) == 0
    out = capsys.readouterr().out
    assert "gluon_in1k" in out and "79.08" in out and "GluonCV" in out and "timm/resnet50d.gluon_in1k" in out
    assert "resnet50b" not in out
    assert run_cli(["models", "--weights", "--match", "resnet50d."]) == 0  # the old name, hidden, still works
    captured = capsys.readouterr()
    assert "gluon_in1k" in captured.out and captured.err == "kresnet models --weights is now --pretrained\n"
    assert run_cli(["models", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "--pretrained" in help_text and "--weights" not in help_text


def test_transfer_tasks_and_the_teacher_start_from_a_tag_through_the_one_loader(hub, reference, tmp_path):
    from kresnet.classification.build import load_teacher
    from tests.training_helpers import tiny_recipe
    from kresnet.transfer.detection.config import load_detection_recipe
    from kresnet.transfer.detection.runner import build_detector
    from kresnet.transfer.segmentation.config import Model, load_segmentation_recipe
    from kresnet.transfer.segmentation.train import build_segmenter

    full = kresnet.create_model("resnet50d", weights="gluon_in1k", **ONE_BLOCK)
    conv = full.backbone.get_layer("stage4_block0_conv2").get_weights()[0]
    segmenter = build_segmenter(Model(backbone="resnet50d", backbone_weights="gluon_in1k", aux=False, **ONE_BLOCK), num_classes=3)
    np.testing.assert_array_equal(segmenter.get_layer("stage4_block0_conv2").get_weights()[0], conv)
    detection = load_detection_recipe(
        kresnet_recipe("voc_faster_rcnn_r50d_gluon"),
        ["model.stage_depths=[1, 1, 1, 1]", "data.short_side=64", "data.max_side=64", "model.fpn_channels=8", "model.head_dim=8", "train.precision=float32"],
    )
    detector = build_detector(detection, num_classes=3)
    np.testing.assert_array_equal(detector.extractor.get_layer("backbone_pyramid").get_layer("stage4_block0_conv2").get_weights()[0], conv)
    # The bundled Table 8/9 recipes on the paper's own weights name the tag; the old class-count key is a one-line error.
    segmentation = load_segmentation_recipe(kresnet_recipe("ade20k_fcn_r50d_gluon"))
    for config in (detection, segmentation):
        assert config.model.backbone == "resnet50d" and config.model.backbone_weights == "gluon_in1k"
        assert presets.preset_for("resnet50d", config.model.backbone_weights).top1 == pytest.approx(79.08)
    teacher_config = tiny_recipe(
        model={"num_classes": 10},
        distillation={"teacher_model": "resnet50d", "teacher_weights": "resnet50d.gluon_in1k", "teacher_stage_depths": [1, 1, 1, 1]},
    )
    teacher = load_teacher(teacher_config)
    assert np.abs(_logits(teacher, reference) - _logits(full, reference)).max() <= 1e-5 and not teacher.trainable
    with pytest.raises(kresnet.UserError, match=r"model\.backbone_classes: removed; the class count now comes from"):
        load_segmentation_recipe(kresnet_recipe("ade20k_fcn_r50d_gluon"), ["model.backbone_classes=1000"])


def kresnet_recipe(stem):
    from kresnet.bundled_recipes import BUNDLED_RECIPES

    return BUNDLED_RECIPES / "transfer" / f"{stem}.toml"


def test_a_fresh_process_loads_a_preset_folder_with_keras_hub(tmp_path):
    # In a new process nothing has registered kresnet's classes yet: the README's import must do it.
    import os
    import subprocess
    import sys

    backbone = kresnet.create_backbone("resnet18d", stage_widths=[4, 4, 8, 8], stem_width=4, **ONE_BLOCK)
    backbone.save_to_preset(str(tmp_path / "preset"))
    script = (
        "import sys, keras_hub\nfrom kresnet import ResNetBackbone\n"
        "loaded = keras_hub.models.Backbone.from_preset(sys.argv[1])\n"
        "assert isinstance(loaded, ResNetBackbone) and loaded.stage_widths == [4, 4, 8, 8], loaded\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "preset")], check=True, env=env)


def test_a_keras_file_holding_python_code_is_one_line_wherever_it_is_given(tmp_path, run_cli, capsys, monkeypatch):
    # A .keras file whose model has a Lambda layer: Keras' safe mode refuses to run its code, as it should.
    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs)).save(tmp_path / "lambda.keras")
    (tmp_path / "val" / "class0").mkdir(parents=True)
    assert run_cli(["evaluate", "--weights", tmp_path / "lambda.keras", "--model", "resnet18d", "--data", tmp_path]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert f"{tmp_path / 'lambda.keras'}: holds Python code (a Lambda layer), which Keras' safe mode refuses" in err
    from kresnet.transfer.backbone import build_backbone

    _one_line_error(lambda: build_backbone("resnet18d", str(tmp_path / "lambda.keras")), "model.backbone_weights=",
                    "holds Python code (a Lambda layer)")
    # And as a transfer recipe's model.backbone_weights, from the command a user types.
    monkeypatch.setenv("KRESNET_CACHE", str(tmp_path / "cache"))
    assert run_cli(["transfer", "detect", "demo_detect", "--out", tmp_path / "run", "--set",
                    f"model.backbone_weights={tmp_path / 'lambda.keras'}", "--set", "data.synthetic_train_images=2",
                    "--set", "data.synthetic_test_images=1"]) == 2
    err = capsys.readouterr().err.strip()  # after the progress line "preparing the synthetic VOC scenes"
    assert "Traceback" not in err and err.splitlines()[-1].startswith("error: ")
    err = err.splitlines()[-1]
    assert f"model.backbone_weights='{tmp_path / 'lambda.keras'}': " in err and "holds Python code (a Lambda layer)" in err
    (tmp_path / "cut.keras").write_bytes((tmp_path / "lambda.keras").read_bytes()[:200])
    _one_line_error(lambda: kresnet.create_model("resnet18d", weights=tmp_path / "cut.keras"), "cut.keras: not a loadable .keras file")
