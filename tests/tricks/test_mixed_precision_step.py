"""Audit of a `mixed_bfloat16` training step, in the program each backend actually runs.

Counts every convolution of the step (forward and gradients) by dtype, and the BatchNorm
batch statistics by dtype: the mean reductions over batch, height and width of Keras' generic
layer (JAX), or the batch mean and variance outputs of the fused kernel (PyTorch's
`native_batch_norm`, TensorFlow's `FusedBatchNormV3`; see kresnet/models/fused_batch_norm.py).
Convolutions must run in bfloat16 and the statistics in float32, as the policy promises.
JAX: the jaxpr of `train_step`; TensorFlow: the ops of `train_step`'s concrete graph;
PyTorch: the aten ops dispatched while one step runs (autograd's backward included).
"""

import keras
import numpy as np
import pytest

from kresnet.classification.build import build_classifier
from tests.training_helpers import NUM_CLASSES, SIZE, tiny_recipe

STATISTICS_AXES = (0, 1, 2)  # batch, height, width of channels_last activations


def _jax_ops(model, x, y):
    import jax

    state = tuple([v.value for v in variables] for variables in (
        model.trainable_variables, model.non_trainable_variables, model.optimizer.variables, model.metrics_variables))
    jaxpr = jax.make_jaxpr(model.train_step)(state, (x, y)).jaxpr

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            name, operand = eqn.primitive.name, eqn.invars[0].aval
            if name == "conv_general_dilated":
                yield "conv", str(operand.dtype)
            elif name == "reduce_sum" and operand.ndim == 4 and tuple(eqn.params["axes"]) == STATISTICS_AXES:
                yield "statistic", str(operand.dtype)
            for value in eqn.params.values():
                for item in value if isinstance(value, (list, tuple)) else [value]:
                    inner = getattr(item, "jaxpr", item)
                    if hasattr(inner, "eqns"):
                        yield from walk(inner)

    return list(walk(jaxpr))


def _tensorflow_ops(model, x, y):
    import tensorflow as tf

    spec = (tf.TensorSpec(x.shape, tf.float32), tf.TensorSpec(y.shape, tf.float32))
    graph = tf.function(model.train_step).get_concrete_function(spec).graph
    found = []
    for op in graph.get_operations():
        if op.type in ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"):
            found.append(("conv", op.get_attr("T").name))
        elif op.type == "FusedBatchNormV3" and op.get_attr("is_training"):
            found += [("statistic", output.dtype.name) for output in op.outputs[1:3]]
        elif op.type in ("Mean", "Sum") and op.inputs[0].shape.rank == 4 and op.inputs[1].op.type == "Const":
            axes = tuple(tf.make_ndarray(op.inputs[1].op.get_attr("value")).reshape(-1).tolist())
            if axes == STATISTICS_AXES:
                found.append(("statistic", op.get_attr("T").name))
    return found


def _torch_ops(model, x, y):
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    found = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name, operand = func.overloadpacket.__name__, args[0] if args else None
            if name == "native_batch_norm" and (kwargs or {}).get("training", args[5] if len(args) > 5 else False):
                outputs = func(*args, **(kwargs or {}))
                found.extend(("statistic", str(output.dtype).removeprefix("torch.")) for output in outputs[1:3])
                return outputs
            if name in ("convolution", "convolution_backward"):
                found.append(("conv", str(operand.dtype).removeprefix("torch.")))
            elif name in ("mean", "sum") and isinstance(operand, torch.Tensor) and operand.ndim == 4 and len(args) > 1:
                if tuple(sorted(d % 4 for d in args[1])) == STATISTICS_AXES:
                    found.append(("statistic", str(operand.dtype).removeprefix("torch.")))
            return func(*args, **(kwargs or {}))

    with Record():
        model.train_on_batch(x, y)
    return found


@pytest.fixture
def bfloat16_policy():
    keras.config.set_dtype_policy("mixed_bfloat16")
    yield
    keras.config.set_dtype_policy("float32")


def test_a_mixed_bfloat16_step_convolves_in_bfloat16_with_float32_batch_statistics(bfloat16_policy):
    model = build_classifier(tiny_recipe().model, SIZE)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(4, SIZE, SIZE, 3)).astype("float32")
    y = np.eye(NUM_CLASSES, dtype="float32")[[0, 1, 2, 3]]
    model.train_on_batch(x, y)  # builds the optimizer and metric variables the traced step reads
    layers = list(model._flatten_layers())
    convolutions = sum(isinstance(layer, keras.layers.Conv2D) for layer in layers)
    batch_norms = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in layers)
    assert convolutions >= 10 and batch_norms >= 10
    found = {"jax": _jax_ops, "tensorflow": _tensorflow_ops, "torch": _torch_ops}[keras.backend.backend()](model, x, y)
    conv_dtypes = [dtype for kind, dtype in found if kind == "conv"]
    statistic_dtypes = [dtype for kind, dtype in found if kind == "statistic"]
    # Forward, plus the weight gradient of every convolution (input gradients: all but the stem's).
    assert len(conv_dtypes) >= 2 * convolutions, (len(conv_dtypes), convolutions)
    assert set(conv_dtypes) == {"bfloat16"}, sorted(set(conv_dtypes))
    # Mean and mean of squares (generic), or mean and variance (fused), per BatchNorm in the forward pass.
    assert len(statistic_dtypes) >= 2 * batch_norms, (len(statistic_dtypes), batch_norms)
    assert set(statistic_dtypes) == {"float32"}, sorted(set(statistic_dtypes))
