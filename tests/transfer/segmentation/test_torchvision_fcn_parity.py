"""kresnet's FCN equals torchvision's `fcn_resnet50` number for number (tests/fixtures/reference/torchvision).

The reference is torchvision's own FCN (its ResNet-50 dilated with `replace_stride_with_dilation=[False,
True, True]`, `FCNHead` on stage 4, the auxiliary `FCNHead` on stage 3, bilinear upsampling) with every
stage 16 times narrower and seeded random weights, made by tools/make_torchvision_reference.py. kresnet
builds it from the bundled recipe, only narrowed to the file's widths, and imports the `.pth` as a user
imports torchvision's published file.
"""

import keras
import numpy as np
import pytest

from kresnet.bundled_recipes import resolve_recipe
from kresnet.errors import UserError
from kresnet.models.weight_import import load_state_dict
from kresnet.transfer.segmentation.config import load_segmentation_recipe
from kresnet.transfer.segmentation.torchvision_fcn import import_torchvision_fcn, torchvision_fcn_classes
from kresnet.transfer.segmentation.train import build_segmenter

RECIPE = "voc_fcn_resnet50_torchvision"
NARROW = ["model.stage_widths=[4,8,16,32]"]  # the reference's stages (ResNet-50's divided by 16)


def _segmenter(state, overrides=()):
    config = load_segmentation_recipe(resolve_recipe(RECIPE, folder="transfer"), [*NARROW, *overrides])
    return build_segmenter(config.model, torchvision_fcn_classes(state))


@pytest.fixture(scope="module")
def reference(testdata):
    folder = testdata / "reference" / "torchvision"
    return load_state_dict(folder / "fcn_resnet50.pth"), np.load(folder / "fcn_resnet50_outputs.npz")


def test_logits_and_aux_logits_equal_torchvision_at_two_sizes(reference):
    state, outputs = reference
    model = import_torchvision_fcn(_segmenter(state), state)
    # 42 x 58 is not square and not a multiple of the output stride: the upsampling is not a whole factor.
    for size in ("48x48", "42x58"):
        images = outputs[f"{size}_images"].astype("float32")
        result = model(images, training=False)
        for ours, theirs in (("logits", "logits"), ("aux_logits", "aux_logits")):
            expected = outputs[f"{size}_{theirs}"]
            got = keras.ops.convert_to_numpy(result[ours])
            assert got.shape == expected.shape
            assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max(), (size, ours)


def test_a_file_and_a_model_that_disagree_on_the_auxiliary_head_name_the_key(reference):
    state, _ = reference
    with pytest.raises(UserError, match=r"unknown key 'aux_classifier\.0\.weight'"):
        import_torchvision_fcn(_segmenter(state, ["model.aux=false"]), state)
    without_aux = {key: value for key, value in state.items() if not key.startswith("aux_classifier.")}
    with pytest.raises(UserError, match=r"no key 'aux_classifier\.0\.weight'"):
        import_torchvision_fcn(_segmenter(state), without_aux)
    with pytest.raises(UserError, match="not a torchvision FCN"):
        torchvision_fcn_classes({"layer1.0.conv1.weight": np.zeros((4, 64, 1, 1), "float32")})
