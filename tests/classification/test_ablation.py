"""`kresnet ablate --data`: paper rows x paired seeds on a folder dataset, with the table and its bar chart."""

import csv
import json

import keras
import numpy as np
import pytest
from PIL import Image

from kresnet.errors import UserError
from kresnet.recipe import load_recipe, write_recipe
from kresnet.classification import ablation
from kresnet.classification.seed_statistics import format_interval, t_interval
from kresnet.classification.config import ClassificationRecipe
from tests.training_helpers import ablation_runs_on_tensorflow, tiny_recipe


def _folder_dataset(root, classes=3, per_class=4):
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("val", 2)):
        for k in range(classes):
            folder = root / split / f"class{k}"
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 255, (36, 40, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    return root


TINY = ["model.stage_depths=[1,1,1,1]", "model.stage_widths=[4,4,8,8]", "data.image_size=32", "data.eval_resize=32",
        "train.epochs=1", "train.batch_size=4", "schedule.warmup_epochs=0.5"]


def _sets(overrides):
    return [arg for key in overrides for arg in ("--set", key)]


def _top1_by_row_and_seed(out):
    with open(out / "ablation.csv", newline="") as f:
        return {(r["row"], int(r["seed"])): float(r["top1"]) for r in csv.DictReader(f)}


@ablation_runs_on_tensorflow
def test_ablate_on_a_folder_dataset_writes_paired_table_and_chart(run_cli, capsys, tmp_path):
    data = _folder_dataset(tmp_path / "photos")
    out = tmp_path / "ablation"
    argv = ["ablate", "--data", data, "--rows", "resnet,resnet-d", "--seeds", "3,5", "--out", out]
    assert run_cli([*argv, *_sets(TINY)]) == 0
    printed = capsys.readouterr().out

    for row, model in (("resnet", "resnet50"), ("resnet-d", "resnet50d")):
        for seed in (3, 5):
            recipe = load_recipe(out / row / f"seed{seed}" / "recipe.toml", ClassificationRecipe)
            assert (recipe.data.root, recipe.model.num_classes, recipe.model.name) == (data.as_posix(), 3, model)
            assert recipe.train.seed == seed and recipe.meta.title == f"{row}, seed {seed}"
            assert recipe.schedule.kind == "step" and recipe.model.zero_gamma
    top1 = _top1_by_row_and_seed(out)
    assert sorted(top1) == [("resnet", 3), ("resnet", 5), ("resnet-d", 3), ("resnet-d", 5)]
    diffs = [top1[("resnet-d", s)] - top1[("resnet", s)] for s in (3, 5)]
    # The 95% t interval of two seeds: mean +- t.ppf(0.975, 1) s / sqrt(2), t.ppf(0.975, 1) = 12.7062...
    mean, half = np.mean(diffs) + 0.0, 12.706204736174694 * np.std(diffs, ddof=1) / np.sqrt(2)
    per_seed = f"{diffs[0] + 0.0:+.2f} / {diffs[1] + 0.0:+.2f}"
    table = (out / "ablation.md").read_text()
    assert f"| {per_seed} | {mean:+.2f} [{mean - half + 0.0:+.2f}, {mean + half + 0.0:+.2f}] | resnet | +0.95 | 3,5 |" in table
    assert table.strip() in printed
    assert f"Measured with {keras.backend.backend()} " in table and f"keras {keras.__version__}" in table
    with open(out / "ablation.csv", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert [(r["row"], r["against"]) for r in csv_rows] == [("resnet", ""), ("resnet", ""), ("resnet-d", "resnet"), ("resnet-d", "resnet")]
    assert [float(r["paired_diff"]) for r in csv_rows[2:]] == pytest.approx(diffs, abs=1e-3)
    assert {(r["backend"], r["keras"], r["numpy"]) for r in csv_rows} == {(keras.backend.backend(), keras.__version__, np.__version__)}
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_paired_difference_is_per_seed_and_paper_deltas_sit_beside_it():
    results = {"resnet-c": {0: 50.0, 1: 60.0, 2: 70.0}, "resnet-d": {0: 52.0, 1: 61.0, 2: 73.0}}
    assert ablation.paired_differences(results, "resnet-d", "resnet-c") == [2.0, 1.0, 3.0]
    table = ablation.format_table(results)
    # By hand: t.ppf(0.975, 2) / sqrt(3) = 4.302653 / 1.732051 = 2.484137; the sample stds are 10, sqrt(111) and 1.
    assert "| resnet-c | 50.00 / 60.00 / 70.00 | 60.00 [35.16, 84.84] |  |  |  |  | 0,1,2 |" in table
    assert ("| resnet-d | 52.00 / 61.00 / 73.00 | 62.00 [35.83, 88.17] | +2.00 / +1.00 / +3.00 | +2.00 [-0.48, +4.48] "
            "| resnet-c | +0.29 | 0,1,2 |") in table


def test_distillation_rows_are_compared_with_the_row_they_add_distillation_to():
    results = {"+label-smoothing": {0: 40.0, 1: 42.0}, "+distill": {0: 41.0, 1: 45.0},
               "+mixup": {0: 39.0, 1: 40.0}, "+distill-w-mixup": {0: 39.5, 1: 41.0}}
    assert [ablation.compared_to(row, results) for row in results] == [None, "+label-smoothing", "+label-smoothing", "+mixup"]
    table = ablation.format_table(results)
    # Not "the row above": +mixup is against +label-smoothing, each distillation row against its row without it.
    # Two seeds: half-width t.ppf(0.975, 1) s / sqrt(2) = 12.706205 |d1 - d2| / 2.
    assert "| +distill | 41.00 / 45.00 | 43.00 [17.59, 68.41] | +1.00 / +3.00 | +2.00 [-10.71, +14.71] | +label-smoothing | +0.36 | 0,1 |" in table
    assert "| +mixup | 39.00 / 40.00 | 39.50 [33.15, 45.85] | -1.00 / -2.00 | -1.50 [-7.85, +4.85] | +label-smoothing | +0.84 | 0,1 |" in table
    assert "| +distill-w-mixup | 39.50 / 41.00 | 40.25 [30.72, 49.78] | +0.50 / +1.00 | +0.75 [-2.43, +3.93] | +mixup | +0.14 | 0,1 |" in table
    # With only some rows measured, the difference is to the nearest ancestor that was.
    assert ablation.compared_to("+distill-w-mixup", ["resnet-d", "+distill-w-mixup"]) == "resnet-d"


def test_rows_follow_tables_5_and_6_cumulatively():
    assert list(ablation.ROWS) == ["resnet", "resnet-b", "resnet-c", "resnet-d", "+cosine", "+label-smoothing",
                                   "+distill", "+mixup", "+distill-w-mixup"]
    assert "model.name=resnet50b" in ablation.ROWS["resnet-b"] and ablation.ROWS["resnet-b"][-1] == "model.name=resnet50b"
    assert set(ablation.ROWS["resnet-d"]) < set(ablation.ROWS["+mixup"])
    assert "schedule.kind='cosine'" in ablation.ROWS["+label-smoothing"] and ablation.ROWS["resnet-d"][-1] == "model.name=resnet50d"
    assert ablation.ROWS["+distill"] == [*ablation.ROWS["+label-smoothing"], "distillation.temperature=20.0"]
    assert ablation.ROWS["+distill-w-mixup"] == [*ablation.ROWS["+mixup"], "distillation.temperature=20.0"]
    assert "tricks.mixup_alpha=0.2" not in ablation.ROWS["+distill"]


def test_distillation_rows_run_only_with_a_teacher(run_cli, capsys, tmp_path):
    assert ablation.parse_rows("all") == [row for row in ablation.ROWS if row not in ("+distill", "+distill-w-mixup")]
    assert ablation.parse_rows("all", with_teacher=True) == list(ablation.ROWS)
    data = _folder_dataset(tmp_path / "photos")
    argv = ["ablate", "--data", data, "--rows", "+label-smoothing,+distill", "--out", tmp_path / "out"]
    assert run_cli(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --rows: the distillation rows (+distill) need a teacher; pass --teacher RUN_FOLDER") and error.count("\n") == 1
    assert run_cli([*argv, "--teacher", tmp_path / "photos"]) == 2
    assert "photos: not a run folder (no recipe.toml)" in capsys.readouterr().err
    # A finished run of 4 classes cannot teach 3: said before anything trains.
    teacher = tmp_path / "teacher"
    write_recipe(tiny_recipe(), teacher / "recipe.toml")
    for name in ("model.weights.h5", "finished"):
        (teacher / name).write_bytes(b"")
    assert run_cli([*argv, "--teacher", teacher]) == 2
    assert "the teacher has 4 classes, the rows 3" in capsys.readouterr().err
    # Another task's run is no teacher; a teacher without distillation rows is a mistake, not ignored.
    (teacher / "recipe.toml").write_text('task = "segmentation"\n[eval]\nsize = 64\n')
    assert run_cli([*argv, "--teacher", teacher]) == 2
    assert "a segmentation run (written by `kresnet transfer segment`); expected a classification run" in capsys.readouterr().err
    assert run_cli([*argv[:-4], "--rows", "resnet", "--out", tmp_path / "out", "--teacher", teacher]) == 2
    assert "only the distillation rows (+distill, +distill-w-mixup) use a teacher" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@ablation_runs_on_tensorflow
def test_distillation_rows_train_with_the_teacher_run_and_a_finished_ablation_is_read_back(run_cli, capsys, tmp_path, monkeypatch):
    data = _folder_dataset(tmp_path / "photos")
    # A teacher deeper and wider than the student, so its depths and widths must come from its run's recipe.
    teacher = tmp_path / "teacher"
    shape = ["model.stage_depths=[2,1,1,1]", "model.stage_widths=[8,8,8,8]"]
    assert run_cli(["train", "cifar10_teacher", "--out", teacher,
                    *_sets([*ablation.folder_dataset_overrides(data), *TINY, *shape])]) == 0
    out = tmp_path / "ablation"
    rows = "+label-smoothing,+distill,+mixup,+distill-w-mixup"
    # One epoch leaves none without mixup: the mixup rows mix to the end.
    tiny = _sets([*TINY, "tricks.mixup_off_epochs=0"])
    argv = ["ablate", "--data", data, "--rows", rows, "--seeds", "0", "--out", out, "--teacher", teacher, *tiny]
    assert run_cli(argv) == 0
    printed = capsys.readouterr().out

    for row, mixup in (("+distill", 0.0), ("+distill-w-mixup", 0.2)):
        run = out / row.replace("+", "plus-") / "seed0"
        recipe = load_recipe(run / "recipe.toml", ClassificationRecipe)
        assert recipe.distillation.teacher_model == "resnet50d" and recipe.distillation.temperature == 20.0
        assert recipe.distillation.teacher_weights == (teacher / "model.weights.h5").resolve().as_posix()
        assert (recipe.distillation.teacher_stage_depths, recipe.distillation.teacher_stage_widths) == ([2, 1, 1, 1], [8, 8, 8, 8])
        assert (recipe.tricks.label_smoothing, recipe.tricks.mixup_alpha, recipe.model.stage_widths) == (0.1, mixup, [4, 4, 8, 8])
        # The training loss holds T^2 CE(softmax(r/T), softmax(z/T)) >= 400 x the softened teacher's entropy (~400 ln 3).
        with open(run / "history.csv", newline="") as f:
            assert float(next(csv.DictReader(f))["loss"]) > 100
    with open(out / "plus-label-smoothing" / "seed0" / "history.csv", newline="") as f:
        assert float(next(csv.DictReader(f))["loss"]) < 10
    top1 = _top1_by_row_and_seed(out)
    table = (out / "ablation.md").read_text()
    for row, against, paper in (("+distill", "+label-smoothing", "+0.36"), ("+mixup", "+label-smoothing", "+0.84"),
                                ("+distill-w-mixup", "+mixup", "+0.14")):
        diff = f"{top1[(row, 0)] - top1[(against, 0)] + 0.0:+.2f}"
        assert f"| {diff} | {diff} (1 seed) | {against} | {paper} | 0 |" in table
    assert table.strip() in printed

    # Rerun: every run is finished with the same recipe, so it is read back, not trained.
    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("kresnet.classification.data.build_training_data", no_training)
    monkeypatch.setattr("kresnet.runs.task.fit_run", no_training)
    assert run_cli(argv) == 0
    assert (out / "ablation.md").read_text() == table and "already complete" in capsys.readouterr().out
    assert json.loads((out / "plus-distill" / "seed0" / "metrics.json").read_text())["top1"] == pytest.approx(top1[("+distill", 0)], abs=1e-4)


def test_step_rows_keep_the_recipes_boundaries_when_they_fit_in_training():
    assert ablation.step_epochs_for(8, [4, 6]) == [4, 6]
    assert ablation.step_epochs_for(16, [30, 60, 90]) == [4, 8, 12]


def test_data_without_class_folders_is_a_one_line_error(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(UserError, match=r"^--data: expected class folders in .*train and .*val"):
        ablation.folder_dataset_overrides(tmp_path)


def test_t_interval_matches_a_hand_computed_case():
    # scipy.stats.t.ppf(0.975, df) for df = 2 and 4, hard-coded: the formula, not scipy, is under test.
    mean, half = t_interval([40.0, 41.0, 42.5])
    sample_std = ((1.1666666666666667 ** 2 + 0.16666666666666666 ** 2 + 1.3333333333333333 ** 2) / 2) ** 0.5
    assert mean == pytest.approx(41.166666666666664) and half == pytest.approx(4.302652729749462 * sample_std / 3 ** 0.5)
    assert half == pytest.approx(3.1258, abs=1e-4)
    assert t_interval([1.0, 2.0, 3.0, 4.0, 5.0])[1] == pytest.approx(2.7764451051977934 * 2.5 ** 0.5 / 5 ** 0.5)
    assert t_interval([2.5]) == (2.5, None)
    assert format_interval([2.5], signed=True) == "+2.50 (1 seed)"
    assert format_interval([-1.0, 1.0], signed=True) == "+0.00 [-12.71, +12.71]"
