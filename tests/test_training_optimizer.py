"""NAG with coupled L2 weight decay: the update against a NumPy reference, and the no-bias-decay switch."""

import keras
import numpy as np
import pytest

from kresnet.training.optimizer import NesterovL2SGD


def _numpy_nag_l2(value, grads, lr, momentum, l2):
    """Keras' Nesterov SGD with g <- g + l2 * v before the momentum update."""
    velocity = np.zeros_like(value)
    for grad in grads:
        grad = grad + l2 * value
        velocity = momentum * velocity - lr * grad
        value = value + momentum * velocity - lr * grad
    return value


def test_update_equals_reference_with_l2_inside_momentum():
    start = np.array([[0.5, -1.0], [2.0, 0.25]], "float32")
    grads = [np.array([[0.1, 0.2], [-0.3, 0.4]], "float32"), np.array([[0.0, -0.1], [0.2, 0.05]], "float32")]
    variable = keras.Variable(start)
    optimizer = NesterovL2SGD(learning_rate=0.1, momentum=0.9, l2=0.01)
    for grad in grads:
        optimizer.apply([keras.ops.convert_to_tensor(grad)], [variable])
    expected = _numpy_nag_l2(start.astype("float64"), grads, 0.1, 0.9, 0.01)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), expected, rtol=1e-5)


def _tiny_model():
    inputs = keras.Input((3,))
    x = keras.layers.Dense(4, name="dense")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    return keras.Model(inputs, x)


def _zero_gradient_loss(y_true, y_pred):
    return keras.ops.sum(y_pred) * 0.0


@pytest.mark.parametrize("no_bias_decay", [True, False])
def test_no_bias_decay_in_real_training_steps(no_bias_decay):
    """With a zero loss gradient only decay moves weights: kernels shrink; biases/BN move iff decayed."""
    model = _tiny_model()
    model.get_layer("dense").bias.assign(np.ones(4, "float32"))
    model.get_layer("bn").beta.assign(np.ones(4, "float32"))
    before = {v.path: keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables}
    optimizer = NesterovL2SGD(learning_rate=0.1, momentum=0.0, nesterov=False, l2=0.1, no_bias_decay=no_bias_decay)
    model.compile(optimizer=optimizer, loss=_zero_gradient_loss)
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 4), "float32")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    for variable in model.trainable_variables:
        after = keras.ops.convert_to_numpy(variable)
        shrunk = before[variable.path] * (1 - 0.1 * 0.1) ** 2
        excluded = no_bias_decay and variable.name in ("bias", "gamma", "beta")
        assert optimizer.decays(variable) == (not excluded), variable.path
        np.testing.assert_allclose(after, before[variable.path] if excluded else shrunk, rtol=1e-5, err_msg=variable.path)


def test_refuses_decoupled_weight_decay_and_round_trips_config():
    with pytest.raises(ValueError, match="weight_decay"):
        NesterovL2SGD(weight_decay=1e-4)
    optimizer = NesterovL2SGD(learning_rate=0.05, l2=3e-4, no_bias_decay=True)
    clone = NesterovL2SGD.from_config(optimizer.get_config())
    assert clone.l2 == pytest.approx(3e-4) and clone.no_bias_decay and clone.nesterov
