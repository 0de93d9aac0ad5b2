"""Label smoothing targets, the paper's distillation loss against hand-computed values, the distillation model."""

import math

import keras
import numpy as np
import pytest

from kresnet.tricks.distillation import DistillationModel
from kresnet.tricks.losses import classification_loss, distillation_loss, label_smoothing_loss, smooth_labels


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_label_smoothed_targets():
    targets = np.eye(4, dtype="float32")[[0, 3]]
    smoothed = _np(smooth_labels(targets, 0.1))
    np.testing.assert_allclose(smoothed[0], [0.925, 0.025, 0.025, 0.025], rtol=1e-6)
    np.testing.assert_allclose(smoothed.sum(-1), [1.0, 1.0], rtol=1e-6)
    logits = np.array([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, 0.4]], "float32")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -(smoothed * log_probs).sum(-1).mean()
    assert float(_np(classification_loss(0.1)(targets, logits))) == pytest.approx(expected, rel=1e-5)



def _timm_label_smoothing_cross_entropy(logits, target, smoothing):
    """timm.loss.LabelSmoothingCrossEntropy.forward transcribed to NumPy (integer targets)."""
    logprobs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll_loss = -logprobs[np.arange(len(target)), target]
    smooth_loss = -logprobs.mean(-1)
    return ((1.0 - smoothing) * nll_loss + smoothing * smooth_loss).mean()


@pytest.mark.parametrize("shape", [(5,), (5, 1)])
def test_label_smoothing_loss_takes_integer_targets_like_timm(shape):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(5, 7)).astype("float32")
    target = rng.integers(0, 7, 5)
    loss = label_smoothing_loss(0.1)
    expected = _timm_label_smoothing_cross_entropy(logits, target, 0.1)
    assert float(_np(loss(target.reshape(shape), logits))) == pytest.approx(expected, rel=1e-5)
    assert float(_np(loss(np.eye(7, dtype="float32")[target], logits))) == pytest.approx(expected, rel=1e-5)


def test_label_smoothing_loss_trains_from_integer_labels_and_saves():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="sgd", loss=label_smoothing_loss(0.1))
    rng = np.random.default_rng(0)
    history = model.fit(rng.normal(size=(16, 4)).astype("float32"), rng.integers(0, 3, 16), batch_size=8, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    clone = keras.losses.deserialize(keras.losses.serialize(model.loss))
    assert float(_np(clone(np.array([2]), np.zeros((1, 3), "float32")))) == pytest.approx(math.log(3), rel=1e-6)


def test_distillation_loss_hand_computed():
    # Uniform student and teacher over 2 classes, p = [1, 0], T = 2:
    # CE(p, softmax(z)) = ln 2 and T^2 * CE([.5, .5], [.5, .5]) = 4 ln 2, total 5 ln 2.
    zeros = np.zeros((1, 2), "float32")
    loss = distillation_loss(np.array([[1.0, 0.0]], "float32"), zeros, zeros, temperature=2.0)
    assert float(_np(loss)) == pytest.approx(5 * math.log(2), rel=1e-6)


def _ce(targets, logits):
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -(targets * log_probs).sum(-1).mean()


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_distillation_loss_matches_numpy_formula_with_mixed_smoothed_targets():
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(3, 5)).astype("float32"), rng.normal(size=(3, 5)).astype("float32") * 3
    targets = 0.7 * np.eye(5)[[0, 1, 2]] + 0.3 * np.eye(5)[[4, 4, 0]]  # mixup targets
    T, eps = 20.0, 0.1
    expected = _ce(targets * (1 - eps) + eps / 5, student) + T**2 * _ce(_softmax(teacher / T), student / T)
    loss = distillation_loss(targets.astype("float32"), student, teacher, temperature=T, label_smoothing=eps)
    assert float(_np(loss)) == pytest.approx(expected, rel=1e-5)


def test_distillation_model_trains_student_and_freezes_teacher():
    def dense_model(seed):
        inputs = keras.Input((6,))
        hidden = keras.layers.Dense(8, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed))(inputs)
        return keras.Model(inputs, keras.layers.Dense(3)(hidden))

    student, teacher = dense_model(1), dense_model(2)
    teacher_before = [_np(w).copy() for w in teacher.weights]
    model = DistillationModel(student, teacher, temperature=4.0, label_smoothing=0.1)
    model.compile(optimizer=keras.optimizers.SGD(0.05), metrics=[keras.metrics.CategoricalAccuracy(name="top1")])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 64)]
    first = model.evaluate(x, y, verbose=0, return_dict=True)
    # Before training, the training loss equals the formula on the current student and teacher.
    expected = distillation_loss(y, student(x), teacher(x), 4.0, 0.1)
    assert float(_np(model.compute_loss(x, y, model(x), training=True))) == pytest.approx(float(_np(expected)), rel=1e-5)
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert len(model.trainable_variables) == len(student.trainable_variables)
    for before, after in zip(teacher_before, teacher.weights):
        np.testing.assert_array_equal(before, _np(after))
    assert "top1" in first and first["loss"] > 0


def test_docstring_states_how_far_keras_smoothing_is_from_the_papers_formula():
    """The paper's text: q = 1 - eps for the true class, eps / (K - 1) for the others; Keras/GluonCV: y (1 - eps) + eps / K."""
    import kresnet.tricks.losses as losses

    eps, classes = 0.1, 1000
    ours = _np(smooth_labels(np.eye(classes, dtype="float32")[:1], eps))[0].astype("float64")
    papers = np.full(classes, eps / (classes - 1))
    papers[0] = 1 - eps
    assert abs(ours[0] - papers[0]) == pytest.approx(1e-4, rel=1e-3)  # true class: eps / K
    assert np.abs(ours[1:] - papers[1:]).max() == pytest.approx(1e-7, rel=1e-2)  # others: eps / (K (K - 1))
    doc = " ".join(losses.__doc__.split())
    assert "true class" in doc and "1e-4" in doc and "1e-7" in doc
