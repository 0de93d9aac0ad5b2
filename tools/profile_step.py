"""Profile kresnet's training step on the current Keras backend (torch or tensorflow) and print where the time goes.

    KERAS_BACKEND=torch python tools/profile_step.py --model resnet50d --batch 16 --size 128
    KERAS_BACKEND=tensorflow python tools/profile_step.py --model resnet50d --batch 16 --size 128

The step is the one `kresnet bench model` times (train_on_batch, SGD Nesterov, compiled with
jit_compile="auto"). torch: torch.profiler, self CPU time per aten op. TensorFlow: the TF
profiler's host trace (XPlane), time per op type. Times on a loaded machine are only shares.
"""

import argparse
import collections
import glob
import os
import tempfile

import keras
import numpy as np


def build(model_name, batch, size):
    from kresnet.models.factory import create_model

    model = create_model(model_name, num_classes=1000, input_shape=[size, size, 3])
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True), jit_compile="auto")
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch, size, size, 3), dtype=np.float32)
    labels = np.eye(1000, dtype=np.float32)[rng.integers(0, 1000, batch)]
    return lambda: model.train_on_batch(images, labels)


def profile_torch(step, steps, top):
    import torch

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top))


def profile_tensorflow(step, steps, top):
    import tensorflow as tf

    logdir = tempfile.mkdtemp()
    tf.profiler.experimental.start(logdir)
    for _ in range(steps):
        step()
    tf.profiler.experimental.stop()
    summarize_xplane(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0], steps, top)


def summarize_xplane(path, steps, top):
    """Print milliseconds per step by TF op type from the TF executor's threads (ops run without XLA on CPU)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(path, "rb") as file:
        space.ParseFromString(file.read())
    by_type = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and "::" not in name:  # "layer/op:OpType"; "ExecutorState::Process" spans wrap the ops
                    by_type[name.rsplit(":", 1)[-1]] += event.duration_ps / 1e9
    total = sum(by_type.values())
    print(f"{'op type':<44}{'ms/step':>10}{'share':>8}")
    for name, ms in by_type.most_common(top):
        print(f"{name[:43]:<44}{ms / steps:>10.1f}{ms / total:>8.1%}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50d")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    step = build(args.model, args.batch, args.size)
    for _ in range(2):
        step()
    profile = {"torch": profile_torch, "tensorflow": profile_tensorflow}[keras.config.backend()]
    profile(step, args.steps, args.top)


if __name__ == "__main__":
    main()
