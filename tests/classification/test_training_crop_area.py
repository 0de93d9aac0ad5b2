"""`data.min_crop_area`: the recipe's crop-area floor reaches the training stream, and only that stream."""

import pytest

from kresnet.bundled_recipes import resolve_recipe
from kresnet.data import pipeline
from kresnet.errors import UserError
from kresnet.classification.config import load_classification_recipe
from kresnet.classification.data import build_training_data

TINY_DATA = ["model.num_classes=2", "data.synthetic_classes=2", "data.synthetic_per_class=2",
             "data.synthetic_val_per_class=1", "data.synthetic_image_size=16", "data.image_size=16",
             "data.eval_resize=16", "train.batch_size=2"]


def test_the_recipe_crop_area_floor_reaches_the_training_stream(tmp_path, monkeypatch):
    monkeypatch.setenv("KRESNET_CACHE", str(tmp_path))
    calls = []
    real = pipeline.build_dataset

    def recording(source, **kwargs):
        calls.append(kwargs)
        return real(source, **kwargs)

    monkeypatch.setattr(pipeline, "build_dataset", recording)
    config = load_classification_recipe(resolve_recipe("demo"), [*TINY_DATA, "data.min_crop_area=0.45"])
    build_training_data(config)
    train_call, val_call = calls
    assert train_call["training"] and train_call["min_crop_area"] == 0.45
    assert "min_crop_area" not in val_call  # evaluation is a centre crop


def test_the_default_floor_is_the_papers_and_bad_values_are_one_line_errors():
    recipe = resolve_recipe("r50d")
    assert load_classification_recipe(recipe).data.min_crop_area == 0.08
    for bad in ("0.0", "1.5"):
        with pytest.raises(UserError, match=rf"data\.min_crop_area: expected .*, got {bad}$"):
            load_classification_recipe(recipe, [f"data.min_crop_area={bad}"])
