"""NAG with coupled L2: a recorded gradient sequence replayed against a NumPy transcription of
`torch.optim.SGD(nesterov=True, weight_decay)` under a changing rate, and the decay switches."""

import keras
import numpy as np
import pytest

from kresnet.tricks.optimizer import NesterovL2SGD
from kresnet.tricks.schedules import WarmupStepDecay

MOMENTUM, L2 = 0.9, 1e-2
# Warmup from 0 over 4 steps to 0.2, then /10 at step 7: the rate changes at almost every step.
SCHEDULE = WarmupStepDecay(base_lr=0.2, warmup_steps=4, boundaries=[7], factor=0.1)
STEPS = 10


def _torch_sgd_reference(params, grads_per_step, learning_rates, momentum, weight_decay, decayed, nesterov=True):
    """torch.optim.SGD.step (dampening 0) transcribed to float32 NumPy, one list entry per parameter."""
    params = [p.copy() for p in params]
    buffers = [None] * len(params)
    for grads, lr in zip(grads_per_step, learning_rates):
        lr = np.float32(lr)
        for i, grad in enumerate(grads):
            d_p = grad + np.float32(weight_decay) * params[i] if decayed[i] else grad
            buffers[i] = d_p.copy() if buffers[i] is None else np.float32(momentum) * buffers[i] + d_p
            d_p = d_p + np.float32(momentum) * buffers[i] if nesterov else buffers[i]
            params[i] = params[i] - lr * d_p
    return params


def _keras_sgd_velocity_rule(params, grads_per_step, learning_rates, momentum, weight_decay):
    """The rule the previous NesterovL2SGD inherited from Keras' SGD (lr-scaled velocity)."""
    params, velocities = [p.copy() for p in params], [np.zeros_like(p) for p in params]
    for grads, lr in zip(grads_per_step, learning_rates):
        for i, grad in enumerate(grads):
            grad = grad + weight_decay * params[i]
            velocities[i] = momentum * velocities[i] - lr * grad
            params[i] = params[i] + momentum * velocities[i] - lr * grad
    return params


def _recorded_sequence():
    rng = np.random.default_rng(7)
    params = [rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
    grads = [[rng.normal(size=p.shape).astype("float32") for p in params] for _ in range(STEPS)]
    learning_rates = [float(keras.ops.convert_to_numpy(SCHEDULE(step))) for step in range(STEPS)]
    return params, grads, learning_rates


def _replay(optimizer, params, grads, scale=1.0):
    variables = [keras.Variable(p) for p in params]
    for step_grads in grads:
        optimizer.apply([keras.ops.convert_to_tensor(g * np.float32(scale)) for g in step_grads], variables)
    return [keras.ops.convert_to_numpy(v) for v in variables]


def _stateless_replay(optimizer, params, grads, scale):
    """The way `fit` drives an optimizer on JAX (Keras' LossScaleOptimizer has no eager stateful
    path on JAX, and no stateless one on TensorFlow)."""
    variables = [keras.Variable(p) for p in params]
    optimizer.build(variables)
    values, state = [v.value for v in variables], [v.value for v in optimizer.variables]
    for step_grads in grads:
        scaled = [keras.ops.convert_to_tensor(g * np.float32(scale)) for g in step_grads]
        values, state = optimizer.stateless_apply(state, scaled, values)
    return [keras.ops.convert_to_numpy(v) for v in values]


@pytest.mark.parametrize("no_bias_decay", [False, True])
def test_replay_with_changing_rate_equals_torch_sgd(no_bias_decay):
    params, grads, learning_rates = _recorded_sequence()
    assert learning_rates[0] == 0.0 and learning_rates[7] == pytest.approx(0.02)
    optimizer = NesterovL2SGD(learning_rate=SCHEDULE, momentum=MOMENTUM, l2=L2, no_bias_decay=no_bias_decay)
    got = _replay(optimizer, params, grads)
    expected = _torch_sgd_reference(params, grads, learning_rates, MOMENTUM, L2, decayed=[True, not no_bias_decay])
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)
    # The reference tells the two momentum conventions apart on this sequence.
    old = _keras_sgd_velocity_rule(params, grads, learning_rates, MOMENTUM, L2)
    assert np.abs(old[0] - expected[0]).max() > 1e-2


def test_plain_momentum_without_nesterov_equals_torch_sgd():
    params, grads, learning_rates = _recorded_sequence()
    optimizer = NesterovL2SGD(learning_rate=SCHEDULE, momentum=MOMENTUM, nesterov=False, l2=L2)
    got = _replay(optimizer, params, grads)
    expected = _torch_sgd_reference(params, grads, learning_rates, MOMENTUM, L2, decayed=[True, True], nesterov=False)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)


