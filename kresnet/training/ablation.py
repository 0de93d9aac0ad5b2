"""A CPU-scale ablation: paper rows as overrides of the synthetic demo recipe, several seeds each.

The rows follow Tables 5 and 6 cumulatively, from the plain ResNet with the
baseline procedure up to all tricks. Distillation is left out: it needs a
trained teacher first (train `recipes/teacher_r152d.toml`'s analogue on the
synthetic data and add `--set distillation.teacher_model=...`, `teacher_weights=...` and,
for a teacher with the demo's reduced stages, `teacher_stage_depths` / `teacher_stage_widths`).
"""

import csv
import pathlib
import statistics

from kresnet.errors import UserError

_BASELINE = [
    "model.name=resnet18",
    "model.zero_gamma=false",
    "optimizer.no_bias_decay=false",
    "schedule.kind='step'",
    "schedule.warmup_epochs=0",
    "tricks.label_smoothing=0.0",
    "tricks.mixup_alpha=0.0",
    "tricks.mixup_off_epochs=0",
]


def _cumulative(*steps):
    rows, current = {}, list(_BASELINE)
    for name, overrides in steps:
        current = current + list(overrides)
        rows[name] = list(current)
    return rows


ROWS = _cumulative(
    ("resnet", []),
    ("resnet-d", ["model.name=resnet18d"]),
    ("+efficient", ["schedule.warmup_epochs=2.0", "model.zero_gamma=true", "optimizer.no_bias_decay=true"]),
    ("+cosine", ["schedule.kind='cosine'"]),
    ("+label-smoothing", ["tricks.label_smoothing=0.1"]),
    ("+mixup", ["tricks.mixup_alpha=0.2", "tricks.mixup_off_epochs=3"]),
)


def parse_rows(text):
    """Row names from a comma-separated list ("all" for every row).

    Args:
        text: e.g. "resnet,+cosine".
    """
    if text.strip() == "all":
        return list(ROWS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in ROWS:
            raise UserError(f"--rows: unknown row {name!r}; expected some of: {', '.join(ROWS)}")
    return names


def step_epochs_for(epochs):
    """Step-decay boundaries at 1/4, 1/2 and 3/4 of training (30/60/90 of 120 in the paper)."""
    return sorted({max(1, round(epochs * f)) for f in (0.25, 0.5, 0.75)} - {epochs})


def run_ablation(recipe, rows, seeds, overrides, out):
    """Train every row with every seed (each run resumable in out/row/seedN) and return the table.

    Args:
        recipe: the base recipe path (synthetic data).
        rows: row names from `ROWS`.
        seeds: list of ints.
        overrides: `--set` strings applied to every run after the row's own.
        out: folder for runs, `ablation.csv` and `ablation.md`.
    """
    import keras

    from kresnet.training.config import load_classification_recipe
    from kresnet.training.data import build_training_data
    from kresnet.training.trainer import train

    out = pathlib.Path(out)
    results = {}
    for row in rows:
        for seed in seeds:
            base = load_classification_recipe(recipe, list(overrides))
            steps = f"schedule.step_epochs={step_epochs_for(base.train.epochs)}"
            config = load_classification_recipe(recipe, [steps, *ROWS[row], *overrides, f"train.seed={seed}"])
            print(f"== {row}, seed {seed}")
            keras.backend.clear_session()
            metrics = train(config, out / _folder(row) / f"seed{seed}", data=build_training_data(config), verbose=2)
            results.setdefault(row, []).append(metrics["top1"])
    table = format_table(results)
    _write(out, results, table)
    return table


def format_table(results):
    """Markdown table of mean +- std top-1 per row (std over seeds, 0 for a single seed).

    Args:
        results: {row: [top-1 per seed]}.
    """
    lines = ["| row | top-1 (%) mean +- std | seeds |", "|---|---|---|"]
    for row, values in results.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        lines.append(f"| {row} | {statistics.mean(values):.2f} +- {std:.2f} | {len(values)} |")
    return "\n".join(lines)


def _folder(row):
    return row.replace("+", "plus-")


def _write(out, results, table):
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "ablation.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "seed_index", "top1"])
        for row, values in results.items():
            for i, value in enumerate(values):
                writer.writerow([row, i, f"{value:.4f}"])
    (out / "ablation.md").write_text(table + "\n")
