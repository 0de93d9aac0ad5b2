"""Time one BatchNorm training step (forward and gradients) on JAX: Keras' generic ops vs a closed-form gradient.

    python tools/time_jax_batch_norm.py --rounds 60

The question of issue 27: does JAX need a fused BatchNorm, as PyTorch and TensorFlow do
(kresnet/models/fused_batch_norm.py)? JAX has no fused BatchNorm kernel to call; the candidate is
the arithmetic those kernels do, a forward that keeps the normalised input and a hand-written
backward (`jax.custom_vjp`), against Keras' `ops.moments` + `ops.batch_normalization`, which XLA
fuses and differentiates itself. Both are jitted and timed in alternating rounds on ResNet-50
activation shapes (batch 16, 128 px input); the median ratio is printed with the largest gradient
difference. This times BatchNorm alone; inside a network XLA also fuses it with its neighbours
(ReLU, the residual add), which a custom gradient can block, so a ratio here is an upper bound of
the gain in a training step.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

EPSILON = 1e-5
AXES = (0, 1, 2)
SHAPES = [(16, 32, 32, 64), (16, 32, 32, 256), (16, 8, 8, 1024)]  # stage 1 conv1/conv3, stage 3 of ResNet-50


def generic(x, gamma, beta):
    mean, variance = keras.ops.moments(x, axes=list(AXES))
    return keras.ops.batch_normalization(x, mean, variance, axis=-1, offset=beta, scale=gamma, epsilon=EPSILON)


@jax.custom_vjp
def closed_form(x, gamma, beta):
    return _closed_form_forward(x, gamma, beta)[0]


def _closed_form_forward(x, gamma, beta):
    mean, variance = jnp.mean(x, axis=AXES), jnp.var(x, axis=AXES)
    inverse_std = jax.lax.rsqrt(variance + EPSILON)
    normalised = (x - mean) * inverse_std
    return normalised * gamma + beta, (normalised, inverse_std, gamma)


def _closed_form_backward(saved, upstream):
    normalised, inverse_std, gamma = saved
    count = normalised.shape[0] * normalised.shape[1] * normalised.shape[2]
    beta_gradient = jnp.sum(upstream, axis=AXES)
    gamma_gradient = jnp.sum(upstream * normalised, axis=AXES)
    x_gradient = gamma * inverse_std / count * (count * upstream - beta_gradient - normalised * gamma_gradient)
    return x_gradient, gamma_gradient, beta_gradient


closed_form.defvjp(_closed_form_forward, _closed_form_backward)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        x, upstream = (jnp.asarray(rng.normal(size=shape).astype("float32")) for _ in range(2))
        gamma, beta = jnp.ones(shape[-1]), jnp.zeros(shape[-1])
        steps = {
            name: jax.jit(jax.grad(lambda x, g, b, u, f=f: jnp.sum(f(x, g, b) * u), argnums=(0, 1, 2)))
            for name, f in (("generic", generic), ("closed_form", closed_form))
        }
        results = {name: step(x, gamma, beta, upstream) for name, step in steps.items()}
        difference = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(*results.values()))
        times = {name: [] for name in steps}
        for round_index in range(args.rounds):
            for name in list(steps)[:: 1 if round_index % 2 else -1]:
                start = time.perf_counter()
                jax.block_until_ready(steps[name](x, gamma, beta, upstream))
                times[name].append(time.perf_counter() - start)
        median = {name: statistics.median(values) for name, values in times.items()}
        print(f"{shape}: generic {1000 * median['generic']:.2f} ms, closed form {1000 * median['closed_form']:.2f} ms, "
              f"closed/generic {median['closed_form'] / median['generic']:.2f}, max |gradient difference| {difference:.1e}")


if __name__ == "__main__":
    main()
