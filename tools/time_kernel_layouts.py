"""Time resnet50d's PyTorch training step with kresnet's kernel memory layout against Keras', per optimizer.

    KERAS_BACKEND=torch python tools/time_kernel_layouts.py --rounds 8

kresnet's `Conv2D` keeps each kernel's memory in PyTorch's convolution order under Keras' shape
(kresnet/models/channels_last_layers.py), which saves PyTorch reordering every kernel forward
and every gradient back, each step. An optimizer's slot variables are elementwise partners of
the kernels in every update: kresnet's `NesterovL2SGD` lays its momentum buffers out as the
kernels, Keras' optimizers keep their default order, and an elementwise op across two layouts is
many times slower than within one. This times, in alternating rounds, the same model (same
weights, same batch) with the kernels in Keras' order and in PyTorch's, under kresnet's optimizer
and under Keras' SGD (Nesterov) and AdamW, and prints each pair's median step and ratio.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kresnet.models.factory import create_model  # noqa: E402
from kresnet.tricks.optimizer import NesterovL2SGD  # noqa: E402

OPTIMIZERS = {
    "kresnet NesterovL2SGD": lambda: NesterovL2SGD(0.01, momentum=0.9, nesterov=True, l2=1e-4, no_bias_decay=True),
    "keras SGD (Nesterov)": lambda: keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
    "keras AdamW": lambda: keras.optimizers.AdamW(1e-3),
}


def keras_order(model):
    """The model with every kernel's memory back in Keras' (kh, kw, in, out) order (values unchanged)."""
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.Conv2D):
            parameter = layer.kernel.value
            parameter.data = parameter.data.contiguous()
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    if keras.config.backend() != "torch":
        raise SystemExit("kernel memory layouts are PyTorch's: run with KERAS_BACKEND=torch")
    rng = np.random.default_rng(0)
    images = rng.standard_normal((args.batch, args.size, args.size, 3), dtype=np.float32)
    labels = np.eye(1000, dtype=np.float32)[rng.integers(0, 1000, args.batch)]
    for optimizer_name, optimizer in OPTIMIZERS.items():
        models = {}
        for layout in ("keras order", "torch order"):
            keras.utils.set_random_seed(0)
            model = create_model("resnet50d", num_classes=1000, input_shape=[args.size, args.size, 3])
            if layout == "keras order":
                keras_order(model)
            model.compile(optimizer=optimizer(), loss=keras.losses.CategoricalCrossentropy(from_logits=True))
            for _ in range(2):  # builds the optimizer's slots, warms up
                model.train_on_batch(images, labels)
            models[layout] = model
        seconds = {layout: [] for layout in models}
        for round_index in range(args.rounds):
            order = list(models) if round_index % 2 else list(models)[::-1]
            for layout in order:
                start = time.perf_counter()
                models[layout].train_on_batch(images, labels)
                seconds[layout].append(time.perf_counter() - start)
        medians = {layout: statistics.median(values) for layout, values in seconds.items()}
        print(f"{optimizer_name:24s} step s, kernels in Keras' order {medians['keras order']:.3f}, "
              f"in PyTorch's {medians['torch order']:.3f}: {medians['keras order'] / medians['torch order']:.2f}x")


if __name__ == "__main__":
    main()
