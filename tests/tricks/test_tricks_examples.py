"""The examples of docs/tricks.md (the tricks in your own training) run as written, at tiny sizes, and do what they say."""

import re

import keras
import numpy as np

from tests.docs_pages import code_blocks

PAGE = "docs/tricks.md"
SIZES = "EPOCHS, STEPS, BATCH, SIZE, CLASSES = "


def _python_blocks():
    return [block.text for block in code_blocks(PAGE) if block.language == "python"]


def test_examples_train_a_keras_hub_resnet_and_distil_it(capsys):
    blocks = _python_blocks()
    assert len(blocks) == 2
    first, distillation = blocks
    assert first.count(SIZES) == 1
    # Only the sizes change: 3 epochs of 2 steps, mixup in the first, 32 px, 3 classes.
    first = re.sub(re.escape(SIZES) + r".*", SIZES + "3, 2, 4, 32, 3", first)
    namespace = {}
    exec(compile(first, f"{PAGE} example 1", "exec"), namespace)
    model = namespace["model"]
    history = model.history.history
    assert history["mixup"] == [1.0, 0.0, 0.0] and all(np.isfinite(history["loss"]))
    assert "zero_gamma: gamma = 0 in 8 BatchNormalization layers" in capsys.readouterr().out
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 6

    teacher_weights = [keras.ops.convert_to_numpy(w).copy() for w in model.weights]
    exec(compile(distillation, f"{PAGE} example 2", "exec"), namespace)
    distiller, student = namespace["distiller"], namespace["student"]
    assert all(np.isfinite(distiller.history.history["loss"]))
    assert int(keras.ops.convert_to_numpy(distiller.optimizer.iterations)) == 6
    for before, after in zip(teacher_weights, model.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(after), before)
    assert student.count_params() < model.count_params()
