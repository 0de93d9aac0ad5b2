"""Training-step and inference throughput of a model on the current Keras backend.

A training step is forward, loss, backward and the optimizer update (kresnet's `NesterovL2SGD`,
as `kresnet train` runs it, without weight decay: the update of timm's step, PyTorch's
`SGD(momentum=0.9, nesterov=True)`), compiled the way `model.fit` compiles it (XLA on JAX and TensorFlow where `jit_compile="auto"` allows).
Warm-up steps (tracing, compilation, autotuning) are excluded and the median step time is
reported, with the best step beside it, so one slow step does not move the number. Several
models in one command are timed in turns, one step each per round, so they share whatever else
the machine is doing; the order changes every round (a balanced Latin square), so no model
always runs first or always follows the same neighbour (the step after another process's often
runs slower). timm's step
(`timm_peer.py`) takes its turn from a worker process.
"""

import contextlib
import dataclasses
import statistics
import time

import numpy as np

# `--vs` peers that are the measured model itself built another way, to time one choice in the same rounds:
# on Keras' generic BatchNorm (`fused_batch_norm=False`), on Keras' own Conv2D and pools (`keras_layers()`), or
# in the other layout.
GENERIC_BATCH_NORM = "generic-bn"
KERAS_LAYERS = "keras-layers"
LAYOUTS = ("channels_last", "channels_first")
SELF_PEERS = (GENERIC_BATCH_NORM, KERAS_LAYERS, *LAYOUTS)


@dataclasses.dataclass
class SpeedResult:
    """One benchmark row."""

    model: str
    backend: str
    dtype: str
    batch: int
    size: int
    train_images_per_s: float
    infer_images_per_s: float
    train_step_ms: float
    infer_step_ms: float
    train_best_images_per_s: float = 0.0
    data_format: str = "channels_last"


def keras_hub_resnet_vd(num_classes, image_size, stage_depths=(3, 4, 6, 3), data_format=None):
    """keras-hub's ResNet-vd (bottleneck_block_vd, deep stem 32-32-64) with an average-pool classifier."""
    import keras
    import keras_hub

    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[32, 32, 64],
        input_conv_kernel_sizes=[3, 3, 3],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=list(stage_depths),
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="bottleneck_block_vd",
        image_shape=(3, image_size, image_size) if data_format == "channels_first" else (image_size, image_size, 3),
        data_format=data_format,
    )
    features = backbone(backbone.input)
    pooled = keras.layers.GlobalAveragePooling2D(data_format=backbone.data_format)(features)
    logits = keras.layers.Dense(num_classes, dtype="float32")(pooled)
    return keras.Model(backbone.input, logits, name="keras_hub_resnet_vd")


def round_orders(count):
    """The order of each round in one cycle: a balanced Latin square (Williams design) over `count` models.

    Over a cycle (`count` rounds, twice that for an odd count) every model runs in every place
    equally often and directly follows every other model equally often, so neither a slow first
    step nor a slow neighbour (e.g. the step right after another process's) favours one model.
    """
    offsets, low, high = [0], 1, count - 1
    while len(offsets) < count:
        offsets.append(low)
        low += 1
        if len(offsets) < count:
            offsets.append(high)
            high -= 1
    orders = [[(offset + shift) % count for offset in offsets] for shift in range(count)]
    return orders + [order[::-1] for order in orders] if count % 2 else orders


def _interleaved_seconds(steps_by_label, warmup, steps):
    """(median, best) seconds per step of each callable, timed in rounds that run every callable once.

    Interleaving spreads any slow period of a shared machine over all models alike,
    so their ratio holds even when the absolute numbers drift between runs. The rounds follow
    `round_orders`, balanced over whole cycles (choose `steps` as a multiple of the cycle).
    """
    for step in steps_by_label.values():
        for _ in range(warmup):
            step()
    labels = list(steps_by_label)
    orders = round_orders(len(labels))
    times = {label: [] for label in labels}
    for round_index in range(steps):
        for index in orders[round_index % len(orders)]:
            start = time.perf_counter()
            steps_by_label[labels[index]]()
            times[labels[index]].append(time.perf_counter() - start)
    return {label: (statistics.median(values), min(values)) for label, values in times.items()}


def measure(models, *, batch, size, steps, warmup, num_classes, external=None, data_format="channels_last",
            jit_compile="auto", layouts=None):
    """Time `train_on_batch` and `predict_on_batch` of compiled copies of `models` ({label: model}), interleaved.

    `layouts` ({label: "channels_first"}) names the models not in `data_format`.

    `external` ({label: object with `train()` and `infer()`}, e.g. a `TimmPeer`, already warmed up)
    takes its turn in the same rounds, after the Keras models.
    """
    import keras

    from kresnet.classification.config import JIT_COMPILE
    from kresnet.tricks.optimizer import NesterovL2SGD

    external = external or {}

    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch, size, size, 3), dtype=np.float32)
    images_by_layout = {"channels_last": images, "channels_first": np.ascontiguousarray(images.transpose(0, 3, 1, 2))}
    labels = np.eye(num_classes, dtype=np.float32)[rng.integers(0, num_classes, batch)]
    layouts = {label: (layouts or {}).get(label, data_format) for label in models}
    for model in models.values():
        model.compile(
            optimizer=NesterovL2SGD(learning_rate=0.01, momentum=0.9, nesterov=True, l2=0.0),
            loss=keras.losses.CategoricalCrossentropy(from_logits=True),
            jit_compile=JIT_COMPILE[jit_compile],
        )
    # Each call returns a host value, so the timing includes the device finishing the step.
    inputs = {label: images_by_layout[layouts[label]] for label in models}
    train_steps = {k: (lambda m=m, x=inputs[k]: m.train_on_batch(x, labels)) for k, m in models.items()}
    infer_steps = {k: (lambda m=m, x=inputs[k]: np.asarray(m.predict_on_batch(x))) for k, m in models.items()}
    train_steps.update({k: peer.train for k, peer in external.items()})
    infer_steps.update({k: peer.infer for k, peer in external.items()})
    train = _interleaved_seconds(train_steps, warmup, steps)
    infer = _interleaved_seconds(infer_steps, warmup, steps)
    return [
        SpeedResult(
            model=label,
            backend=keras.config.backend(),
            dtype=keras.config.dtype_policy().name,
            batch=batch,
            size=size,
            train_images_per_s=batch / train[label][0],
            infer_images_per_s=batch / infer[label][0],
            train_step_ms=1000 * train[label][0],
            infer_step_ms=1000 * infer[label][0],
            train_best_images_per_s=batch / train[label][1],
            data_format=layouts.get(label, "channels_last"),
        )
        for label in (*models, *external)
    ]


