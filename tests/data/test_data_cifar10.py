"""`kresnet data cifar10`: CIFAR-10 arrays -> JPEG class folders train/ and val/ (the loader is replaced: tests never download)."""

import csv
import hashlib

import numpy as np
from PIL import Image

from kresnet.data import cifar10
from kresnet.data.sources import list_image_folder


def _tiny_cifar():
    train_labels = np.array([[k % 10] for k in range(30)])  # three images per class
    test_labels = np.array([[9 - k % 10] for k in range(20)])
    # One flat colour per image (JPEG keeps it), so a file shows which array index it came from.
    train = np.stack([np.full((32, 32, 3), (8 * k, 255 - 8 * k, 100), dtype=np.uint8) for k in range(30)])
    test = np.full((20, 32, 32, 3), 200, dtype=np.uint8)
    return (train, train_labels), (test, test_labels)


def test_cifar10_command_writes_class_folders_kresnet_reads(run_cli, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(cifar10, "load_cifar10_arrays", _tiny_cifar)
    out = tmp_path / "cifar10"
    assert run_cli(["data", "cifar10", out, "--train-per-class", "2"]) == 0
    assert "wrote 20 training and 20 validation images of 10 classes" in capsys.readouterr().out

    paths, labels, names = list_image_folder(out / "train")
    assert names == sorted(cifar10.CLASS_NAMES) and len(paths) == 20 and labels.count(0) == 2
    # The first two images of class 3 (cat) are indices 3 and 13 of the training arrays.
    assert sorted(p.name for p in (out / "train" / "cat").iterdir()) == ["00003.jpg", "00013.jpg"]
    (train, _), _ = _tiny_cifar()
    written = np.asarray(Image.open(out / "train" / "cat" / "00003.jpg"), dtype=np.float32)
    assert written.shape == (32, 32, 3) and np.abs(written - train[3]).max() <= 3
    # The manifest lists every file written, its SHA-256 and its index in the arrays.
    with open(out / "manifest.csv", newline="") as f:
        manifest = {row["file"]: row for row in csv.DictReader(f)}
    assert len(manifest) == 40 and manifest["train/cat/00013.jpg"]["cifar10_index"] == "13"
    assert manifest["val/truck/00010.jpg"]["sha256"] == hashlib.sha256((out / "val" / "truck" / "00010.jpg").read_bytes()).hexdigest()
    val = list_image_folder(out / "val")[0]
    assert len(val) == 20 and sorted(p.name for p in (out / "val" / "truck").iterdir()) == ["00000.jpg", "00010.jpg"]

    assert run_cli(["data", "cifar10", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err
