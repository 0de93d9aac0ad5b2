"""A CPU-scale ablation: the rows of Tables 5 and 6 as overrides of a small recipe, several paired seeds each.

Every row uses the same seeds, so the rows of one seed share data order and
augmentation draws: the per-seed difference between consecutive rows (paired)
has a smaller spread than the rows themselves. The rows are cumulative, as in
the paper: ResNet -> B -> C -> D under one procedure (the "efficient" setting
of Table 5: warmup, zero gamma, no bias decay, step decay), then +cosine,
+label smoothing, +mixup (Table 6). The model is the bottleneck family
(`resnet50{,b,c,d}` with the base recipe's stage depths and widths), because
B moves the stride inside the bottleneck's 1x1 -> 3x3 and does nothing to a basic block.

Distillation is left out: it needs a trained teacher first (add
`--set distillation.teacher_model=...`, `teacher_weights=...` and, for a teacher with
reduced stages, `teacher_stage_depths` / `teacher_stage_widths`).
"""

import csv
import os
import pathlib
import statistics

from kresnet.errors import UserError

_PROCEDURE = [
    "model.zero_gamma=true",
    "optimizer.no_bias_decay=true",
    "schedule.kind='step'",
    "schedule.warmup_epochs=1.0",
    "tricks.label_smoothing=0.0",
    "tricks.mixup_alpha=0.0",
    "tricks.mixup_off_epochs=0",
]


def _cumulative(*steps):
    rows, current = {}, list(_PROCEDURE)
    for name, overrides in steps:
        current = current + list(overrides)
        rows[name] = list(current)
    return rows


ROWS = _cumulative(
    ("resnet", ["model.name=resnet50"]),
    ("resnet-b", ["model.name=resnet50b"]),
    ("resnet-c", ["model.name=resnet50c"]),
    ("resnet-d", ["model.name=resnet50d"]),
    ("+cosine", ["schedule.kind='cosine'"]),
    ("+label-smoothing", ["tricks.label_smoothing=0.1"]),
    ("+mixup", ["tricks.mixup_alpha=0.2", "tricks.mixup_off_epochs=3"]),
)

# ImageNet top-1 (%) of the same rows in the paper: Table 5 (ResNet-50, efficient setting) and
# Table 6 (ResNet-50-D; the mixup row is "+ mixup w/o distill").
PAPER_TOP1 = {
    "resnet": 76.21,
    "resnet-b": 76.66,
    "resnet-c": 76.87,
    "resnet-d": 77.16,
    "+cosine": 77.91,
    "+label-smoothing": 78.31,
    "+mixup": 79.15,
}


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


def step_epochs_for(epochs, recipe_step_epochs=()):
    """The step-decay boundaries of the step rows.

    The recipe's own when they all fall inside training (the CIFAR-10 recipe decays at 1/2 and
    3/4, as He et al. 2016 on CIFAR: a few epochs are too few to spend only a quarter at the peak),
    else 1/4, 1/2 and 3/4 of training (30/60/90 of 120 in the paper).

    Args:
        epochs: training epochs.
        recipe_step_epochs: the base recipe's `schedule.step_epochs`.
    """
    if recipe_step_epochs and all(epoch < epochs for epoch in recipe_step_epochs):
        return list(recipe_step_epochs)
    return sorted({max(1, round(epochs * f)) for f in (0.25, 0.5, 0.75)} - {epochs})


def folder_dataset_overrides(root):
    """`--set` strings that point a recipe at a folder dataset (ROOT/train and ROOT/val class folders).

    Args:
        root: the dataset folder, as `kresnet train` reads it.
    """
    root = pathlib.Path(root).expanduser()
    train = root / "train"
    classes = [entry.name for entry in os.scandir(train) if entry.is_dir()] if train.is_dir() else []
    if not classes or not (root / "val").is_dir():
        raise UserError(f"--data: expected class folders in {train} and {root / 'val'} (ROOT/train/<class>/*.jpg)")
    return ["data.source='imagenet'", f"data.root='{root.as_posix()}'", f"model.num_classes={len(classes)}"]


