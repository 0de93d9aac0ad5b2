"""The generic recipe core: typed loading, one-line errors naming the key, overrides, TOML round trip."""

import dataclasses
import tomllib

import pytest

from kresnet.errors import UserError
from kresnet.recipe import (
    dumps_recipe, load_recipe, parse_override, recipe_from_dict, section, setting, write_recipe,
)


@dataclasses.dataclass
class Train:
    epochs: int = setting(120, minimum=1)
    lr: float = setting(0.1, exclusive_minimum=0.0)
    smoothing: float = setting(0.0, minimum=0.0, maximum=1.0)
    kind: str = setting("cosine", choices=["cosine", "step"])
    steps: list[int] = setting([30, 60, 90], minimum=0)
    nesterov: bool = setting(True)
    teacher: str | None = setting(None)


@dataclasses.dataclass
class Inner:
    name: str = setting("x")


@dataclasses.dataclass
class Outer:
    seed: int = setting(0, minimum=0)
    train: Train = section(Train)
    inner: Inner = section(Inner)


def _write(tmp_path, text):
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def test_defaults_and_typed_values(tmp_path):
    config = load_recipe(_write(tmp_path, "[train]\nepochs = 3\nlr = 1\nsteps = [1, 2]\n"), Outer)
    assert config.train.epochs == 3
    assert config.train.lr == 1.0 and isinstance(config.train.lr, float)
    assert config.train.steps == [1, 2]
    assert config.train.kind == "cosine" and config.train.teacher is None
    assert config.inner.name == "x" and config.seed == 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("[train]\nepochs = -3\n", "train.epochs: expected a positive integer, got -3"),
        ("[train]\nepochs = 2.5\n", "train.epochs: expected a positive integer, got 2.5"),
        ("[train]\nepochs = true\n", "train.epochs: expected a positive integer, got True"),
        ("[train]\nlr = 0\n", "train.lr: expected a positive number, got 0.0"),
        ("[train]\nsmoothing = 1.5\n", "train.smoothing: expected a number in [0.0, 1.0], got 1.5"),
        ("[train]\nkind = 'linear'\n", "train.kind: expected one of 'cosine', 'step', got 'linear'"),
        ("[train]\nsteps = [1, -2]\n", "train.steps[1]: expected an integer >= 0, got -2"),
        ("[train]\nsteps = 3\n", "train.steps: expected a list of an integer >= 0, got 3"),
        ("[train]\nepoch = 3\n", "train.epoch: unknown key"),
        ("[trian]\nepochs = 3\n", "trian: unknown key"),
        ("train = 3\n", "train: expected a table, got 3"),
        ("[train]\nnesterov = 'yes'\n", "train.nesterov: expected a boolean (true/false), got 'yes'"),
    ],
)
def test_errors_are_one_line_and_name_the_key(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(UserError) as info:
        load_recipe(path, Outer)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: {message}")


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(UserError, match="recipe not found"):
        load_recipe(tmp_path / "nope.toml", Outer)
    with pytest.raises(UserError, match="not valid TOML"):
        load_recipe(_write(tmp_path, "[train\n"), Outer)


def test_overrides_are_toml_literals_or_bare_strings(tmp_path):
    path = _write(tmp_path, "[train]\nepochs = 3\n")
    config = load_recipe(
        path, Outer, overrides=["train.epochs=7", "train.steps=[5, 6]", "inner.name=resnet50d", "train.teacher='t.h5'"]
    )
    assert config.train.epochs == 7 and config.train.steps == [5, 6]
    assert config.inner.name == "resnet50d" and config.train.teacher == "t.h5"
    assert parse_override("a.b = 0.5") == ("a.b", 0.5)
    with pytest.raises(UserError, match="train.epochs: expected a positive integer, got 'abc'"):
        load_recipe(path, Outer, overrides=["train.epochs=abc"])
    with pytest.raises(UserError, match="train.nope: unknown key"):
        load_recipe(path, Outer, overrides=["train.nope=1"])
    with pytest.raises(UserError, match="expected section.key=value"):
        load_recipe(path, Outer, overrides=["train.epochs"])


def test_write_recipe_round_trips(tmp_path):
    config = recipe_from_dict(
        {"seed": 3, "train": {"lr": 0.0125, "steps": [1, 2], "teacher": 'a "quoted" path', "nesterov": False}}, Outer
    )
    path = write_recipe(config, tmp_path / "out" / "recipe.toml")
    assert load_recipe(path, Outer) == config
    text = dumps_recipe(config)
    assert tomllib.loads(text)["train"]["steps"] == [1, 2]
    assert "teacher" not in dumps_recipe(Outer())  # None is omitted: TOML has no null.


def test_a_recipe_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('seed = 1 # réglé\n'.encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1\.toml: not UTF-8 text \(byte 12\); save the recipe as UTF-8$"):
        load_recipe(path, Outer)
