"""`kresnet transfer import-weights RECIPE FILE`: torchvision's detector and FCN files become weights that
`evaluate` and `predict` use, and the saved weights still give torchvision's outputs.

The files are the narrow torchvision references (tests/fixtures/reference/torchvision); the recipes are
the bundled torchvision ones with only the reference's sizes overridden.
"""

import json
import shutil

import numpy as np
import pytest
from keras import ops

from kresnet.transfer.detection.commands import _object_classes
from tests.transfer.detection.torchvision_reference import NARROW, STAGE_WIDTHS, numpy_tree, padded_pixels, reference_recipe

DETECTION_CLASSES = ["cat", "dog", "cow", "sheep"]  # the reference detector has 4
SEGMENTATION_CLASSES = ["background", "cat", "dog"]  # the reference FCN has 3


def _detection_settings():
    # The 96x96 reference batch is the square input of `data.max_side = 96`.
    names = ",".join(f'"{name}"' for name in DETECTION_CLASSES)
    return [*NARROW, f"model.stage_widths=[{','.join(map(str, STAGE_WIDTHS))}]", "data.source=voc",
            f"data.class_names=[{names}]", "data.short_side=96", "data.max_side=96"]


def _sets(settings):
    return [part for setting in settings for part in ("--set", setting)]


def test_imported_detector_weights_give_torchvisions_detections_and_predict(run_cli, testdata, tmp_path, capsys):
    folder = testdata / "reference" / "torchvision"
    out = tmp_path / "run"
    assert run_cli(["transfer", "import-weights", "coco_faster_rcnn_resnet50_fpn_torchvision",
                    folder / "fasterrcnn_resnet50_fpn.pth", *_sets(_detection_settings()), "--out", out]) == 0
    assert "next: kresnet transfer evaluate" in capsys.readouterr().out
    assert json.loads((out / "classes.json").read_text()) == DETECTION_CLASSES
    # The written weights, loaded as `evaluate` loads them, give torchvision's detections.
    from kresnet.transfer.detection.commands import _load_detector

    config = reference_recipe(_detection_settings()[len(NARROW):])
    model = _load_detector(config, len(DETECTION_CLASSES), out / "model.weights.h5")
    case = np.load(folder / "fasterrcnn_96x96.npz")
    images = padded_pixels(case, np.asarray(config.model.pixel_mean, np.float32))
    detections = numpy_tree(model.predict_on_batch({"images": images, "image_sizes": case["image_sizes"]}))
    kept = detections["valid"][0]
    assert kept.sum() == len(case["detections_scores_0"])
    # Near ties may swap ranks (see test_torchvision_faster_rcnn_parity.py); the best ten are far apart here.
    np.testing.assert_allclose(detections["scores"][0][kept][:10], case["detections_scores_0"][:10], atol=1e-4)
    np.testing.assert_array_equal(detections["labels"][0][kept][:10] + 1, case["detections_labels_0"][:10])
    photo = tmp_path / "photo.jpg"
    shutil.copy(sorted((testdata / "coco" / "images").glob("*.jpg"))[0], photo)
    assert run_cli(["transfer", "predict", "coco_faster_rcnn_resnet50_fpn_torchvision", photo,
                    *_sets(_detection_settings()), "--out", out]) == 0
    assert (out / "predictions" / "photo.png").is_file()


def test_a_detector_file_of_other_classes_than_the_recipe_is_one_line(run_cli, testdata, tmp_path, capsys):
    folder = testdata / "reference" / "torchvision"
    # The COCO fixture's categories (ids up to 200) are not labels of a 4-class file.
    settings = [*_detection_settings()[:-4], "data.source=coco", f"data.root={(testdata / 'coco').as_posix()}",
                "data.coco_test_json=instances.json", "data.coco_test_images=images", "data.max_side=96",
                "data.short_side=96"]
    assert run_cli(["transfer", "import-weights", "coco_faster_rcnn_resnet50_fpn_torchvision",
                    folder / "fasterrcnn_resnet50_fpn.pth", *_sets(settings), "--out", tmp_path / "run"]) == 2
    error = capsys.readouterr().err.strip()
    assert "torchvision's file has labels 1..4" in error and "\n" not in error


def test_coco_classes_take_their_category_ids(testdata):
    config = reference_recipe([f"data.root={(testdata / 'coco').as_posix()}", "data.coco_test_json=instances.json",
                               "data.coco_test_images=images"])
    names, label_ids = _object_classes(config)
    assert len(names) == len(label_ids) == 133 and label_ids == sorted(label_ids) and label_ids[0] == 1


def test_imported_fcn_weights_give_torchvisions_logits_and_predict(run_cli, testdata, tmp_path):
    from kresnet.transfer.segmentation.commands import _load_segmenter
    from kresnet.transfer.segmentation.config import load_segmentation_recipe
    from kresnet.bundled_recipes import resolve_recipe

    folder = testdata / "reference" / "torchvision"
    names = ",".join(f'"{name}"' for name in SEGMENTATION_CLASSES)
    settings = ["model.stage_widths=[4,8,16,32]", f"data.class_names=[{names}]", "eval.size=64"]
    out = tmp_path / "run"
    assert run_cli(["transfer", "import-weights", "voc_fcn_resnet50_torchvision", folder / "fcn_resnet50.pth",
                    *_sets(settings), "--out", out]) == 0
    assert json.loads((out / "classes.json").read_text()) == SEGMENTATION_CLASSES
    config = load_segmentation_recipe(resolve_recipe("voc_fcn_resnet50_torchvision", folder="transfer"), settings)
    model = _load_segmenter(config, out / "model.weights.h5", len(SEGMENTATION_CLASSES))
    outputs = np.load(folder / "fcn_resnet50_outputs.npz")
    logits = ops.convert_to_numpy(model(outputs["42x58_images"].astype("float32"), training=False)["logits"])
    expected = outputs["42x58_logits"]
    assert np.abs(logits - expected).max() <= 1e-4 * np.abs(expected).max()
    photo = tmp_path / "photo.jpg"
    shutil.copy(sorted((testdata / "coco" / "images").glob("*.jpg"))[0], photo)
    assert run_cli(["transfer", "predict", "voc_fcn_resnet50_torchvision", photo, *_sets(settings), "--out", out]) == 0
    assert (out / "predictions" / "photo_overlay.png").is_file()


@pytest.mark.parametrize("recipe", ["voc_fcn_resnet50_torchvision"])
def test_an_fcn_file_of_other_classes_than_the_recipe_is_one_line(run_cli, testdata, tmp_path, capsys, recipe):
    folder = testdata / "reference" / "torchvision"
    # The recipe's VOC data has 21 classes; the file has 3.
    assert run_cli(["transfer", "import-weights", recipe, folder / "fcn_resnet50.pth", "--set",
                    "model.stage_widths=[4,8,16,32]", "--out", tmp_path / "run"]) == 2
    error = capsys.readouterr().err.strip()
    assert "an FCN of 3 classes, but the recipe's data has 21" in error and "\n" not in error
