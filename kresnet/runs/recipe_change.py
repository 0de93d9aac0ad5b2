"""What may change in the recipe of a started run: nothing that alters what it has trained.

Running a command again on a started run folder resumes it, so the recipe must be the one
recorded in `<run>/recipe.toml` (the same values once read: a key added to kresnet later,
absent from older runs, takes its default). These keys may differ, since they cannot alter what
has been trained:

- `train.checkpoint_every_steps`: how often the state is saved;
- the `[meta]` table: what the recipe reproduces, never read by training;
- `train.epochs`, made larger: the run is extended. The epochs done stay as they are; the
  learning-rate schedule (and mixup's last epochs) of the rest follow the new length.
"""

import dataclasses

from kresnet.errors import UserError
from kresnet.recipe import load_recipe, recipe_to_dict

CHANGEABLE_KEYS = ("train.checkpoint_every_steps",)
CHANGEABLE_TABLES = ("meta",)


@dataclasses.dataclass
class RecipeChange:
    """An allowed change: `extended_from` is the recorded `train.epochs` when the run is made longer, else None."""

    extended_from: int | None = None


def flat_recipe(config):
    """{dotted key: value} of a resolved recipe."""
    flat = {}

    def walk(table, prefix):
        for key, value in table.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value

    walk(recipe_to_dict(config), "")
    return flat


def check_recipe_change(recipe_path, config, run_path):
    """The allowed change from the recipe recorded at `recipe_path` to `config`, or one line naming the
    first key that differs.

    Args:
        recipe_path: the run's recorded `recipe.toml`.
        config: the resolved recipe of this command.
        run_path: the run folder, for the messages.
    """
    try:
        recorded = load_recipe(recipe_path, type(config))
    except UserError as error:
        raise UserError(f"{run_path}: the run's recorded recipe cannot be read ({error}); delete {recipe_path} "
                        "to resume with the recipe given now, or choose another --out") from None
    before, after = flat_recipe(recorded), flat_recipe(config)
    differing = [key for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)
                 and key not in CHANGEABLE_KEYS and key.split(".")[0] not in CHANGEABLE_TABLES]
    epochs = "train.epochs"
    extended = epochs in differing and before[epochs] < after[epochs]
    if extended:
        differing.remove(epochs)
    if differing:
        key = differing[0]
        more = f" (and {len(differing) - 1} more keys)" if len(differing) > 1 else ""
        hint = ("; only more epochs extend a run" if key == epochs else "")
        raise UserError(f"{run_path}: started with {key} = {_show(before.get(key))}, now {_show(after.get(key))}{more}"
                        f"{hint}; resume with the recipe and --set values of {recipe_path}, or choose another --out")
    return RecipeChange(extended_from=before[epochs] if extended else None)


def _show(value):
    return "(not set)" if value is None else repr(value)
