"""Pictures of runs: the paper's Figure 3 (learning rate and validation top-1 per epoch) and the ablation bar chart.

matplotlib draws with the Agg backend (no display needed) and is imported only here.
A run's `history.csv` is read by column name; its epochs may count from 0 or 1
(the plot always starts the first finished epoch at 1). The learning rate comes from
a `lr` / `learning_rate` column when the history has one, else from the recipe's
schedule evaluated at the end of each epoch.
"""

import csv
import pathlib

import typer

from kresnet.classification.seed_statistics import t_interval
from kresnet.errors import UserError
from kresnet.runs.folder import HISTORY, open_run

_LR_COLUMNS = ("lr", "learning_rate")
_TOP1_COLUMN = "val_top1"
# Schedules are defined per step; this many steps per epoch resolves warmup fractions finely.
_NOMINAL_STEPS_PER_EPOCH = 1000


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_run_curves(run):
    """A run folder's legend label, epochs (from 1), learning rates and validation top-1 (%).

    Args:
        run: folder with `history.csv` and `recipe.toml` (a `kresnet train` run).

    Returns:
        dict with keys label, epochs, lr, top1.
    """
    record = open_run(run, "classification", needs=(HISTORY,))
    run, history, recipe_path = record.path, record.path / HISTORY, record.recipe_path
    with open(history, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise UserError(f"{history}: no finished epoch yet")
    missing = [name for name in ("epoch", _TOP1_COLUMN) if name not in rows[0]]
    if missing:
        raise UserError(f"{history}: no {missing[0]!r} column (has {', '.join(rows[0])})")
    config = _load_recipe(recipe_path)
    first = int(float(rows[0]["epoch"]))
    epochs = [int(float(row["epoch"])) - first + 1 for row in rows]
    top1 = [float(row[_TOP1_COLUMN]) * 100 for row in rows]
    lr_column = next((name for name in _LR_COLUMNS if name in rows[0]), None)
    if lr_column:
        lr = [float(row[lr_column]) for row in rows]
    else:
        lr = _schedule_at_epoch_ends(config, epochs)
    return {"label": config.meta.title or run.name, "epochs": epochs, "lr": lr, "top1": top1}


def _load_recipe(path):
    from kresnet.classification.config import load_classification_recipe

    try:
        return load_classification_recipe(path)
    except UserError as error:
        raise UserError(f"{path}: not a classification recipe ({error})") from None


def _schedule_at_epoch_ends(config, epochs):
    import keras

    from kresnet.runs.task import learning_rate_schedule

    schedule = learning_rate_schedule(config, _NOMINAL_STEPS_PER_EPOCH)
    return [float(keras.ops.convert_to_numpy(schedule(epoch * _NOMINAL_STEPS_PER_EPOCH - 1))) for epoch in epochs]


def history_figure(runs):
    """Figure 3 style: (a) learning rate and (b) validation top-1 against epoch, one line per run.

    Args:
        runs: run folders.

    Returns:
        the matplotlib Figure (two axes, one line per run in each, legend labels from the recipes).
    """
    curves = [read_run_curves(run) for run in runs]
    plt = _pyplot()
    figure, (lr_axes, top1_axes) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    for curve in curves:
        lr_axes.plot(curve["epochs"], curve["lr"], label=curve["label"])
        top1_axes.plot(curve["epochs"], curve["top1"], label=curve["label"])
    lr_axes.set(xlabel="epoch", ylabel="learning rate", title="(a) learning rate")
    top1_axes.set(xlabel="epoch", ylabel="validation top-1 (%)", title="(b) validation top-1")
    for axes in (lr_axes, top1_axes):
        axes.grid(alpha=0.3)
    top1_axes.legend(fontsize=8)
    return figure


def ablation_figure(results):
    """Bar chart of mean top-1 per row with its 95% t interval over the seeds as error bars and each seed as a dot.

    Args:
        results: {row: {seed: top-1 (%)}}, rows in table order.

    Returns:
        the matplotlib Figure.
    """
    plt = _pyplot()
    rows = list(results)
    intervals = [t_interval(results[row].values()) for row in rows]
    means = [mean for mean, _ in intervals]
    halves = [half or 0.0 for _, half in intervals]
    figure, axes = plt.subplots(figsize=(1.0 + 0.9 * len(rows), 3.4), layout="constrained")
    positions = list(range(len(rows)))
    axes.bar(positions, means, yerr=halves, capsize=4, color="#8fb3d9", edgecolor="#2b5d8c")
    for position, row in zip(positions, rows):
        values = list(results[row].values())
        axes.plot([position] * len(values), values, "o", color="#1f3b57", markersize=3)
    axes.set_xticks(positions, rows, rotation=30, ha="right")
    axes.set_ylabel("validation top-1 (%)")
    low = min(min(values.values()) for values in results.values())
    high = max(max(values.values()) for values in results.values())
    high = max(high, *(m + h for m, h in zip(means, halves)))
    axes.set_ylim(max(0.0, low - 5), high + 2)
    axes.grid(axis="y", alpha=0.3)
    return figure


def save_figure(figure, out):
    """Write the figure as a PNG (parent folders created) and release it."""
    out = pathlib.Path(out)
    if out.suffix.lower() != ".png":
        raise UserError(f"--out {out}: expected a .png file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    _pyplot().close(figure)
    return out


def save_ablation_chart(results, out):
    """`ablation_figure` written to `out` (a .png)."""
    return save_figure(ablation_figure(results), out)


def plot(
    runs: list[pathlib.Path] = typer.Argument(..., help="Run folders (each with history.csv and recipe.toml)."),
    out: pathlib.Path = typer.Option(..., "--out", help="The PNG file to write."),
):
    """Draw learning rate and validation top-1 against epoch for the runs (Figure 3 of the paper)."""
    path = save_figure(history_figure(runs), out)
    typer.echo(f"wrote {path}")
