"""pixAcc / IoU against a NumPy loop reference, hand-computed cases and Keras' MeanIoU."""

import keras
import numpy as np

from kresnet.transfer.segmentation.metrics import ConfusionMatrix, confusion_matrix


def _reference_scores(labels, predictions, num_classes, ignore_label=255):
    """Direct per-class counting, independent of the confusion-matrix code."""
    labels, predictions = labels.ravel(), predictions.ravel()
    keep = labels != ignore_label
    labels, predictions = labels[keep], predictions[keep]
    pixel_accuracy = np.mean(labels == predictions)
    ious = []
    for c in range(num_classes):
        intersection = np.sum((labels == c) & (predictions == c))
        union = np.sum((labels == c) | (predictions == c))
        ious.append(intersection / union if union else np.nan)
    return pixel_accuracy, np.array(ious)


def test_random_batches_match_reference():
    rng = np.random.default_rng(1)
    num_classes = 7
    metric = ConfusionMatrix(num_classes)
    all_labels, all_predictions = [], []
    for _ in range(3):
        labels = rng.integers(0, num_classes, size=(2, 9, 11))
        labels[rng.random(labels.shape) < 0.2] = 255
        predictions = rng.integers(0, num_classes - 1, size=labels.shape)  # never predicts class 6
        metric.update(labels, predictions)
        all_labels.append(labels)
        all_predictions.append(predictions)
    accuracy, ious = _reference_scores(np.concatenate(all_labels), np.concatenate(all_predictions), num_classes)
    np.testing.assert_allclose(metric.pixel_accuracy(), accuracy)
    np.testing.assert_allclose(metric.class_iou(), ious)
    np.testing.assert_allclose(metric.mean_iou(), np.nanmean(ious))
    assert metric.class_iou()[6] == 0.0  # present in the truth, never predicted: IoU 0, counted


def test_hand_built_case_with_ignore_and_absent_class():
    labels = np.array([[0, 0, 1, 255], [1, 1, 255, 255]])
    predictions = np.array([[0, 1, 1, 2], [1, 0, 3, 3]])  # predictions under ignore do not count
    counts = confusion_matrix(labels, predictions, num_classes=4)
    np.testing.assert_array_equal(counts, [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    metric = ConfusionMatrix(4)
    metric.update(labels, predictions)
    assert metric.pixel_accuracy() == 3 / 5
    # class 0: I=1, U=1+2+... = |{true 0} U {pred 0}| = 3; class 1: I=2, U=4; classes 2, 3 absent.
    np.testing.assert_allclose(metric.class_iou()[:2], [1 / 3, 2 / 4])
    assert np.isnan(metric.class_iou()[2:]).all()
    assert metric.mean_iou() == (1 / 3 + 2 / 4) / 2
    summary = metric.summary(["a", "b", "c", "d"])
    assert summary["class_iou"]["c"] is None and summary["pixels"] == 5


def test_perfect_prediction_and_nothing_labelled():
    labels = np.array([[2, 2], [0, 255]])
    metric = ConfusionMatrix(3)
    metric.update(labels, np.where(labels == 255, 1, labels))
    assert metric.pixel_accuracy() == 1.0 and metric.mean_iou() == 1.0
    empty = ConfusionMatrix(3)
    empty.update(np.full((2, 2), 255), np.zeros((2, 2)))
    assert np.isnan(empty.pixel_accuracy()) and np.isnan(empty.mean_iou())


def test_agrees_with_keras_mean_iou_on_logits():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, size=(2, 8, 8))
    labels[:, :2] = 255
    logits = rng.normal(size=(2, 8, 8, 5)).astype("float32")
    keras_metric = keras.metrics.MeanIoU(num_classes=5, ignore_class=255, sparse_y_pred=False)
    keras_metric.update_state(labels, logits)
    metric = ConfusionMatrix(5)
    metric.update(labels, logits.argmax(-1))
    np.testing.assert_allclose(float(keras_metric.result()), metric.mean_iou(), rtol=1e-6)


def _gluoncv_miou(labels, predictions, num_classes):
    """GluonCV's `batch_intersection_union` + `SegmentationMetric.get` (labels shifted by one, 0 = ignore)."""
    target = np.where(labels == 255, -1, labels).astype("int64") + 1
    predict = predictions.astype("int64") + 1
    predict = predict * (target > 0).astype(predict.dtype)
    intersection = predict * (predict == target)
    area_inter, _ = np.histogram(intersection, bins=num_classes, range=(1, num_classes))
    area_pred, _ = np.histogram(predict, bins=num_classes, range=(1, num_classes))
    area_lab, _ = np.histogram(target, bins=num_classes, range=(1, num_classes))
    area_union = area_pred + area_lab - area_inter
    return (1.0 * area_inter / (np.spacing(1) + area_union)).mean()


def test_all_classes_convention_equals_gluoncv_and_differs_when_a_class_is_absent():
    rng = np.random.default_rng(3)
    for case in range(20):
        num_classes = int(rng.integers(3, 9))
        labels = rng.integers(0, num_classes - 1, size=(12, 10))  # the last class never in the truth...
        labels[rng.random(labels.shape) < 0.1] = 255
        predictions = rng.integers(0, num_classes - 1 - case % 2, size=labels.shape)  # ...nor predicted
        metric = ConfusionMatrix(num_classes)
        metric.update(labels, predictions)
        assert metric.mean_iou("all_classes") == _gluoncv_miou(labels, predictions, num_classes)
        assert metric.mean_iou("present_classes") == np.nanmean(metric.class_iou())
        assert metric.mean_iou("all_classes") < metric.mean_iou("present_classes")
        assert metric.summary(None, "all_classes")["mean_iou_convention"] == "all_classes"


def test_table9_recipes_score_as_gluoncv_and_others_as_mmsegmentation():
    from kresnet.bundled_recipes import BUNDLED_RECIPES
    from kresnet.transfer.segmentation.config import load_segmentation_recipe

    recipes = BUNDLED_RECIPES / "transfer"
    table9 = sorted(recipes.glob("ade20k_*.toml"))
    assert len(table9) == 8  # the 7 rows of Table 9 and the start from resnet50d.gluon_in1k
    assert {load_segmentation_recipe(path).eval.mean_iou for path in table9} == {"all_classes"}
    assert load_segmentation_recipe(recipes / "demo_segment.toml").eval.mean_iou == "present_classes"
