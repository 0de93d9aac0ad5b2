"""A CPU-scale ablation: the rows of Tables 5 and 6 as overrides of a small recipe, several paired seeds each.

Every row uses the same seeds, so the rows of one seed share data order and
augmentation draws: the per-seed difference between a row and the row it extends
(paired) has a smaller spread than the rows themselves. The rows build on each
other as in the paper: ResNet -> B -> C -> D under one procedure (the "efficient"
setting of Table 5: warmup, zero gamma, no bias decay, step decay), then +cosine,
+label smoothing, +mixup (Table 6). The model is the bottleneck family
(`resnet50{,b,c,d}` with the base recipe's stage depths and widths), because
B moves the stride inside the bottleneck's 1x1 -> 3x3 and does nothing to a basic block.

Table 6's distillation rows branch off: "+distill" adds distillation (T=20) to
+label-smoothing ("+ distill w/o mixup"), "+distill-w-mixup" adds it to +mixup. They
need a teacher, a finished `kresnet train` run on the same classes (`--teacher RUN_FOLDER`):
its recipe gives the teacher's model, depths and widths, its `model.weights.h5` the weights.
Each row's paired difference is taken against its nearest ancestor among the rows run.

A base recipe with a manifest beside it (`<recipe>.images.csv`, see `kresnet.data.image_manifest`)
was measured on exactly those image files: the dataset is checked against it before anything trains.
"""

import csv
import os
import pathlib

from kresnet.classification.seed_statistics import format_interval, format_per_seed
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


def _rows(*steps):
    """({row: overrides}, {row: the row it extends}) from (row, extends, own overrides) steps."""
    rows, parents = {}, {}
    for name, parent, overrides in steps:
        rows[name] = [*(rows[parent] if parent else _PROCEDURE), *overrides]
        parents[name] = parent
    return rows, parents


# The paper's temperature; the teacher itself comes from `--teacher` (see `teacher_overrides`).
_DISTILL = ["distillation.temperature=20.0"]

ROWS, EXTENDS = _rows(
    ("resnet", None, ["model.name=resnet50"]),
    ("resnet-b", "resnet", ["model.name=resnet50b"]),
    ("resnet-c", "resnet-b", ["model.name=resnet50c"]),
    ("resnet-d", "resnet-c", ["model.name=resnet50d"]),
    ("+cosine", "resnet-d", ["schedule.kind='cosine'"]),
    ("+label-smoothing", "+cosine", ["tricks.label_smoothing=0.1"]),
    ("+distill", "+label-smoothing", _DISTILL),
    ("+mixup", "+label-smoothing", ["tricks.mixup_alpha=0.2", "tricks.mixup_off_epochs=3"]),
    ("+distill-w-mixup", "+mixup", _DISTILL),
)
# The rows that train against the teacher.
TEACHER_ROWS = ("+distill", "+distill-w-mixup")

# ImageNet top-1 (%) of the same rows in the paper: Table 5 (ResNet-50, efficient setting) and
# Table 6 (ResNet-50-D; "+distill" is "+ distill w/o mixup", "+mixup" is "+ mixup w/o distill").
PAPER_TOP1 = {
    "resnet": 76.21,
    "resnet-b": 76.66,
    "resnet-c": 76.87,
    "resnet-d": 77.16,
    "+cosine": 77.91,
    "+label-smoothing": 78.31,
    "+distill": 78.67,
    "+mixup": 79.15,
    "+distill-w-mixup": 79.29,
}


def parse_rows(text, with_teacher=False):
    """Row names from a comma-separated list ("all": every row, the distillation rows only with a teacher).

    Args:
        text: e.g. "resnet,+cosine".
        with_teacher: whether a teacher is given (`--teacher`).
    """
    if text.strip() == "all":
        return [row for row in ROWS if with_teacher or row not in TEACHER_ROWS]
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in ROWS:
            raise UserError(f"--rows: unknown row {name!r}; expected some of: {', '.join(ROWS)}")
    return names


