"""`kresnet transfer detect / evaluate / predict` end to end on a tiny synthetic recipe."""

import json

import keras
import pytest

from kresnet.bundled_recipes import BUNDLED_RECIPES
from kresnet.errors import UserError
from kresnet.runs.folder import RunFolder
from kresnet.transfer.detection.commands import detect_command, predict_command
from kresnet.transfer.detection.config import load_detection_recipe
from kresnet.transfer.detection.trainer import train_detector

DEMO = BUNDLED_RECIPES / "transfer" / "demo_detect.toml"
TINY = ["data.synthetic_train_images=4", "data.synthetic_test_images=2", "train.epochs=2", "train.steps_per_epoch=1",
        "train.batch_size=2", "eval.batch_size=2", "schedule.warmup_epochs=0.5", "model.fpn_channels=16",
        "model.head_dim=32", "model.rpn_pre_nms_topk_train=100", "model.rpn_pre_nms_topk_test=100",
        "model.rpn_post_nms_topk_train=50", "model.rpn_post_nms_topk_test=50", "model.roi_batch_size=32"]


def test_stage_widths_narrow_the_backbone(monkeypatch):
    import kresnet.transfer.backbone
    from kresnet.transfer.detection.runner import build_detector

    built = []
    build_backbone = kresnet.transfer.backbone.build_backbone
    monkeypatch.setattr(kresnet.transfer.backbone, "build_backbone", lambda *a, **k: built.append(build_backbone(*a, **k)) or built[-1])
    build_detector(load_detection_recipe(DEMO, [*TINY, "model.stage_widths=[8, 16, 24, 32]"]), 3)
    # resnet18d: basic blocks, so each stage's output has its width in channels.
    assert [built[0].pyramid_outputs[level].shape[-1] for level in ("P2", "P3", "P4", "P5")] == [8, 16, 24, 32]


def test_recipe_errors_name_the_key(tmp_path):
    with pytest.raises(UserError, match="model.anchor_sizes"):
        load_detection_recipe(DEMO, ["model.anchor_sizes=[8.0]"])
    # FPN is the default; without it any number of anchor sizes share the one C4 map.
    assert load_detection_recipe(DEMO).model.fpn
    single = load_detection_recipe(DEMO, ["model.fpn=false", "model.anchor_sizes=[16.0, 32.0]"])
    from kresnet.transfer.detection.runner import build_detector

    assert build_detector(single, 3).strides == (16,)
    with pytest.raises(UserError, match="data.source"):
        load_detection_recipe(DEMO, ["data.source=kitti"])
    with pytest.raises(UserError, match="data.short_side"):
        load_detection_recipe(DEMO, ["data.short_side=100"])
    with pytest.raises(UserError, match=r"schedule\.warmup_epochs: expected fewer than train\.epochs \(4\), got 4\.0$"):
        load_detection_recipe(DEMO, ["train.epochs=4", "schedule.warmup_epochs=4.0"])
    with pytest.raises(UserError, match=r"schedule\.step_epochs: expected epochs below train\.epochs \(4\), got \[2, 4\]$"):
        load_detection_recipe(DEMO, ["train.epochs=4", "schedule.kind=step", "schedule.step_epochs=[2,4]"])


# Table 8 of the paper: VOC07 test mAP per backbone row, and the recipe that trains that backbone.
TABLE8 = {
    # Standard training (the paper's baseline recipe) of ResNet-50-B, as Table 9's B-standard row.
    "voc_faster_rcnn_b_standard": (77.54, "resnet50b", "baseline_resnet50b"),
    "voc_faster_rcnn_d_efficient": (78.30, "resnet50d", "table6_efficient"),
    "voc_faster_rcnn_d_cosine": (79.23, "resnet50d", "table6_cosine"),
    "voc_faster_rcnn_d_label_smoothing": (80.71, "resnet50d", "table6_label_smoothing"),
    "voc_faster_rcnn_d_distill": (80.96, "resnet50d", "table6_distill"),
    "voc_faster_rcnn_d_mixup": (81.10, "resnet50d", "table6_mixup"),
    "voc_faster_rcnn_d_distill_mixup": (81.33, "resnet50d", "table6_distill_mixup"),
}


