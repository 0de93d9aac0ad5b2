"""The images a `kresnet predict` or `kresnet transfer predict` call names: files, and the images inside folders."""

import pathlib

from kresnet.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def image_files(inputs):
    """Expand files and folders into a list of image files, or a one-line error naming what is missing."""
    files = []
    for item in map(pathlib.Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            files.append(item)
        else:
            raise UserError(f"{item}: image or folder not found")
    if not files:
        raise UserError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(map(str, inputs))}")
    return files
