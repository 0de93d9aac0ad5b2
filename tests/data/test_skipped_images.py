"""Unreadable images: skipped, counted for train and eval, reported once per epoch, kept in metrics.json."""

import io
import json
import os

import keras
import numpy as np
from PIL import Image
import pytest

from kresnet.data.skips import SkipCounter, skip_report, skipped_images_callback


def _jpeg(seed):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def write_tree(root, per_class, bad):
    """root/{train,val}/<class>/*.jpg with `bad[split]` truncated files in the first class."""
    for split in ("train", "val"):
        for label in range(4):
            folder = root / split / f"c{label}"
            folder.mkdir(parents=True)
            for number in range(per_class[split]):
                data = _jpeg(100 * label + number)
                if label == 0 and number < bad[split]:
                    data = data[: len(data) // 3]  # truncated: TensorFlow cannot decode it
                (folder / f"{number}.jpg").write_bytes(data)


def test_one_report_line_per_epoch_for_named_counters():
    counters = {"train": SkipCounter(), "val": None}
    messages = []
    callback = skipped_images_callback(counters, messages.append)
    callback.on_epoch_end(0, {})
    assert messages == []  # nothing skipped, nothing said
    assert skip_report({"train": 2, "val": 0}) == (
        "warning: skipped unreadable images (corrupt, truncated or not an image): train 2, val 0")


def test_classification_training_counts_train_and_val_skips_in_metrics(tmp_path, capsys):
    from tests.training_helpers import tiny_recipe

    from kresnet.classification.data import build_training_data
    from kresnet.classification.trainer import train

    write_tree(tmp_path / "data", {"train": 4, "val": 2}, {"train": 1, "val": 1})
    config = tiny_recipe(data={"root": str(tmp_path / "data")}, train={"epochs": 1, "batch_size": 5},
                         tricks={"mixup_alpha": 0.0, "mixup_off_epochs": 0}, schedule={"warmup_epochs": 0.0})
    data = build_training_data(config)
    metrics = train(config, tmp_path / "run", data=data, verbose=0)
    assert metrics["skipped_images"] == {"train": 1, "val": 1}
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["skipped_images"] == {"train": 1, "val": 1}
    assert capsys.readouterr().out.count("skipped unreadable images") == 1  # one epoch, one line


def test_skip_warnings_start_a_line_of_their_own_below_the_progress_bar(tmp_path, capsys):
    # The progress bar (verbose 1) leaves its line open until the epoch's final update; the
    # epoch's skip count is reported before that update.
    from tests.training_helpers import tiny_recipe

    from kresnet.classification.data import build_training_data
    from kresnet.classification.trainer import train

    write_tree(tmp_path / "data", {"train": 4, "val": 2}, {"train": 1, "val": 0})
    config = tiny_recipe(data={"root": str(tmp_path / "data")}, train={"epochs": 1, "batch_size": 5},
                         tricks={"mixup_alpha": 0.0, "mixup_off_epochs": 0}, schedule={"warmup_epochs": 0.0})
    train(config, tmp_path / "run", data=build_training_data(config), verbose=1)
    lines = capsys.readouterr().out.split("\n")
    assert [line for line in lines if "unreadable" in line] == [
        "warning: skipped unreadable images (corrupt, truncated or not an image): train 1, val 0"]
    assert "val_loss" in [line for line in lines if "step - loss" in line][-1]  # the bar's final line follows


def test_evaluate_reports_the_images_actually_scored(tmp_path):
    import kresnet
    from kresnet.classification.evaluation import evaluate_weights

    write_tree(tmp_path / "data", {"train": 1, "val": 3}, {"train": 0, "val": 2})
    model = kresnet.create_model("resnet18d", num_classes=4, stage_depths=[1, 1, 1, 1])
    model.save_weights(tmp_path / "model.weights.h5")
    metrics = evaluate_weights(tmp_path / "model.weights.h5", "resnet18d", tmp_path / "data", num_classes=4,
                               image_size=32, resize=32, batch_size=4, stage_depths=[1, 1, 1, 1])
    assert metrics["images"] == 10 and metrics["skipped_images"] == 2  # 12 files, 2 unreadable
    keras.backend.clear_session()


def test_libjpeg_lines_are_kept_off_the_console_and_the_rest_passes(tmp_path):
    # libjpeg prints to file descriptor 2 itself, so only a real process shows what reaches the console.
    import subprocess
    import sys

    script = (
        "import os, sys\n"
        "from kresnet.data.decoder_messages import hide_decoder_messages\n"
        "hide_decoder_messages()\n"
        "os.write(2, b'Improper call to JPEG library in state 201\\n')\n"
        "os.write(2, b'Input file read error\\n')\n"
        "print('a real warning', file=sys.stderr, flush=True)\n"
        "os.write(2, b'Premature end of JPEG file\\nsecond real line\\n')\n"
        "raise SystemExit('error: the last line')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr == "a real warning\nsecond real line\nerror: the last line\n"


NATIVE_LINES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796109472.562246   23003 port.cc:153] oneDNN custom operations are on.\n"
    "W0000 00:00:1796109472.600000   23003 cpu_feature_guard.cc:227] rebuild TensorFlow\n"
)
NATIVE_ERROR = "E0000 00:00:1796109472.700000   23003 cuda_platform.cc:52] failed call to cuInit\n"


@pytest.mark.parametrize("flags", [[], ["--verbose"]])
def test_native_info_and_warning_lines_are_hidden_unless_verbose(flags):
    # TensorFlow and absl write these to file descriptor 2 before TF_CPP_MIN_LOG_LEVEL is read: a real process.
    import subprocess
    import sys

    script = (
        "import os, sys\n"
        "from kresnet.cli import main\n"
        "try:\n"
        f"    main({flags + ['recipes']!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"os.write(2, {(NATIVE_LINES + NATIVE_ERROR).encode()!r})\n"
        "print('level', os.environ['TF_CPP_MIN_LOG_LEVEL'], file=sys.stderr, flush=True)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    if flags:
        assert done.stderr == NATIVE_LINES + NATIVE_ERROR + "level 0\n"
    else:
        assert done.stderr == NATIVE_ERROR + "level 2\n"  # errors always pass
