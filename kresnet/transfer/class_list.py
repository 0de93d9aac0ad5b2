"""A dataset's own class list file, as VOC-layout exporters write it (labelme's `class_names.txt`)."""

import pathlib

from kresnet.errors import UserError

CLASS_LIST_FILE = "class_names.txt"
IGNORE_NAME = "__ignore__"  # labelme's ignore label: stored as 255, not a class


def read_class_list(folder):
    """Class names of `folder/class_names.txt`, one per line in label order, or None without that file.

    labelme writes `_background_` first (class 0 of its masks); it is kept here,
    detection readers drop it. An empty list is a `UserError` naming the file.

    Args:
        folder: path. The dataset folder.
    """
    list_file = pathlib.Path(folder) / CLASS_LIST_FILE
    if not list_file.is_file():
        return None
    names = [line.strip() for line in list_file.read_text(encoding="utf-8").splitlines()]
    names = [name for name in names if name and name != IGNORE_NAME]
    if not names:
        raise UserError(f"class list {list_file}: no class names in it")
    return names