def test_replay_under_loss_scaling_equals_torch_sgd():
    """Keras' LossScaleOptimizer (what compile(auto_scale_loss=True) adds under mixed_float16)
    unscales before the update, so the update is unchanged."""
    params, grads, learning_rates = _recorded_sequence()
    inner = NesterovL2SGD(learning_rate=SCHEDULE, momentum=MOMENTUM, l2=L2, no_bias_decay=True)
    optimizer = keras.optimizers.LossScaleOptimizer(inner, initial_scale=1024.0, dynamic_growth_steps=1000)
    replay = _stateless_replay if keras.backend.backend() == "jax" else _replay
    got = replay(optimizer, params, grads, scale=1024.0)
    expected = _torch_sgd_reference(params, grads, learning_rates, MOMENTUM, L2, decayed=[True, False])
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)


def test_mixed_float16_training_step_matches_float32_step():
    """Real `fit` steps under mixed_float16 with loss scaling move the float32 weights as float32 training does.

    The initial scale is small enough that no step overflows in float16 (an overflowing step is
    skipped by design, which would make the runs differ for a reason unrelated to the optimizer).
    """
    def run(policy):
        keras.config.set_dtype_policy(policy)
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Activation("linear", dtype="float32")])
        optimizer = NesterovL2SGD(learning_rate=SCHEDULE, l2=L2, no_bias_decay=True)
        if policy == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=64.0)
        model.compile(optimizer=optimizer, loss="mse")
        x = np.linspace(-1, 1, 24, dtype="float32").reshape(8, 3)
        model.fit(x, np.ones((8, 2), "float32"), batch_size=4, epochs=3, verbose=0, shuffle=False)
        return keras.ops.convert_to_numpy(model.layers[0].kernel), model.optimizer
    full, _ = run("float32")
    half, optimizer = run("mixed_float16")
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    np.testing.assert_allclose(half, full, atol=5e-3)
    assert np.abs(half).max() > 0


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


def test_user_predicate_replaces_the_rank_rule():
    model = _tiny_model()
    optimizer = NesterovL2SGD(l2=1e-4, no_bias_decay=True, no_decay=lambda v: "bn" in v.path)
    decayed = {v.path for v in model.trainable_variables if optimizer.decays(v)}
    assert decayed == {model.get_layer("dense").kernel.path, model.get_layer("dense").bias.path}


def test_refuses_decoupled_weight_decay_and_round_trips_config():
    with pytest.raises(ValueError, match="weight_decay"):
        NesterovL2SGD(weight_decay=1e-4)
    optimizer = NesterovL2SGD(learning_rate=0.05, l2=3e-4, no_bias_decay=True)
    clone = NesterovL2SGD.from_config(optimizer.get_config())
    assert clone.l2 == pytest.approx(3e-4) and clone.no_bias_decay and clone.nesterov and clone.momentum == 0.9


@pytest.mark.parametrize("exclude", [{"var_names": ["kernel"]}, {"var_list": "first"}])
def test_keras_exclude_from_weight_decay_is_honoured(exclude):
    """`optimizer.exclude_from_weight_decay(...)`, Keras' own API, exempts the variables it names from the L2 term."""
    params, grads, learning_rates = _recorded_sequence()
    variables = [keras.Variable(params[0], name="kernel"), keras.Variable(params[1], name="scale")]
    optimizer = NesterovL2SGD(learning_rate=SCHEDULE, momentum=MOMENTUM, l2=L2)
    optimizer.exclude_from_weight_decay(**({"var_list": variables[:1]} if exclude.get("var_list") else exclude))
    for step_grads in grads:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in step_grads], variables)
    expected = _torch_sgd_reference(params, grads, learning_rates, MOMENTUM, L2, decayed=[False, True])
    for variable, e in zip(variables, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), e, rtol=1e-6, atol=1e-6)
    decayed_anyway = _torch_sgd_reference(params, grads, learning_rates, MOMENTUM, L2, decayed=[True, True])
    assert np.abs(decayed_anyway[0] - expected[0]).max() > 1e-4


def test_excluded_kernel_keeps_its_value_in_real_training_steps():
    model = _tiny_model()
    optimizer = NesterovL2SGD(learning_rate=0.1, momentum=0.0, nesterov=False, l2=0.1, no_bias_decay=True)
    optimizer.exclude_from_weight_decay(var_names=["dense"])
    model.compile(optimizer=optimizer, loss=_zero_gradient_loss)
    kernel = model.get_layer("dense").kernel
    before = keras.ops.convert_to_numpy(kernel).copy()
    model.fit(np.ones((8, 3), "float32"), np.zeros((8, 4), "float32"), batch_size=8, epochs=2, verbose=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(kernel), before)
    assert not optimizer.decays(kernel)
