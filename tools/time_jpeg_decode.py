"""Time TensorFlow's JPEG decoding with its default DCT against PIL's (`INTEGER_ACCURATE`), as a ratio.

kresnet decodes evaluation and prediction images with PIL's DCT (`kresnet.data.decode.decode_rgb`)
and training crops with TensorFlow's default. This measures what each choice costs, for the
whole image (evaluation) and for a random-resized-crop window (training), on the JPEGs of the
given folders. The two methods alternate in short rounds on one thread, and the ratio is the
median over rounds of process CPU time, so other load on the machine cancels out:

    python tools/time_jpeg_decode.py /path/to/imagenet/val [more folders] [--rounds 30]
"""

import argparse
import pathlib
import statistics
import time

import tensorflow as tf

METHODS = {"default (fast)": "", "PIL's (accurate)": "INTEGER_ACCURATE"}


def _decoders(method):
    whole = tf.function(lambda contents: tf.io.decode_jpeg(contents, channels=3, dct_method=method))

    @tf.function
    def window(contents):
        # The paper's average crop: about half the area, centred (the position does not change the cost much).
        shape = tf.io.extract_jpeg_shape(contents)
        height, width = shape[0] * 7 // 10, shape[1] * 7 // 10
        box = tf.stack([(shape[0] - height) // 2, (shape[1] - width) // 2, height, width])
        return tf.io.decode_and_crop_jpeg(contents, box, channels=3, dct_method=method)

    return {"whole image (evaluation)": whole, "crop window (training)": window}


def _cpu_seconds(decode, files):
    start = time.process_time()
    for contents in files:
        decode(contents)
    return time.process_time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=pathlib.Path)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    paths = sorted(p for folder in args.folders for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    files = [tf.constant(p.read_bytes()) for p in paths]
    files = [f for f in files if bool(tf.io.is_jpeg(f))]
    if not files:
        raise SystemExit("no JPEG files found")
    decoders = {name: _decoders(method) for name, method in METHODS.items()}
    fast, accurate = METHODS
    print(f"{len(files)} JPEGs, {args.rounds} rounds, one thread; TensorFlow {tf.__version__}")
    for task in decoders[fast]:
        for name in METHODS:
            _cpu_seconds(decoders[name][task], files)  # trace and warm the file cache
        seconds = {name: [] for name in METHODS}
        for _ in range(args.rounds):
            for name in METHODS:
                seconds[name].append(_cpu_seconds(decoders[name][task], files))
        ratio = statistics.median(a / f for a, f in zip(seconds[accurate], seconds[fast]))
        rates = "  ".join(f"{name}: {len(files) / statistics.median(seconds[name]):.0f} images/cpu-s" for name in METHODS)
        print(f"{task:26} {rates}  time ratio accurate/fast {ratio:.3f}")


if __name__ == "__main__":
    main()