def benchmark(
    name, *, batch, size, steps, warmup, dtype, num_classes=1000, stage_depths=None, peers=(), timm_python=None,
    data_format="channels_last", jit_compile="auto",
):
    """Results for kresnet's `name` and each peer, measured in the same process, step by step in turn.

    Args:
        name: str. The kresnet model of the first row.
        peers: sequence of str. "keras-hub" (its ResNet-vd of the same depth), "timm" (timm's
            model of the same name, channels_last, in a worker process run by `timm_python`)
            "generic-bn" (`name` on Keras' generic BatchNorm, `fused_batch_norm=False`, to measure the
            fused kernel), "keras-layers" (`name` on Keras' own Conv2D and pools, to measure
            `kresnet.models.channels_last_layers`), "channels_last"/"channels_first" (`name` in that layout)
            or other kresnet model names (e.g. "resnet50b", to measure ResNet-D's overhead over B).
        timm_python: str or None. The Python that runs timm; None: this one, if it has timm.
        data_format: the Keras models' layout ("channels_last" or "channels_first"); timm always
            runs channels_last, its fastest layout on CPU and GPU.
        jit_compile: "auto", "on" or "off", as the recipe key `train.jit_compile` (XLA on JAX and
            TensorFlow, `torch.compile` on PyTorch; "auto" leaves both off on a TensorFlow CPU and on PyTorch).
        Others: see `kresnet bench model --help`.
    """
    import keras

    from kresnet.models.channels_last_layers import keras_layers
    from kresnet.models.factory import create_model
    from kresnet.models.registry import model_spec

    keras.config.set_dtype_policy(dtype)
    spec = model_spec(name)
    depths = list(stage_depths or spec.stage_depths)
    if "channels_first" in peers:
        from kresnet.classification.build import check_channels_first_supported

        check_channels_first_supported("--vs channels_first")
    models, external, layouts = {}, {}, {}
    try:
        for label in (name, *peers):
            if label == "keras-hub":
                models[f"keras-hub resnet_vd_{spec.depth}"] = keras_hub_resnet_vd(
                    num_classes, size, stage_depths=depths, data_format=data_format
                )
            elif label == "timm":
                external[f"timm {name}"] = _timm_peer(name, stage_depths, timm_python, batch, size, num_classes, warmup)
            else:
                layout = label if label in LAYOUTS else data_format
                shape = [3, size, size] if layout == "channels_first" else [size, size, 3]
                itself = label in SELF_PEERS
                row = f"{name}/{label}" if itself else label
                layouts[row] = layout
                with keras_layers() if label == KERAS_LAYERS else contextlib.nullcontext():
                    models[row] = create_model(
                        name if itself else label, num_classes=num_classes, input_shape=shape, stage_depths=depths,
                        data_format=layout, fused_batch_norm=label != GENERIC_BATCH_NORM,
                    )
        return measure(
            models, batch=batch, size=size, steps=steps, warmup=warmup, num_classes=num_classes, external=external,
            data_format=data_format, jit_compile=jit_compile, layouts=layouts,
        )
    finally:
        for peer in external.values():
            peer.close()


def _timm_peer(name, stage_depths, python, batch, size, num_classes, warmup):
    from kresnet.benchmarks.timm_peer import TimmPeer, timm_python
    from kresnet.errors import UserError

    if stage_depths:
        raise UserError("--vs timm times timm's model of the same name; it cannot take --depths")
    return TimmPeer(timm_python(python), model=name, batch=batch, size=size, num_classes=num_classes, warmup=warmup)


def format_table(results):
    """A plain-text table: median and best training images/s, inference, and each row's median relative to the first row of its backend."""
    header = (f"{'backend':<11}{'model':<26}{'layout':<8}{'dtype':<16}{'batch':>6}{'size':>6}{'train img/s':>13}{'best':>8}"
              f"{'infer img/s':>13}{'vs first':>10}")
    lines = [header]
    first_by_backend = {}
    for row in results:
        first = first_by_backend.setdefault(row.backend, row)
        ratio = row.train_images_per_s / first.train_images_per_s
        lines.append(
            f"{row.backend:<11}{row.model:<26}{'NCHW' if row.data_format == 'channels_first' else 'NHWC':<8}{row.dtype:<16}{row.batch:>6}{row.size:>6}"
            f"{row.train_images_per_s:>13.1f} {row.train_best_images_per_s:>7.1f} {row.infer_images_per_s:>12.1f} {ratio:>9.2f}"
        )
    return "\n".join(lines)
