"""Distillation in real training: the teacher comes from a kresnet run or from imported weights, and mixes with mixup."""

import csv

import keras
import numpy as np
import pytest

from kresnet.errors import UserError
from kresnet.classification.build import build_classifier, load_teacher
from kresnet.classification.trainer import train
from tests.training_helpers import tiny_data, tiny_recipe

# A teacher shaped unlike its name's default and unlike the student: the recipe must say so.
TEACHER = {"teacher_model": "resnet50d", "teacher_stage_depths": [1, 1, 1, 1], "teacher_stage_widths": [8, 8, 8, 8]}


def _teacher_run_weights(tmp_path):
    """The `model.weights.h5` a teacher run leaves in its folder (the classifier's weights)."""
    teacher_config = tiny_recipe(model={"name": "resnet50d", "stage_widths": [8, 8, 8, 8]})
    path = tmp_path / "teacher_run" / "model.weights.h5"
    path.parent.mkdir()
    build_classifier(teacher_config.model).save_weights(path)
    return path


def test_distillation_with_mixup_trains_from_a_teacher_run(tmp_path):
    teacher_weights = _teacher_run_weights(tmp_path)
    config = tiny_recipe(distillation={**TEACHER, "teacher_weights": str(teacher_weights)})
    assert config.tricks.mixup_alpha > 0 and config.tricks.mixup_off_epochs == 1  # epoch 1 mixup, epoch 2 without

    metrics = train(config, tmp_path / "run", data=tiny_data(steps_per_epoch=2), verbose=0)

    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and metrics["steps"] == 4
    # The training loss carries T^2 CE(softmax(r/T), softmax(z/T)) >= T^2 x the entropy of the teacher's
    # softened output, about 400 ln 4 = 555 at T=20 for 4 classes; without the teacher it would be a plain
    # cross-entropy of a few units.
    assert all(float(r["loss"]) > 400 for r in rows) and all(np.isfinite(float(r["val_loss"])) for r in rows)
    student = build_classifier(config.model)
    student.load_weights(tmp_path / "run" / "model.weights.h5")  # the run exports the student, not the pair
    teacher = load_teacher(config)
    reloaded = build_classifier(tiny_recipe(model={"name": "resnet50d", "stage_widths": [8, 8, 8, 8]}).model)
    reloaded.load_weights(teacher_weights)
    for trained, saved in zip(teacher.weights, reloaded.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(trained), keras.ops.convert_to_numpy(saved))


def test_teacher_from_imported_weights_gives_the_reference_logits(testdata, tmp_path):
    from kresnet.models.weight_import import build_model_for, import_state_dict, load_state_dict

    reference = testdata / "reference"
    state = load_state_dict(reference / "basic_d_1111.safetensors")
    imported = import_state_dict(build_model_for(state, "resnet18d", stage_depths=[1, 1, 1, 1]), state)
    imported.save_weights(tmp_path / "imported.weights.h5")
    config = tiny_recipe(
        model={"num_classes": 10},
        distillation={"teacher_model": "resnet18d", "teacher_stage_depths": [1, 1, 1, 1],
                      "teacher_stage_widths": [8, 16, 24, 32], "teacher_weights": str(tmp_path / "imported.weights.h5")},
    )
    teacher = load_teacher(config)
    assert not teacher.trainable
    images = np.load(reference / "input_96_nhwc.npy")
    logits = keras.ops.convert_to_numpy(teacher(images, training=False))
    assert np.abs(logits - np.load(reference / "basic_d_1111_input_96_logits.npy")).max() <= 1e-4


def test_a_teacher_of_another_shape_is_a_one_line_error(tmp_path):
    teacher_weights = _teacher_run_weights(tmp_path)
    config = tiny_recipe(distillation={"teacher_model": "resnet50d", "teacher_weights": str(teacher_weights)})
    with pytest.raises(UserError, match="does not fit resnet50d") as info:
        load_teacher(config)
    assert "\n" not in str(info.value)
    missing = tiny_recipe(distillation={**TEACHER, "teacher_weights": str(tmp_path / "nope.weights.h5")})
    with pytest.raises(UserError, match="distillation.teacher_weights=.*nope.weights.h5.*file not found"):
        load_teacher(missing)