def teacher_overrides(run):
    """`--set` strings that distil from a finished `kresnet train` run: its model, depths, widths and final weights.

    Args:
        run: the teacher's run folder (holding `recipe.toml`, `model.weights.h5` and `finished`).

    Returns:
        (overrides, the teacher's number of classes).
    """
    from kresnet.classification.config import ClassificationRecipe
    from kresnet.recipe import load_recipe
    from kresnet.runs.folder import FINAL_WEIGHTS, FINISHED, open_run

    record = open_run(pathlib.Path(run).expanduser().resolve(), "classification", (FINISHED, FINAL_WEIGHTS), "--teacher")
    run = record.path
    model = load_recipe(record.recipe_path, ClassificationRecipe).model
    overrides = [f"distillation.teacher_model='{model.name}'", f"distillation.teacher_weights='{(run / FINAL_WEIGHTS).as_posix()}'"]
    if model.stage_depths:
        overrides.append(f"distillation.teacher_stage_depths={list(model.stage_depths)}")
    if model.stage_widths:
        overrides.append(f"distillation.teacher_stage_widths={list(model.stage_widths)}")
    return overrides, model.num_classes


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


def recipe_manifest(recipe, manifest=None):
    """The manifest the dataset is checked against: `manifest` ("none": no check), else the recipe's own, if it has one.

    Args:
        recipe: the base recipe's path.
        manifest: `--manifest`: a path, "none", or None for the recipe's own (`<recipe stem>.images.csv` beside it).
    """
    if manifest is not None:
        return None if str(manifest) == "none" else pathlib.Path(manifest)
    own = pathlib.Path(recipe).with_suffix(".images.csv")
    return own if own.is_file() else None


def run_ablation(recipe, rows, seeds, overrides, out, teacher=None, manifest=None):
    """Train every row with every seed (each run resumable in out/row/seedN) and return the table.

    A finished run returns its stored metrics (as `kresnet train` does), so a rerun trains only what is missing. Writes `ablation.csv`,
    `ablation.md` and the bar chart `ablation.png` into `out`.

    Args:
        recipe: the base recipe path.
        rows: row names from `ROWS`.
        seeds: list of ints.
        overrides: `--set` strings applied to every run after the row's own.
        out: folder for the runs and the results.
        teacher: the run folder of the distillation rows' teacher (see `teacher_overrides`), or None.
        manifest: a manifest the dataset must match before anything trains (see `recipe_manifest`), or None.
    """
    import keras

    from kresnet.data.image_manifest import check_manifest

    from kresnet.recipe import load_recipe
    from kresnet.classification.config import ClassificationRecipe, load_classification_recipe
    from kresnet.classification.trainer import train

    out = pathlib.Path(out)
    needs_teacher = [row for row in rows if row in TEACHER_ROWS]
    if teacher is not None and not needs_teacher:
        raise UserError(f"--teacher: only the distillation rows ({', '.join(TEACHER_ROWS)}) use a teacher; add them to --rows")
    if needs_teacher and teacher is None:
        raise UserError(
            f"--rows: the distillation rows ({', '.join(needs_teacher)}) need a teacher; "
            "pass --teacher RUN_FOLDER (a finished `kresnet train` run)"
        )
    # Only the epoch count, before the rows make the recipe consistent (e.g. mixup's last epochs).
    base = load_recipe(recipe, ClassificationRecipe, list(overrides))
    if manifest is not None:
        count = check_manifest(base.data.root, manifest, option="data")
        print(f"data {base.data.root}: the {count} images of {manifest}", flush=True)
    distill = []
    if needs_teacher:
        distill, teacher_classes = teacher_overrides(teacher)
        if teacher_classes != base.model.num_classes:
            raise UserError(f"--teacher {teacher}: the teacher has {teacher_classes} classes, the rows {base.model.num_classes}")
    steps = f"schedule.step_epochs={step_epochs_for(base.train.epochs, base.schedule.step_epochs)}"
    results, runs = {}, {}
    for row in rows:
        for seed in seeds:
            title = f"meta.title='{row}, seed {seed}'"
            row_overrides = [*ROWS[row], *(distill if row in TEACHER_ROWS else [])]
            config = load_classification_recipe(recipe, [steps, *row_overrides, *overrides, f"train.seed={seed}", title])
            folder = out / _folder(row) / f"seed{seed}"
            print(f"== {row}, seed {seed}", flush=True)
            keras.backend.clear_session()
            # A finished run returns its stored metrics without building data or training.
            metrics = train(config, folder, verbose=2)
            results.setdefault(row, {})[seed] = metrics["top1"]
            runs[row, seed] = metrics
    table = f"{format_table(results)}\n\n{measured_with(runs.values())}"
    _write(out, results, runs, table)
    return table