def test_all_table8_recipes_load():
    # voc_faster_rcnn_r50d_gluon starts from a pretrained tag, not a Table 6 run (tests/models/test_pretrained.py).
    recipes = sorted(path for path in (BUNDLED_RECIPES / "transfer").glob("voc_faster_rcnn_*.toml") if not path.stem.endswith("_gluon"))
    assert sorted(path.stem for path in recipes) == sorted(TABLE8)
    for path in recipes:
        config = load_detection_recipe(path)
        expected_map, backbone, classifier_recipe = TABLE8[path.stem]
        assert config.meta.expected_map == pytest.approx(expected_map) and config.meta.paper_table == "Table 8"
        assert config.model.backbone == backbone and config.model.fpn
        assert config.model.backbone_weights == f"runs/{classifier_recipe}/model.weights.h5"
        recipe_file = classifier_recipe.replace("baseline_resnet50b", "baseline")  # --set model.name=resnet50b
        assert (BUNDLED_RECIPES / f"{recipe_file}.toml").is_file()  # `kresnet train` writes those weights
        assert (config.data.short_side, config.data.max_side, config.data.flip) == (600, 1000, True)
        assert config.data.train_splits == ["VOC2007/trainval", "VOC2012/trainval"]
        assert config.data.test_splits == ["VOC2007/test"]
        assert config.schedule.warmup_epochs > 0 and config.model.freeze_bn and config.model.freeze_stem


class _Interrupted(Exception):
    pass


class _InterruptAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise _Interrupted()


class _Killed(Exception):
    pass


def _kill_before_the_final_weights_are_complete(phase, path):
    if path.name == ".partial-model.weights.h5" and phase == "replace":
        path.write_bytes(path.read_bytes()[:100])  # half written, as a kill leaves it
        raise _Killed()


