"""VOC-layout detection reader: Pascal's VOCdevkit/VOC20xx, or one folder with Annotations/*.xml and JPEGImages/.

The second is what labelme, CVAT and Roboflow export, often with their own
class list (labelme's `class_names.txt`).
"""

import pathlib
import xml.etree.ElementTree as ElementTree

from kresnet.errors import UserError
from kresnet.transfer.class_list import object_class_names, read_class_list
from kresnet.transfer.detection.dataset import VOC_CLASSES, DetectionDataset, clip_box, make_record

# The paper's training set (Table 8) and test set.
VOC0712_TRAINVAL = ("VOC2007/trainval", "VOC2012/trainval")
VOC07_TEST = ("VOC2007/test",)


def dataset_class_names(folders, default=VOC_CLASSES):
    """Object classes from the first `class_names.txt` among `folders` (without `_background_`), else `default`.

    Args:
        folders: paths to look in, in order.
        default: sequence of str. The classes when no folder has a list.
    """
    for folder in folders:
        names = read_class_list(folder)
        if names is not None:
            return object_class_names(names, folder)
    return list(default)


def split_files(root, splits):
    """(dataset folder, split file) of each split entry; a missing split file is a `UserError` naming it.

    An entry ending in `.txt` is a split file relative to `root`, read against
    the nearest folder above it holding `Annotations/`. When `root` itself holds
    `Annotations/` (one exported dataset), any other entry names
    `ImageSets/Main/<entry>.txt`; otherwise entries are VOCdevkit's `year/split`.

    Args:
        root: path. VOCdevkit, or one VOC-layout folder.
        splits: str or list of str.
    """
    root = pathlib.Path(root)
    single = (root / "Annotations").is_dir()
    entries = [splits] if isinstance(splits, str) else list(splits)
    pairs = []
    for entry in entries:
        entry = str(entry)
        if entry.endswith(".txt"):
            split_file = root / entry
            folder = next((parent for parent in split_file.parents
                           if (parent / "Annotations").is_dir() and parent.is_relative_to(root)), root)
            pairs.append((folder, split_file))
        elif single and "/" not in entry:
            pairs.append((root, root / "ImageSets" / "Main" / f"{entry}.txt"))
        else:
            pairs += [(root / year, root / year / "ImageSets" / "Main" / f"{split}.txt")
                      for year, split in parse_splits(entry)]
    for _, split_file in pairs:
        if not split_file.is_file():
            raise UserError(f"VOC split file {split_file} does not exist (split entries: 'VOC2007/trainval', "
                            "a split name in ImageSets/Main of an exported folder, or a .txt path under data.root)")
    return pairs


def parse_splits(splits):
    """Normalise split names to (year folder, split) pairs.

    Accepts "VOC2007/trainval", "2007/trainval", "07+12/trainval", "<folder>/<split>"
    for any other folder inside VOCdevkit, and lists of them.

    Args:
        splits: str or list of str.
    """
    if isinstance(splits, str):
        splits = [splits]
    pairs = []
    for entry in splits:
        years, sep, split = str(entry).partition("/")
        if not sep or not split:
            raise UserError(f"VOC split {entry!r}: expected 'VOC2007/trainval' (year/split), e.g. '07+12/trainval'")
        if not years.replace("VOC", "").replace("+", "").strip().isdigit():
            pairs.append((years, split))  # a folder that is not a VOC year, e.g. "synthetic"
            continue
        for year in years.replace("VOC", "").split("+"):
            year = year.strip()
            if len(year) == 2 and year.isdigit():
                year = "20" + year
            if len(year) != 4 or not year.isdigit():
                raise UserError(f"VOC split {entry!r}: year {year!r} is not like 2007 or 07")
            pairs.append((f"VOC{year}", split))
    return pairs


def read_voc(devkit_dir, splits=VOC0712_TRAINVAL, class_names=None):
    """Read VOC-layout splits into one `DetectionDataset`.

    The image of id `X` is `JPEGImages/X.jpg` (the devkit's rule); the XML's
    `<filename>` is not trusted, it sometimes names another file. Box corners
    are 1-based inclusive pixel indices in the XML; `xmin`/`ymin` are shifted
    by -1 so boxes are continuous coordinates with the devkit's widths.
    Malformed XML, missing images, unknown class names and boxes outside the
    image are collected in `problems` (naming the file); the rest loads.

    Args:
        devkit_dir: path to `VOCdevkit` (holding `VOC2007`, `VOC2012`...) or
            to one VOC-layout folder (holding `Annotations/`, `JPEGImages/`).
        splits: str or list of str. See `split_files`; defaults to 07+12 trainval.
        class_names: list of str or None. Class index = position. None: the
            dataset's `class_names.txt` (in `devkit_dir` or a split's folder)
            when there is one, else the 20 Pascal classes.
    """
    devkit = pathlib.Path(devkit_dir)
    if not devkit.is_dir():
        raise UserError(f"VOC folder {devkit} does not exist: put VOCdevkit (with VOC2007/, VOC2012/) there")
    pairs = split_files(devkit, splits)
    if not class_names:
        class_names = dataset_class_names([devkit] + [folder for folder, _ in pairs])
    index = {name: i for i, name in enumerate(class_names)}
    records, problems = [], []
    for folder, split_file in pairs:
        image_ids = split_file.read_text().split()
        if not image_ids:
            raise UserError(f"VOC split file {split_file} is empty: expected one image id per line")
        for image_id in image_ids:
            record = _read_annotation(folder, image_id, index, problems)
            if record is not None:
                records.append(record)
    return DetectionDataset(records=records, class_names=list(class_names), problems=problems)


def _read_annotation(year_dir, image_id, index, problems):
    xml_path = year_dir / "Annotations" / f"{image_id}.xml"
    image_path = year_dir / "JPEGImages" / f"{image_id}.jpg"
    if not image_path.is_file():
        problems.append(f"{image_path}: image missing; skipped")
        return None
    try:
        root = ElementTree.parse(xml_path).getroot()
        width, height = _image_size(root, image_path)
        boxes, labels, difficult = [], [], []
        for number, obj in enumerate(root.iter("object")):
            name = obj.findtext("name", "").strip()
            where = f"{xml_path} object {number} ({name})"
            if name not in index:
                problems.append(f"{where}: class {name!r} is not one of the {len(index)} classes; object skipped")
                continue
            bndbox = obj.find("bndbox")
            corners = [float(bndbox.findtext(key)) for key in ("xmin", "ymin", "xmax", "ymax")]
            corners[0] -= 1.0
            corners[1] -= 1.0
            box = clip_box(corners, width, height, where, problems)
            if box is None:
                continue
            boxes.append(box)
            labels.append(index[name])
            difficult.append(obj.findtext("difficult", "0").strip() == "1")
    except FileNotFoundError:
        problems.append(f"{xml_path}: annotation missing; image skipped")
        return None
    except (ElementTree.ParseError, AttributeError, TypeError, ValueError) as error:
        problems.append(f"{xml_path}: malformed annotation ({error}); image skipped")
        return None
    return make_record(f"{year_dir.name}/{image_id}", image_path, width, height, boxes, labels, difficult)


def _image_size(root, image_path):
    size = root.find("size")
    width = int(float(size.findtext("width", "0"))) if size is not None else 0
    height = int(float(size.findtext("height", "0"))) if size is not None else 0
    if width <= 0 or height <= 0:
        from PIL import Image  # only for the rare XML without a usable <size>

        with Image.open(image_path) as image:
            width, height = image.size
    return width, height
