"""The recipes shipped inside the package (`kresnet/recipes/`, also `recipes/` in a checkout), found by name.

`kresnet train r50d` and `kresnet train recipes/r50d.toml` mean the same file in a
source checkout and in an installed wheel; a path that exists always wins, so a
user's edited copy is never shadowed.
"""

import pathlib

from kresnet.errors import UserError

BUNDLED_RECIPES = pathlib.Path(__file__).resolve().parent / "recipes"


def bundled_recipe_names(folder=""):
    """Stems of the bundled recipes in `folder` ("" for classification, "transfer")."""
    return sorted(p.stem for p in (BUNDLED_RECIPES / folder).glob("*.toml"))


def resolve_recipe(recipe, folder=""):
    """A recipe path as given, or a bundled recipe by name (`demo`, `r50d`, `recipes/transfer/demo_detect.toml`).

    Args:
        recipe: str or path. A TOML file, or the name of a bundled one, bare or under `recipes/`.
        folder: str. The bundled sub-folder to look in: "" (classification) or "transfer".

    Returns:
        pathlib.Path of an existing file.
    """
    path = pathlib.Path(recipe)
    if path.is_file():
        return path
    bundled = BUNDLED_RECIPES / folder / f"{path.stem if path.suffix == '.toml' else path.name}.toml"
    # Only a bare name or the documented recipes/ location falls back, so a typo elsewhere is reported, not replaced.
    documented = {pathlib.Path("."), pathlib.Path("recipes") / folder}
    if bundled.is_file() and path.parent in documented:
        return bundled
    available = ", ".join(bundled_recipe_names(folder))
    raise UserError(f"{recipe}: recipe not found (a TOML file, or a bundled name: {available})")


def describe_bundled_recipes():
    """One row per bundled recipe: (command, name, paper table and row, title)."""
    import tomllib

    commands = {"": "kresnet train", "detection": "kresnet transfer detect", "segmentation": "kresnet transfer segment"}
    rows = []
    for folder in ("", "transfer"):
        for name in bundled_recipe_names(folder):
            recipe = tomllib.loads((BUNDLED_RECIPES / folder / f"{name}.toml").read_text(encoding="utf-8"))
            meta = recipe.get("meta", {})
            paper = " ".join(part for part in (meta.get("paper_table", ""), meta.get("paper_row", "")) if part)
            rows.append((commands.get(recipe.get("task", ""), "?"), name, paper or "-", meta.get("title", "")))
    return rows


def recipes():
    """List the bundled recipes: run one by name, e.g. `kresnet train r50d`, or copy its file to edit it."""
    import typer

    rows = describe_bundled_recipes()
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    typer.echo(f"recipes in {BUNDLED_RECIPES}")
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3])
