"""`kresnet bench data`: images/s of the tf.data training pipeline against the Pillow + NumPy baseline.

Both run the same transforms (random-resized crop, flip, colour jitter, lighting,
normalise, batch) from the same JPEG files, in the same process, one after the other.
The baseline is what a user writes by hand: one Python loop, one core. tf.data is
measured on a one-thread pool and on all cores. Images per CPU-second (process
CPU time, all threads) is the per-core figure; it holds up on a busy machine,
where wall-clock rates do not.
"""

import dataclasses
import os
import time


@dataclasses.dataclass
class Rate:
    """Images per wall-clock second, and per CPU-second of this process (all its threads)."""

    wall: float
    cpu: float


@dataclasses.dataclass
class BenchResult:
    """Throughputs of the three runs."""

    tfdata_one_thread: Rate
    tfdata_all_cores: Rate
    pillow: Rate
    cores: int
    images: int

    def lines(self):
        rows = [
            ("pillow + numpy, 1 core", self.pillow),
            ("tf.data, 1 thread", self.tfdata_one_thread),
            (f"tf.data, {self.cores} cores", self.tfdata_all_cores),
        ]
        out = [
            f"dataset: {self.images} images; cores available: {self.cores}",
            f"{'pipeline':24} {'images/s':>9} {'x pillow':>9} {'images/cpu-s':>13} {'x pillow':>9}",
        ]
        for name, rate in rows:
            out.append(f"{name:24} {rate.wall:9.1f} {rate.wall / self.pillow.wall:9.2f} {rate.cpu:13.1f} {rate.cpu / self.pillow.cpu:9.2f}")
        out.append("images/cpu-s counts every thread's CPU time: the per-core comparison, robust to other load")
        return out


def _rate(batches, steps, warmup):
    iterator = iter(batches)
    for _ in range(warmup):
        next(iterator)
    wall, cpu = time.perf_counter(), time.process_time()
    count = 0
    for _ in range(steps):
        images = next(iterator)[0]
        count += int(images.shape[0])
    return Rate(count / (time.perf_counter() - wall), count / max(time.process_time() - cpu, 1e-9))


def available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run(source, batch_size=64, image_size=224, steps=20, pillow_steps=None, warmup=2):
    """Measure both pipelines on the training images of `source`.

    Args:
        source: str or path. Folder dataset root or class-per-folder tree.
        batch_size: int. Images per batch.
        image_size: int. Output side.
        steps: int. Timed tf.data batches (after `warmup`).
        pillow_steps: int or None. Timed Pillow batches; default `max(2, steps // 4)`.
        warmup: int. Untimed batches first (thread pools, file cache).

    Returns:
        A `BenchResult`.
    """
    from kresnet.data import pillow_baseline, sources
    from kresnet.data.pipeline import build_dataset

    folder = sources.resolve_split(source, "train")
    paths, labels, _ = sources.list_image_folder(folder)
    rates = {}
    for name, threads in (("one", 1), ("all", None)):
        dataset, _ = build_dataset(folder, training=True, batch_size=batch_size, image_size=image_size, seed=0, repeat=True, one_hot=False, threads=threads)
        rates[name] = _rate(dataset.as_numpy_iterator(), steps, warmup)
    pillow = _rate(pillow_baseline.train_batches(paths, labels, batch_size, image_size), pillow_steps or max(2, steps // 4), 1)
    return BenchResult(rates["one"], rates["all"], pillow, available_cores(), len(paths))