def test_detect_resume_evaluate_predict(tmp_path, monkeypatch, testdata, run_cli, capsys):
    monkeypatch.setenv("KRESNET_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    # Interrupt the first run after its first epoch; the same command then resumes at epoch 2.
    with pytest.raises(_Interrupted):
        train_detector(load_detection_recipe(DEMO, TINY), run, extra_callbacks=[_InterruptAfterFirstEpoch()])
    assert (run / "checkpoints" / "state.json").is_file() and not (run / "model.weights.h5").exists()
    capsys.readouterr()
    # Killed after the last epoch, while model.weights.h5 is being written: no training is lost.
    with pytest.raises(_Killed):
        train_detector(load_detection_recipe(DEMO, TINY), run, fault=_kill_before_the_final_weights_are_complete)
    assert f"resuming {run} at epoch 2, step 0 of 1" in capsys.readouterr().out
    assert not (run / "model.weights.h5").exists() and not (run / "finished").exists()
    metrics = detect_command(DEMO, TINY, run)
    assert "Epoch 1/" not in capsys.readouterr().out  # nothing trained again
    epochs = [line.split(",")[0] for line in (run / "history.csv").read_text().strip().splitlines()[1:]]
    assert epochs == ["1", "2"]  # epoch 1 from the interrupted run, epoch 2 from the resumed one
    for name in ("recipe.toml", "classes.json", "history.csv", "model.weights.h5", "metrics.json",
                 "checkpoints/state.json", "finished"):
        assert (run / name).is_file(), name
    assert any((run / "logs" / "train").iterdir())  # TensorBoard scalars, as every task
    assert 0.0 <= metrics["map_voc07"] <= 100.0 and set(metrics["per_class_ap_voc07"]) == set(
        json.loads((run / "classes.json").read_text()))
    written = json.loads((run / "metrics.json").read_text())
    assert written["map_voc07"] == pytest.approx(metrics["map_voc07"]) and written["epochs"] == 2
    assert written["backends"] == [keras.backend.backend()] and written["precision"] == "float32"
    assert written["task"] == "detection" and written["steps"] == 2
    assert "expected_map" in written and "paper_row" in written  # the paper's number for Table 8 recipes
    # Rerun: the run is complete, so it returns the stored metrics; without them it evaluates the saved detector again.
    capsys.readouterr()
    stored = detect_command(DEMO, TINY, run)
    assert json.dumps(stored) == json.dumps(written) and "already complete" in capsys.readouterr().err  # NaN != NaN
    (run / "metrics.json").unlink()
    again = detect_command(DEMO, TINY, run)
    assert again["map_voc07"] == pytest.approx(metrics["map_voc07"], abs=1e-6)
    with pytest.raises(UserError, match="image or folder not found"):
        predict_command(DEMO, [tmp_path / "missing.jpg"], TINY, None, run)

    # As a user types them: a checkpoint inside a run folder brings its recipe, and the results go there.
    # (Each command builds and traces a detector, which costs most on TensorFlow, so evaluate and predict
    # run once each, through the CLI.)
    assert run_cli(["transfer", "evaluate", "--checkpoint", run / "model.weights.h5"]) == 0
    scored = json.loads((run / "eval_metrics.json").read_text())
    assert scored["map_voc07"] == pytest.approx(metrics["map_voc07"], abs=1e-6)
    context = ("backend", "precision", "paper_table", "paper_row", "expected_map")
    assert {key: scored[key] for key in context} == {key: written[key] for key in context}
    drawn_dir = tmp_path / "drawn"
    photo = testdata / "voc" / "VOCdevkit" / "VOC2007" / "JPEGImages" / "000001.jpg"
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert run_cli(["transfer", "predict", "--checkpoint", run / "checkpoints" / state["weights"], photo,
                    "--out", drawn_dir]) == 0
    drawn = drawn_dir / "predictions" / "000001.png"
    from PIL import Image

    with Image.open(drawn) as image, Image.open(photo) as source:
        assert image.size == source.size
    capsys.readouterr()
    # Weights that do not fit the recipe's model: one line naming the file, no traceback.
    assert run_cli(["transfer", "predict", DEMO, photo, "--checkpoint",
                    run / "model.weights.h5", "--out", drawn_dir, *[f"--set={item}" for item in TINY],
                    "--set", "model.head_dim=8"]) == 2
    assert "model.weights.h5: does not fit the recipe's detector" in capsys.readouterr().err
    assert run_cli(["transfer", "predict", photo]) == 2
    assert "no recipe given and no --checkpoint" in capsys.readouterr().err


def test_a_run_folder_refuses_to_resume_with_another_recipe(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)  # an interrupted run of the TINY recipe
    with RunFolder(run, writer=True) as folder:
        folder.claim(load_detection_recipe(DEMO, TINY))
    with pytest.raises(UserError, match="started with train.seed = 0, now 5"):
        detect_command(DEMO, [*TINY, "train.seed=5"], run)


def test_coco_format_recipe_trains_and_reports_coco_ap(tmp_path, testdata, capsys):
    coco = ["data.source=coco", f"data.root={(testdata / 'coco').as_posix()}", "data.coco_train_json=instances.json",
            "data.coco_test_json=instances.json", "data.coco_train_images=images", "data.coco_test_images=images",
            "data.max_boxes=32", "train.epochs=1", "schedule.warmup_epochs=0.5"]
    metrics = detect_command(DEMO, TINY + coco, tmp_path / "run")
    assert len(metrics["per_class_ap_voc07"]) == 133  # the sample's categories, ids up to 200
    assert set(metrics["coco"]) >= {"ap", "ap50", "ap_small", "ar100"}
    assert "COCO AP" in capsys.readouterr().out


def test_a_truncated_checkpoint_given_to_transfer_evaluate_is_one_line(tmp_path, run_cli, capsys, monkeypatch):
    # A copy cut short (a full disk, an interrupted transfer), given as `--checkpoint`.
    monkeypatch.setenv("KRESNET_CACHE", str(tmp_path / "cache"))
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(300)(inputs)).save_weights(tmp_path / "model.weights.h5")
    cut = tmp_path / "cut" / "model.weights.h5"
    cut.parent.mkdir()
    cut.write_bytes((tmp_path / "model.weights.h5").read_bytes()[:3000])
    assert run_cli(["transfer", "evaluate", "--checkpoint", cut, DEMO, *[f"--set={item}" for item in TINY]]) == 2
    err = capsys.readouterr().err.strip()  # after the progress line "preparing the synthetic VOC scenes"
    assert "Traceback" not in err and sum(line.startswith("error: ") for line in err.splitlines()) == 1
    assert err.splitlines()[-1].startswith(f"error: {cut}: not a readable .weights.h5 file (Unable to synchronously open file (truncated")
