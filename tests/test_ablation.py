"""`kresnet ablate --data`: paper rows x paired seeds on a folder dataset, with the table and its bar chart."""

import csv

import numpy as np
import pytest
from PIL import Image

from kresnet.errors import UserError
from kresnet.recipe import load_recipe
from kresnet.training import ablation
from kresnet.training.config import ClassificationRecipe


def _folder_dataset(root, classes=3, per_class=4):
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("val", 2)):
        for k in range(classes):
            folder = root / split / f"class{k}"
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 255, (36, 40, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    return root


def test_ablate_on_a_folder_dataset_writes_paired_table_and_chart(run_cli, capsys, tmp_path):
    data = _folder_dataset(tmp_path / "photos")
    out = tmp_path / "ablation"
    tiny = ["model.stage_depths=[1,1,1,1]", "model.stage_widths=[4,4,8,8]", "data.image_size=32", "data.eval_resize=32",
            "train.epochs=1", "train.batch_size=4", "schedule.warmup_epochs=0.5"]
    argv = ["ablate", "--data", data, "--rows", "resnet,resnet-d", "--seeds", "3,5", "--out", out]
    assert run_cli([*argv, *[arg for key in tiny for arg in ("--set", key)]]) == 0
    printed = capsys.readouterr().out

    for row, model in (("resnet", "resnet50"), ("resnet-d", "resnet50d")):
        for seed in (3, 5):
            recipe = load_recipe(out / row / f"seed{seed}" / "recipe.toml", ClassificationRecipe)
            assert (recipe.data.root, recipe.model.num_classes, recipe.model.name) == (data.as_posix(), 3, model)
            assert recipe.train.seed == seed and recipe.meta.title == f"{row}, seed {seed}"
            assert recipe.schedule.kind == "step" and recipe.model.zero_gamma
    with open(out / "ablation.csv", newline="") as f:
        top1 = {(r["row"], int(r["seed"])): float(r["top1"]) for r in csv.DictReader(f)}
    assert sorted(top1) == [("resnet", 3), ("resnet", 5), ("resnet-d", 3), ("resnet-d", 5)]
    diffs = [top1[("resnet-d", s)] - top1[("resnet", s)] for s in (3, 5)]
    table = (out / "ablation.md").read_text()
    assert f"| {np.mean(diffs) + 0.0:+.2f} +- {np.std(diffs, ddof=1):.2f} | +0.95 | 3,5 |" in table and table.strip() in printed
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_paired_difference_is_per_seed_and_paper_deltas_sit_beside_it():
    results = {"resnet-c": {0: 50.0, 1: 60.0, 2: 70.0}, "resnet-d": {0: 52.0, 1: 61.0, 2: 73.0}}
    assert ablation.paired_differences(results, "resnet-d", "resnet-c") == [2.0, 1.0, 3.0]
    table = ablation.format_table(results)
    assert "| resnet-c | 60.00 +- 10.00 |  |  | 0,1,2 |" in table
    assert "| resnet-d | 62.00 +- 10.54 | +2.00 +- 1.00 | +0.29 | 0,1,2 |" in table


def test_rows_follow_tables_5_and_6_cumulatively():
    assert list(ablation.ROWS) == ["resnet", "resnet-b", "resnet-c", "resnet-d", "+cosine", "+label-smoothing", "+mixup"]
    assert "model.name=resnet50b" in ablation.ROWS["resnet-b"] and ablation.ROWS["resnet-b"][-1] == "model.name=resnet50b"
    assert set(ablation.ROWS["resnet-d"]) < set(ablation.ROWS["+mixup"])
    assert "schedule.kind='cosine'" in ablation.ROWS["+label-smoothing"] and ablation.ROWS["resnet-d"][-1] == "model.name=resnet50d"


def test_step_rows_keep_the_recipes_boundaries_when_they_fit_in_training():
    assert ablation.step_epochs_for(8, [4, 6]) == [4, 6]
    assert ablation.step_epochs_for(16, [30, 60, 90]) == [4, 8, 12]


def test_data_without_class_folders_is_a_one_line_error(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(UserError, match=r"^--data: expected class folders in .*train and .*val"):
        ablation.folder_dataset_overrides(tmp_path)
