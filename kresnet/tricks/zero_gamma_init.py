"""Zero-gamma for any functional Keras ResNet, found from the graph rather than from layer names.

A residual block ends in `Add(shortcut, residual)`. Walking each input of the Add back
along single-input layers until the two walks meet gives the block input; the branch
with more convolutions on the way is the residual one (the shortcut has none, or one
1x1 projection), and the first BatchNormalization on it, seen from the Add, is the
branch's last BN. Works the same on kresnet's models, keras-hub's `ResNetBackbone` and
a user's functional ResNet, nested models included.
"""

import keras
import numpy as np

from kresnet.errors import UserError


def _functional_graphs(model):
    """`model` and every nested functional model, as the Functional objects that hold the graph."""
    graphs, pending = [], [model]
    while pending:
        current = pending.pop()
        if isinstance(current, keras.Sequential):
            current = getattr(current, "_functional", None) or current
        if hasattr(current, "_operations") and hasattr(current, "_nodes_by_depth"):
            graphs.append(current)
        pending.extend(layer for layer in getattr(current, "layers", []) if isinstance(layer, keras.Model))
    return graphs


def _walk_back(tensor):
    """[(tensor, layer that produced it), ...] from `tensor` back along single-input layers."""
    path = []
    while True:
        operation, node_index, _ = tensor._keras_history
        path.append((tensor, operation))
        inputs = operation._inbound_nodes[node_index].input_tensors
        if len(inputs) != 1:
            return path
        tensor = inputs[0]


def _is_conv_or_dense(layer):
    return isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.DepthwiseConv2D, keras.layers.Dense))


def _residual_last_batchnorm(add_node):
    """The last BN of the residual branch feeding this Add, or None when the block has none."""
    inputs = add_node.input_tensors
    if len(inputs) != 2:
        return None
    paths = [_walk_back(t) for t in inputs]
    ids = [[id(t) for t, _ in p] for p in paths]
    meeting = next((i for i in ids[0] if i in set(ids[1])), None)
    if meeting is None:
        return None
    branches = [p[: i.index(meeting)] for p, i in zip(paths, ids)]
    convs = [sum(_is_conv_or_dense(layer) for _, layer in b) for b in branches]
    if convs[0] == convs[1]:
        return None
    residual = branches[int(np.argmax(convs))]
    for _, layer in residual:
        if isinstance(layer, keras.layers.BatchNormalization):
            return layer if layer.scale else None
        if _is_conv_or_dense(layer):
            return None
    return None


def residual_batchnorms(model):
    """The last BatchNormalization of every residual branch of `model`, in graph order."""
    found = []
    for graph in _functional_graphs(model):
        for layer in graph._operations:
            if not isinstance(layer, keras.layers.Add):
                continue
            for node in layer._inbound_nodes:
                batchnorm = _residual_last_batchnorm(node)
                if batchnorm is not None and all(batchnorm is not f for f in found):
                    found.append(batchnorm)
    return found


def zero_gamma(model, verbose=False):
    """Zero-gamma (paper section 3.1): gamma = 0 in the last BN of every residual block.

    A block computes x + block(x) with block(x) ending in BN(z) = gamma * z_hat + beta;
    with gamma = 0 every block starts as the identity, x -> x + beta (beta is 0 at init),
    so the network behaves as a shallower one early in training.

    Args:
        model: a built functional Keras model (kresnet's, keras-hub's `ResNetBackbone`,
            a task model around it, or your own) whose residual blocks end in `Add`.
        verbose: bool. Print what was changed.

    Returns:
        The names of the BatchNormalization layers whose gamma was set to 0.

    Example:
        backbone = keras_hub.models.ResNetBackbone(...)
        changed = zero_gamma(backbone)   # ["stack0_block0_3_bn", ...]
    """
    if not getattr(model, "built", False) or not _functional_graphs(model):
        raise UserError(f"zero_gamma: {getattr(model, 'name', model)!r} is not a built functional Keras model (expected a ResNet built with keras.Input)")
    batchnorms = residual_batchnorms(model)
    if not batchnorms:
        raise UserError(f"zero_gamma: found no residual block ending in BatchNormalization -> Add in model {model.name!r}")
    for batchnorm in batchnorms:
        batchnorm.gamma.assign(keras.ops.zeros(batchnorm.gamma.shape, batchnorm.gamma.dtype))
    names = [b.name for b in batchnorms]
    if verbose:
        print(f"zero_gamma: gamma = 0 in {len(names)} BatchNormalization layers: {', '.join(names)}")
    return names
