"""The README's "Use the tricks in your own training" examples run as written, at tiny sizes."""

import re

import keras
import numpy as np

from tests.conftest import PROJECT_ROOT

SECTION = "## Use the tricks in your own training"
SIZES = "EPOCHS, STEPS, BATCH, SIZE, CLASSES = "


def _section_code_blocks():
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme[readme.index(SECTION):]
    section = section[: section.index("\n## ", len(SECTION))]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_examples_train_a_keras_hub_resnet_and_distil_it(capsys):
    blocks = _section_code_blocks()
    assert len(blocks) == 2
    first, distillation = blocks
    assert first.count(SIZES) == 1
    # Only the sizes change: 3 epochs of 2 steps, mixup in the first, 32 px, 3 classes.
    first = re.sub(re.escape(SIZES) + r".*", SIZES + "3, 2, 4, 32, 3", first)
    namespace = {}
    exec(compile(first, "README.md example 1", "exec"), namespace)
    model, backbone = namespace["model"], namespace["backbone"]
    history = model.history.history
    assert history["mixup"] == [1.0, 0.0, 0.0] and all(np.isfinite(history["loss"]))
    assert "zero_gamma: gamma = 0 in 8 BatchNormalization layers" in capsys.readouterr().out
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 6

    teacher_weights = [keras.ops.convert_to_numpy(w).copy() for w in model.weights]
    exec(compile(distillation, "README.md example 2", "exec"), namespace)
    distiller, student = namespace["distiller"], namespace["student"]
    assert all(np.isfinite(distiller.history.history["loss"]))
    assert int(keras.ops.convert_to_numpy(distiller.optimizer.iterations)) == 6
    for before, after in zip(teacher_weights, model.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(after), before)
    assert student.count_params() < model.count_params()
