"""The manifest of a folder dataset: which image files it holds, each named by its path and the SHA-256 of its bytes.

A measured table is only reproducible on the images it was measured on: the same identities, the
same encoded pixels (a JPEG re-encoded by another encoder trains differently) and the same file
names (the reader orders images by name, and the data order follows). A manifest pins all three;
`check_manifest` compares a user's folder against one before anything trains.

File format: CSV with the header `file,sha256,cifar10_index`, one row per image, `file` relative to
the dataset root with forward slashes (`train/cat/0000.jpg`), `cifar10_index` the image's index in the
`keras.datasets.cifar10` arrays of its split where known (empty otherwise; informative, not checked).
"""

import csv
import hashlib
import pathlib

from kresnet.errors import UserError

MANIFEST_NAME = "manifest.csv"
_HEADER = ["file", "sha256", "cifar10_index"]
_SPLITS = ("train", "val")


def file_sha256(path):
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def write_manifest(root, indices=None, path=None):
    """Write the manifest of every image under `root`/{train,val}; returns its path.

    Args:
        root: the dataset root.
        indices: optional {file (relative, forward slashes): CIFAR-10 array index}.
        path: where to write it (default `root`/manifest.csv).
    """
    root = pathlib.Path(root)
    path = pathlib.Path(path) if path else root / MANIFEST_NAME
    indices = indices or {}
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(_HEADER)
        for name in _image_files(root):
            writer.writerow([name, file_sha256(root / name), indices.get(name, "")])
    return path


def read_manifest(path):
    """{file: sha256} from a manifest, in its order."""
    path = pathlib.Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as error:
        raise UserError(f"--manifest {path}: cannot read it ({error.strerror})") from None
    if not rows or rows[0][:2] != _HEADER[:2]:
        raise UserError(f"--manifest {path}: expected a CSV whose header starts with {','.join(_HEADER[:2])}")
    return {row[0]: row[1] for row in rows[1:] if row}


def check_manifest(root, manifest, option="--data"):
    """Raise a one-line `UserError` naming the first image of `root` that differs from the manifest.

    The images are compared in the manifest's order (a missing or changed file), then any image
    file the manifest does not list (an extra file changes the data, its order and the counts).

    Args:
        root: the dataset root holding train/ and val/.
        manifest: the manifest's path.
        option: how the user named `root`, for the message.

    Returns:
        The number of images checked.
    """
    root = pathlib.Path(root)
    expected = read_manifest(manifest)
    where = f"{option} {root}"
    for name, digest in expected.items():
        file = root / name
        if not file.is_file():
            raise UserError(f"{where}: {name} is missing; expected the {len(expected)} images listed in {manifest}")
        if file_sha256(file) != digest:
            raise UserError(f"{where}: {name} differs from the one in {manifest} (SHA-256 {digest[:12]}...)")
    extra = [name for name in _image_files(root) if name not in expected]
    if extra:
        raise UserError(f"{where}: {extra[0]} is not in {manifest} ({len(extra)} extra image file(s))")
    return len(expected)


def _image_files(root):
    from kresnet.data.sources import IMAGE_EXTENSIONS

    names = []
    for split in _SPLITS:
        folder = root / split
        if folder.is_dir():
            names += sorted(p.relative_to(root).as_posix() for p in folder.rglob("*")
                            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    return names