def run_ablation(recipe, rows, seeds, overrides, out):
    """Train every row with every seed (each run resumable in out/row/seedN) and return the table.

    Writes `ablation.csv`, `ablation.md` and the bar chart `ablation.png` into `out`.

    Args:
        recipe: the base recipe path.
        rows: row names from `ROWS`.
        seeds: list of ints.
        overrides: `--set` strings applied to every run after the row's own.
        out: folder for the runs and the results.
    """
    import keras

    from kresnet.recipe import load_recipe
    from kresnet.training.config import ClassificationRecipe, load_classification_recipe
    from kresnet.training.data import build_training_data
    from kresnet.training.trainer import train

    out = pathlib.Path(out)
    # Only the epoch count, before the rows make the recipe consistent (e.g. mixup's last epochs).
    base = load_recipe(recipe, ClassificationRecipe, list(overrides))
    steps = f"schedule.step_epochs={step_epochs_for(base.train.epochs, base.schedule.step_epochs)}"
    results = {}
    for row in rows:
        for seed in seeds:
            title = f"meta.title='{row}, seed {seed}'"
            config = load_classification_recipe(recipe, [steps, *ROWS[row], *overrides, f"train.seed={seed}", title])
            print(f"== {row}, seed {seed}", flush=True)
            keras.backend.clear_session()
            metrics = train(config, out / _folder(row) / f"seed{seed}", data=build_training_data(config), verbose=2)
            results.setdefault(row, {})[seed] = metrics["top1"]
    table = format_table(results)
    _write(out, results, table)
    return table


def paired_differences(results, row, previous):
    """Per-seed top-1 differences `row - previous` over the seeds both rows have.

    Args:
        results: {row: {seed: top-1}}.
        row, previous: row names.
    """
    return [results[row][seed] - results[previous][seed] for seed in results[row] if seed in results[previous]]


def format_table(results):
    """Markdown table: mean +- std top-1 per row and the paired difference to the row above, beside the paper's.

    Std is over seeds (sample std, 0 for a single seed).

    Args:
        results: {row: {seed: top-1}}, rows in table order.
    """
    lines = [
        "| row | top-1 (%) mean +- std | paired diff. to the row above, mean +- std | paper diff. (ImageNet) | seeds |",
        "|---|---|---|---|---|",
    ]
    previous = None
    for row, by_seed in results.items():
        values = list(by_seed.values())
        diff = paper = ""
        if previous is not None:
            diffs = paired_differences(results, row, previous)
            diff = f"{_mean_std(diffs)}" if diffs else "(no common seed)"
            if row in PAPER_TOP1 and previous in PAPER_TOP1:
                paper = f"{PAPER_TOP1[row] - PAPER_TOP1[previous]:+.2f}"
        seeds = ",".join(str(seed) for seed in by_seed)
        lines.append(f"| {row} | {_mean_std(values, signed=False)} | {diff} | {paper} | {seeds} |")
        previous = row
    return "\n".join(lines)


def _mean_std(values, signed=True):
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    value = statistics.mean(values) + 0.0  # -0.0 + 0.0 is 0.0: a zero difference prints as +0.00
    mean = f"{value:+.2f}" if signed else f"{value:.2f}"
    return f"{mean} +- {std:.2f}"


def _folder(row):
    return row.replace("+", "plus-")


def _write(out, results, table):
    from kresnet.plots import save_ablation_chart

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "ablation.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "seed", "top1"])
        for row, by_seed in results.items():
            for seed, value in by_seed.items():
                writer.writerow([row, seed, f"{value:.4f}"])
    (out / "ablation.md").write_text(table + "\n")
    save_ablation_chart(results, out / "ablation.png")
