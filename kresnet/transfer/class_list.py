"""A dataset's own class list, as exporters write it (labelme's `class_names.txt` and COCO categories).

One rule for labelme's `_background_` (its class 0): it is class 0 of segmentation masks, and
never an object class of detection data, whether it comes from `class_names.txt` (VOC layout)
or as COCO category 0 (labelme2coco).
"""

import pathlib

from kresnet.errors import UserError

CLASS_LIST_FILE = "class_names.txt"
IGNORE_NAME = "__ignore__"  # labelme's ignore label: stored as 255, not a class
BACKGROUND_NAME = "_background_"  # labelme's class 0: background pixels, not an object class


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


def object_class_names(names, source):
    """Detection classes of a dataset's own class list: `names` without labelme's `_background_`.

    Args:
        names: list of str, in label order.
        source: str naming the list (file or folder), for the error when nothing is left.
    """
    objects = [name for name in names if name != BACKGROUND_NAME]
    if not objects:
        raise UserError(f"class list in {source}: no object classes besides {BACKGROUND_NAME}")
    return objects
