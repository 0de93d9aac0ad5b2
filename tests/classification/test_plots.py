"""`kresnet plot` (Figure 3 from run folders) and the ablation bar chart: valid PNGs drawn from the given runs."""

import csv
import math

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer

from PIL import Image

from kresnet.classification import plots
from kresnet.recipe import write_recipe
from tests.training_helpers import tiny_recipe

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _run(folder, title, kind, rows, columns):
    """A run folder as `kresnet train` leaves it: the resolved recipe and a history.csv."""
    config = tiny_recipe(meta={"title": title}, schedule={"kind": kind, "warmup_epochs": 0.0, "step_epochs": [1]}, train={"epochs": 2})
    write_recipe(config, folder / "recipe.toml")
    with open(folder / "history.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)
    return folder


def _two_runs(tmp_path):
    # Keras counts epochs from 0 and has no lr column; a history that counts from 1 with an lr column must plot the same way.
    cosine = _run(tmp_path / "cosine", "cosine run", "cosine", [[0, 1.0, 0.40], [1, 0.9, 0.55]], ["epoch", "loss", "val_top1"])
    step = _run(tmp_path / "step", "step run", "step", [[1, 0.05, 0.30], [2, 0.005, 0.45]], ["epoch", "lr", "val_top1"])
    return cosine, step


def test_history_figure_has_one_line_per_run_labelled_by_its_recipe(tmp_path):
    cosine, step = _two_runs(tmp_path)
    figure = plots.history_figure([cosine, step])
    lr_axes, top1_axes = figure.axes
    assert [line.get_label() for line in top1_axes.get_lines()] == ["cosine run", "step run"]
    assert [text.get_text() for text in top1_axes.get_legend().get_texts()] == ["cosine run", "step run"]
    assert lr_axes.get_ylabel() == "learning rate" and top1_axes.get_ylabel() == "validation top-1 (%)"
    cosine_top1, step_top1 = top1_axes.get_lines()
    assert list(cosine_top1.get_xdata()) == [1, 2] == list(step_top1.get_xdata())
    assert np.allclose(cosine_top1.get_ydata(), [40.0, 55.0]) and np.allclose(step_top1.get_ydata(), [30.0, 45.0])
    cosine_lr, step_lr = lr_axes.get_lines()
    assert list(step_lr.get_ydata()) == [0.05, 0.005]
    # From the recipe: lr_per_256 0.8 at batch 16 is 0.05; cosine at the end of epoch 1 of 2 is half of it.
    peak = 0.8 * 16 / 256
    end_of_first = (1000 - 1) / 2000
    assert math.isclose(cosine_lr.get_ydata()[0], peak * 0.5 * (1 + math.cos(math.pi * end_of_first)), rel_tol=1e-4)
    assert cosine_lr.get_ydata()[1] < 1e-6


def test_plot_command_writes_a_png_and_rejects_a_folder_without_history(run_cli, capsys, tmp_path):
    cosine, step = _two_runs(tmp_path)
    out = tmp_path / "figures" / "fig3.png"
    assert run_cli(["plot", cosine, step, "--out", out]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert Image.open(out).size == (900, 340)
    capsys.readouterr()

    empty = tmp_path / "not_a_run"
    empty.mkdir()
    assert run_cli(["plot", cosine, empty, "--out", tmp_path / "x.png"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not_a_run: not a run folder (no recipe.toml)" in err
    assert not (tmp_path / "x.png").exists()


def test_ablation_chart_bars_are_row_means_with_95_percent_interval_error_bars(tmp_path):
    results = {"resnet": {0: 50.0, 1: 60.0, 2: 70.0}, "+cosine": {0: 80.0, 1: 80.0, 2: 80.0}}
    figure = plots.ablation_figure(results)
    (axes,) = figure.axes
    assert [bar.get_height() for bar in axes.patches] == [60.0, 80.0]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["resnet", "+cosine"]
    (error_bars,) = [c for c in axes.containers if isinstance(c, ErrorbarContainer)]
    segments = error_bars.lines[2][0].get_segments()
    # mean +- t.ppf(0.975, 2) s / sqrt(3), with s = 10 and 0.
    half = 4.302652729749462 * 10 / 3 ** 0.5
    assert [list(segment[:, 1]) for segment in segments] == [pytest.approx([60 - half, 60 + half]), [80.0, 80.0]]
    out = plots.save_figure(figure, tmp_path / "ablation.png")
    assert out.read_bytes()[:8] == PNG_SIGNATURE
