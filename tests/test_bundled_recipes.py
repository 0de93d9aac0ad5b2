"""Bundled recipes are found by name or by their documented path from any folder, and listed by `kresnet recipes`."""

import pathlib

import pytest

from kresnet.bundled_recipes import BUNDLED_RECIPES, describe_bundled_recipes, resolve_recipe
from kresnet.errors import UserError


def test_names_and_documented_paths_resolve_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no recipes/ here: only the bundled copies can answer
    assert resolve_recipe("r50d") == BUNDLED_RECIPES / "r50d.toml"
    assert resolve_recipe("recipes/r50d.toml") == BUNDLED_RECIPES / "r50d.toml"
    assert resolve_recipe("demo_detect", folder="transfer") == BUNDLED_RECIPES / "transfer" / "demo_detect.toml"
    assert resolve_recipe("recipes/transfer/demo_segment.toml", folder="transfer") == BUNDLED_RECIPES / "transfer" / "demo_segment.toml"


def test_an_existing_file_wins_and_a_typo_elsewhere_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = pathlib.Path("demo.toml")
    mine.write_text("[train]\nepochs = 1\n")
    assert resolve_recipe("demo.toml") == mine
    with pytest.raises(UserError, match=r"^elsewhere/demo\.toml: recipe not found \(a TOML file, or a bundled name: .*r50d"):
        resolve_recipe("elsewhere/demo.toml")
    with pytest.raises(UserError, match="demo_detect"):
        resolve_recipe("no_such_recipe", folder="transfer")


def test_recipes_command_lists_every_bundled_recipe_with_its_command(run_cli, capsys):
    assert run_cli(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = describe_bundled_recipes()
    assert len(lines) == 1 + len(rows) == 1 + len(list(BUNDLED_RECIPES.rglob("*.toml")))
    by_name = {row[1]: row for row in rows}
    assert by_name["r50d"][0] == "kresnet train" and by_name["table6_cosine"][2].startswith("Table 6")
    assert by_name["demo_detect"][0] == "kresnet transfer detect"
    assert by_name["ade20k_fcn_r50d_cosine"][0] == "kresnet transfer segment"
    assert "?" not in {row[0] for row in rows}


def _loaders():
    from kresnet.classification.config import load_classification_recipe
    from kresnet.transfer.detection.config import load_detection_recipe
    from kresnet.transfer.segmentation.config import load_segmentation_recipe

    return {"": load_classification_recipe, "detection": load_detection_recipe, "segmentation": load_segmentation_recipe}


def test_every_bundled_recipe_loads_with_its_task_schema():
    import tomllib

    loaders = _loaders()
    for path in sorted(BUNDLED_RECIPES.rglob("*.toml")):
        task = tomllib.loads(path.read_text(encoding="utf-8")).get("task", "")
        loaders[task](path)


# One name per concept in every schema: the old name of a renamed key is a one-line error naming the new one.
RENAMED = [
    ("transfer/demo_detect.toml", "detection", "train.eval_batch_size=2", "eval.batch_size"),
    ("transfer/demo_detect.toml", "detection", "data.format=voc", "data.source"),
    ("transfer/demo_segment.toml", "segmentation", "data.format=synthetic", "data.source"),
]


@pytest.mark.parametrize("recipe, task, old, new", RENAMED)
def test_an_old_key_name_is_one_line_naming_its_replacement(recipe, task, old, new):
    with pytest.raises(UserError) as error:
        _loaders()[task](BUNDLED_RECIPES / recipe, [old])
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{BUNDLED_RECIPES / recipe}: {old.split('=')[0]}: removed")
    assert f"renamed {new}" in message
