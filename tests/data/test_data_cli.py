"""`kresnet data synth|convert|check` and `kresnet bench data`, run in-process."""

import json

from PIL import Image


def test_synth_convert_check_and_bench(run_cli, capsys, tmp_path):
    root = tmp_path / "synth"
    assert run_cli(["data", "synth", root, "--classes", "3", "--per-class", "4", "--val-per-class", "1", "--size", "40", "--seed", "7"]) == 0
    assert "wrote 15 images of 3 classes" in capsys.readouterr().out
    assert sorted(p.name for p in (root / "train").iterdir()) == ["s0000_circle_solid", "s0001_square_solid", "s0002_triangle_solid"]
    assert Image.open(next((root / "val" / "s0001_square_solid").iterdir())).size == (40, 40)

    (root / "train" / "s0000_circle_solid" / "zz_broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert run_cli(["data", "check", root, "--workers", "2"]) == 1
    out = capsys.readouterr().out
    assert "unreadable: " in out and "zz_broken.JPEG" in out and "15 of 16 images readable; 1 unreadable" in out

    assert run_cli(["data", "convert", root, tmp_path / "records", "--images-per-shard", "8", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "wrote 15 images in 3 shards" in out and "skipped 1 unreadable" in out
    metadata = json.loads((tmp_path / "records" / "dataset.json").read_text())
    assert sorted(metadata["shards"]) == ["train-00000-of-00002", "train-00001-of-00002", "validation-00000-of-00001"]
    assert metadata["shards"]["validation-00000-of-00001"] == 3 and sum(metadata["shards"].values()) == 15

    assert run_cli(["bench", "data", root, "--batch", "4", "--size", "24", "--steps", "2", "--pillow-steps", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line[:24].strip(): line[24:].split() for line in lines if line.startswith(("pillow", "tf.data"))}
    assert set(rows) == {"pillow + numpy, 1 core", "tf.data, 1 thread"} | {k for k in rows if k.startswith("tf.data,") and "cores" in k}
    assert len(rows) == 3 and rows["pillow + numpy, 1 core"][1] == "1.00"
    assert all(float(values[0]) > 0 for values in rows.values())


def test_missing_dataset_is_a_one_line_error(run_cli, capsys, tmp_path):
    assert run_cli(["data", "convert", tmp_path / "absent", tmp_path / "out"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "absent" in err and "not found" in err
