"""Profile kresnet's training step on the current Keras backend and print where the time goes.

    KERAS_BACKEND=torch python tools/profile_step.py --model resnet50d --batch 16 --size 128
    KERAS_BACKEND=tensorflow python tools/profile_step.py --model resnet50d --batch 16 --size 128
    KERAS_BACKEND=jax python tools/profile_step.py --model resnet50d --batch 16 --size 128

The step is the one `kresnet bench model` times (train_on_batch, kresnet's NesterovL2SGD, compiled with
jit_compile="auto"). torch: torch.profiler, self CPU time per aten op. TensorFlow: the TF
profiler's host trace (XPlane), time per op type. JAX: the profiler's trace of XLA's CPU
thunks (one per compiled kernel), each put in a class by what its HLO computes (XLA's
optimised HLO, dumped for this run): convolutions (and the classifier's dot), fusions that
transpose a tensor for a convolution's gradient, pools, and the rest (BatchNorm, ReLU,
residual adds, loss, optimizer update: the elementwise work). Times on a loaded machine are
only shares.
"""

import argparse
import collections
import glob
import os
import re
import tempfile

# XLA writes its optimised HLO here, which names what each JAX kernel computes (read before JAX starts).
HLO_DIR = tempfile.mkdtemp()
if os.environ.get("KERAS_BACKEND") == "jax":
    os.environ["XLA_FLAGS"] = (f"{os.environ.get('XLA_FLAGS', '')} --xla_dump_to={HLO_DIR} --xla_dump_hlo_as_text "
                               "--xla_dump_hlo_module_re=train_step")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def build(model_name, batch, size, data_format="channels_last"):
    from kresnet.models.factory import create_model

    shape = [3, size, size] if data_format == "channels_first" else [size, size, 3]
    model = create_model(model_name, num_classes=1000, input_shape=shape, data_format=data_format)
    from kresnet.tricks.optimizer import NesterovL2SGD

    model.compile(optimizer=NesterovL2SGD(0.01, momentum=0.9, nesterov=True, l2=0.0),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True), jit_compile="auto")
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch, *shape), dtype=np.float32)
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


def profile_jax(step, steps, top, hlo_dir):
    import jax

    logdir = tempfile.mkdtemp()
    jax.profiler.start_trace(logdir)
    for _ in range(steps):
        step()
    jax.profiler.stop_trace()
    kinds = classify_hlo_kernels(_newest(os.path.join(hlo_dir, "*jit_train_step.cpu_after_optimizations.txt")))
    times, names = collections.Counter(), collections.Counter()
    for name, ms in _xla_kernel_times(_newest(os.path.join(logdir, "**", "*.xplane.pb"))):
        times[kinds.get(name, "other (elementwise: BatchNorm, ReLU, adds, loss, update)")] += ms
        names[name] += ms
    total = sum(times.values())
    print(f"{'kernel class':<58}{'ms/step':>10}{'share':>8}")
    for kind, ms in times.most_common():
        print(f"{kind[:57]:<58}{ms / steps:>10.1f}{ms / total:>8.1%}")
    print(f"\n{'kernel':<44}{'class':<14}{'ms/step':>10}{'share':>8}")
    for name, ms in names.most_common(top):
        print(f"{name[:43]:<44}{kinds.get(name, 'other')[:13]:<14}{ms / steps:>10.1f}{ms / total:>8.1%}")


def classify_hlo_kernels(path):
    """{instruction name: class} for the kernels of XLA's optimised HLO module at `path`."""
    with open(path) as file:
        text = file.read()
    bodies = {}  # fused computation name -> its text
    for match in re.finditer(r"^%?(\S+) \(.*?\) -> .*? \{\n(.*?)^\}", text, flags=re.M | re.S):
        bodies[match.group(1)] = match.group(2)
    kinds = {}
    for match in re.finditer(r"^\s+(?:ROOT )?%(\S+) = .*? (\w[\w-]*)\(.*?(?:calls=%(\S+?)[,\s]|$)", text, flags=re.M):
        name, opcode, called = match.group(1), match.group(2), match.group(3)
        body = bodies.get(called, "") if called else ""
        if opcode in ("convolution", "dot") or " convolution(" in body or " dot(" in body:
            kinds[name] = "convolutions (and the classifier's dot)"
        elif opcode == "transpose" or " transpose(" in body or name.startswith("transpose"):
            kinds[name] = "transposes for convolution gradients (+ fused elementwise)"
        elif opcode == "reduce-window" or "reduce-window(" in body or "select-and-scatter" in body:
            kinds[name] = "pools and their gradients"
    return kinds


def _xla_kernel_times(path):
    """(kernel name, milliseconds) of every XLA CPU thunk in a JAX profiler trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(path, "rb") as file:
        space.ParseFromString(file.read())
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_XLAEigen"):  # the threads that run the compiled kernels
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if not name.startswith(("ThunkExecutor", "SlinkyThreadPool", "end: ")):
                    yield name, event.duration_ps / 1e9


def _newest(pattern):
    return max(glob.glob(pattern, recursive=True), key=os.path.getmtime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50d")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--data-format", default="channels_last", choices=["channels_last", "channels_first"])
    args = parser.parse_args()
    step = build(args.model, args.batch, args.size, args.data_format)
    for _ in range(2):
        step()
    if keras.config.backend() == "jax":
        profile_jax(step, args.steps, args.top, HLO_DIR)
    else:
        profile = {"torch": profile_torch, "tensorflow": profile_tensorflow}[keras.config.backend()]
        profile(step, args.steps, args.top)


if __name__ == "__main__":
    main()