def compared_to(row, rows):
    """The row a paired difference of `row` is taken against: its nearest ancestor (`EXTENDS`) among `rows`, or None.

    Args:
        row: a row name.
        rows: the row names measured.
    """
    parent = EXTENDS.get(row)
    while parent is not None and parent not in rows:
        parent = EXTENDS[parent]
    return parent


def paired_differences(results, row, against):
    """Per-seed top-1 differences `row - against` over the seeds both rows have.

    Args:
        results: {row: {seed: top-1}}.
        row, against: row names.
    """
    return [results[row][seed] - results[against][seed] for seed in results[row] if seed in results[against]]


def format_table(results):
    """Markdown table: top-1 per seed and its mean, the paired difference per seed to the row it extends and its
    mean, each mean with its 95% confidence interval over the seeds, beside the paper's difference.

    The interval is the t interval of `seed_statistics.t_interval` (with 3 seeds: mean +- 4.30 s / sqrt(3)).
    The "against" column names the row each difference is taken against (`compared_to`): the distillation
    rows against the row without distillation.

    Args:
        results: {row: {seed: top-1}}, rows in table order.
    """
    lines = [
        "| row | top-1 (%) per seed | mean [95% CI] | paired diff. per seed | mean [95% CI] | against | paper diff. (ImageNet) | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row, by_seed in results.items():
        values = list(by_seed.values())
        per_seed = diff = paper = ""
        against = compared_to(row, results)
        if against is not None:
            diffs = paired_differences(results, row, against)
            per_seed = format_per_seed(diffs, signed=True) if diffs else "(no common seed)"
            diff = format_interval(diffs, signed=True) if diffs else ""
            if row in PAPER_TOP1 and against in PAPER_TOP1:
                paper = f"{PAPER_TOP1[row] - PAPER_TOP1[against]:+.2f}"
        seeds = ",".join(str(seed) for seed in by_seed)
        lines.append(f"| {row} | {format_per_seed(values)} | {format_interval(values)} | {per_seed} | {diff} | {against or ''} "
                     f"| {paper} | {seeds} |")
    return "\n".join(lines)


def _folder(row):
    return row.replace("+", "plus-")


def measured_with(metrics):
    """One line naming the backend and the versions the runs recorded in their metrics.json (each distinct set once).

    Args:
        metrics: the runs' metrics dicts.
    """
    described = []
    for run in metrics:
        versions, backend = run.get("versions"), run.get("backend", "?")
        if not versions:
            text = f"{backend} backend, versions not recorded"
        else:
            others = ", ".join(f"{name} {version}" for name, version in versions.items() if name != backend)
            text = f"{backend} {versions.get(backend, '?')} backend, {others}"
        if text not in described:
            described.append(text)
    return "Measured with " + "; ".join(described) + ". Intervals: 95%, t distribution over the seeds."


# ablation.csv: a run's versions are those its metrics.json recorded (empty for runs from before they were).
CSV_COLUMNS = ["row", "seed", "top1", "against", "paired_diff", "backend", "backend_version", "tensorflow", "keras", "numpy", "python"]


def _write(out, results, runs, table):
    from kresnet.classification.plots import save_ablation_chart

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "ablation.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row, by_seed in results.items():
            against = compared_to(row, results)
            for seed, value in by_seed.items():
                metrics = runs[row, seed]
                versions, backend = metrics.get("versions", {}), metrics.get("backend", "")
                diff = f"{value - results[against][seed]:.4f}" if against and seed in results[against] else ""
                writer.writerow([row, seed, f"{value:.4f}", against or "", diff, backend, versions.get(backend, ""),
                                 versions.get("tensorflow", ""), versions.get("keras", ""), versions.get("numpy", ""),
                                 versions.get("python", "")])
    (out / "ablation.md").write_text(table + "\n")
    save_ablation_chart(results, out / "ablation.png")
