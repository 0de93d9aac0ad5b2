"""The front door: help works without a backend import cost, and `kresnet models` prints its table."""

import subprocess
import sys


def test_help_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "kresnet.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("models", "import-weights", "data", "bench"):
        assert command in result.stdout


def test_models_table_rows(run_cli, capsys):
    assert run_cli(["models", "--match", "resnet18", "--image-size", "224"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["name", "variant", "params"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert list(rows) == ["resnet18", "resnet18b", "resnet18c", "resnet18d"]
    assert rows["resnet18d"][1:] == ["ResNet-D", "11,708,744", "2.05"]
