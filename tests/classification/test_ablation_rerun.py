"""A rerun of one ablation row and seed in a fresh process, on the same data, backend and versions, gives the same numbers."""

import os
import subprocess
import sys

import keras
import pytest

from tests.classification.test_ablation import TINY, _folder_dataset, _sets
from tests.training_helpers import ablation_runs_on_tensorflow


def _ablate(data, out):
    argv = ["ablate", "--data", data, "--rows", "resnet-d", "--seeds", "1", "--out", out, *_sets(TINY)]
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend(), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-m", "kresnet.cli", *map(str, argv)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.mark.slow
@ablation_runs_on_tensorflow
def test_two_fresh_processes_write_identical_ablation_csv_and_histories(tmp_path):
    data = _folder_dataset(tmp_path / "photos")
    first, second = _ablate(data, tmp_path / "first"), _ablate(data, tmp_path / "second")
    # Top-1 (to 4 decimals, with the versions), and the epoch's losses and accuracies as the run recorded
    # them (17 significant digits): bit-identical training, not merely close.
    assert (first / "ablation.csv").read_text() == (second / "ablation.csv").read_text()
    history = [(out / "resnet-d" / "seed1" / "history.csv").read_text() for out in (first, second)]
    assert history[0] == history[1] and history[0].count("\n") == 2
