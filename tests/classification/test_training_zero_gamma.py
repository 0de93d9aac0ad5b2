"""Zero-gamma, switched by the recipe: every residual block outputs its shortcut at initialisation."""

import keras
import numpy as np
import pytest

from kresnet.classification.build import build_classifier
from kresnet.classification.config import classification_recipe_from_dict


@pytest.mark.parametrize("zero_gamma", [True, False])
def test_blocks_output_their_shortcut_at_init(zero_gamma):
    config = classification_recipe_from_dict(
        {"model": {"name": "resnet18d", "num_classes": 3, "zero_gamma": zero_gamma, "stage_depths": [1, 1, 1, 1],
                   "stage_widths": [4, 4, 8, 8]}}
    )
    model = build_classifier(config.model)
    adds = [layer for layer in model.backbone.layers if layer.name.endswith("_add")]
    assert len(adds) == 4
    probe = keras.Model(model.backbone.inputs, [[add.input[0], add.input[1], add.output] for add in adds])
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    for residual, shortcut, output in probe.predict(images, verbose=0):
        if zero_gamma:
            np.testing.assert_array_equal(residual, 0.0)
            np.testing.assert_array_equal(output, shortcut)
        else:
            assert np.abs(residual).max() > 1e-3
