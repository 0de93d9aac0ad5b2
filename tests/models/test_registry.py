"""Names, sizes and costs of the model family against timm and the paper's Table 5."""

import re

import pytest

import kresnet
from kresnet.models.complexity import count_macs, count_parameters, shape_only

# timm 1.0 `sum(p.numel() for p in model.parameters())`, 1000 classes. A and B (and C and D)
# differ only in stride placement / pooling, never in parameters.
TIMM_PARAMETERS = {
    18: (11_689_512, 11_708_744),
    34: (21_797_672, 21_816_904),
    50: (25_557_032, 25_576_264),
    101: (44_549_160, 44_568_392),
    152: (60_192_808, 60_212_040),
}


def test_list_models_has_every_depth_and_variant():
    names = kresnet.list_models()
    assert len(names) == 20
    assert names[:4] == ["resnet18", "resnet18b", "resnet18c", "resnet18d"]
    assert "resnet152d" in names


@pytest.mark.parametrize("name", kresnet.list_models())
def test_parameter_count_and_structure_match_timm(name):
    spec = kresnet.model_spec(name)
    standard_stem, deep_stem = TIMM_PARAMETERS[spec.depth]
    expected = deep_stem if spec.flags["deep_stem"] else standard_stem
    model = shape_only(lambda: kresnet.create_model(name, input_shape=[64, 64, 3]))
    assert count_parameters(model) == expected
    # The same build, read as a structure: blocks per stage, block type, stem, stride
    # placement, shortcut pooling, and the P2..P5 strides and channels at 64x64.
    backbone = model.backbone
    layer_names = {layer.name for layer in backbone.layers}
    blocks = [sum(bool(re.fullmatch(rf"stage{stage}_block\d+_add", n)) for n in layer_names) for stage in (1, 2, 3, 4)]
    assert blocks == list(spec.stage_depths)
    assert ("stage1_block0_conv3" in layer_names) == (spec.block_type == "bottleneck")
    assert ("stem_conv1" in layer_names) == spec.flags["deep_stem"]
    assert ("stage2_block0_shortcut_pool" in layer_names) == spec.flags["avg_down"]
    if spec.block_type == "bottleneck":
        strided = "stage2_block0_conv1" if spec.flags["stride_in_1x1"] else "stage2_block0_conv2"
        assert backbone.get_layer(strided).strides == (2, 2)
    expansion = 4 if spec.block_type == "bottleneck" else 1
    shapes = [tuple(backbone.pyramid_outputs[f"P{level}"].shape[1:]) for level in (2, 3, 4, 5)]
    assert shapes == [(16, 16, 64 * expansion), (8, 8, 128 * expansion), (4, 4, 256 * expansion), (2, 2, 512 * expansion)]


def test_resnet50_macs_reproduce_table5():
    # Paper, Table 5: ResNet-50 3.8G, B 4.1G, C 4.3G, D 4.3G (rounded by the authors).
    macs = {
        letter: count_macs(shape_only(lambda: kresnet.create_model(f"resnet50{letter}", input_shape=[224, 224, 3]))) / 1e9
        for letter in ("", "b", "c", "d")
    }
    assert macs[""] < macs["b"] < macs["c"] <= macs["d"]
    for letter, paper in {"": 3.8, "b": 4.1, "c": 4.3, "d": 4.3}.items():
        assert abs(macs[letter] - paper) < 0.06, (letter, macs[letter])


def test_shape_only_counts_equal_a_full_build():
    full = kresnet.create_model("resnet18d", input_shape=[64, 64, 3])
    shapes = shape_only(lambda: kresnet.create_model("resnet18d", input_shape=[64, 64, 3]))
    assert count_parameters(shapes) == count_parameters(full)
    assert count_macs(shapes) == count_macs(full)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown model 'resnet51'.*resnet50d"):
        kresnet.create_model("resnet51")


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"output_stride": 4}, "output_stride=4"),
        ({"num_classes": -3}, "num_classes=-3"),
        ({"stage_depths": [1, 1, 0, 1]}, "stage_depths"),
        ({"kernel_initializer": "orthogonal"}, "kernel_initializer='orthogonal'"),
        ({"data_format": "nchw"}, "data_format='nchw'"),
        ({"stem_width": 0}, "stem_width=0"),
        ({"dropout": "0.1"}, "dropout='0.1'"),
        # Keras' functional constructor would swallow a misspelt keyword and build the default.
        ({"outputstride": 8}, "create_model got unknown argument.*outputstride=8; valid arguments: num_classes, dropout, "),
    ],
)
def test_invalid_options_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument.replace("[", r"\[")):
        kresnet.create_model("resnet18", **kwargs)


def test_misspelt_keywords_are_errors_for_the_backbone_and_classifier_too():
    with pytest.raises(ValueError, match="create_backbone got unknown argument.*num_classes=3; valid arguments: .*output_stride"):
        kresnet.create_backbone("resnet18", num_classes=3)
    with pytest.raises(ValueError, match="ResNetBackbone got unknown argument.*zero_gama=True; .*zero_gamma"):
        kresnet.ResNetBackbone("basic", [1, 1, 1, 1], zero_gama=True)
    backbone = kresnet.create_backbone("resnet18", stage_depths=[1, 1, 1, 1], stage_widths=[4, 4, 4, 4], stem_width=4)
    with pytest.raises(ValueError, match="ResNetClassifier got unknown argument.*num_class=3; .*num_classes"):
        kresnet.ResNetClassifier(backbone, num_class=3)
