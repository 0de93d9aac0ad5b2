"""Pascal VOC reader: VOCdevkit/VOC20xx with Annotations/*.xml, JPEGImages/, ImageSets/Main/<split>.txt."""

import pathlib
import xml.etree.ElementTree as ElementTree

from kresnet.errors import UserError
from transfer.detection.dataset import VOC_CLASSES, DetectionDataset, clip_box, make_record

# The paper's training set (Table 8) and test set.
VOC0712_TRAINVAL = ("VOC2007/trainval", "VOC2012/trainval")
VOC07_TEST = ("VOC2007/test",)


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


def read_voc(devkit_dir, splits=VOC0712_TRAINVAL, class_names=VOC_CLASSES):
    """Read VOC splits into one `DetectionDataset`.

    The image of id `X` is `JPEGImages/X.jpg` (the devkit's rule); the XML's
    `<filename>` is not trusted, it sometimes names another file. Box corners
    are 1-based inclusive pixel indices in the XML; `xmin`/`ymin` are shifted
    by -1 so boxes are continuous coordinates with the devkit's widths.
    Malformed XML, missing images, unknown class names and boxes outside the
    image are collected in `problems` (naming the file); the rest loads.

    Args:
        devkit_dir: path to `VOCdevkit` (holding `VOC2007`, `VOC2012`...).
        splits: str or list of str. See `parse_splits`; defaults to 07+12 trainval.
        class_names: list of str. Class index = position.
    """
    devkit = pathlib.Path(devkit_dir)
    if not devkit.is_dir():
        raise UserError(f"VOC folder {devkit} does not exist: put VOCdevkit (with VOC2007/, VOC2012/) there")
    index = {name: i for i, name in enumerate(class_names)}
    records, problems = [], []
    for year, split in parse_splits(splits):
        split_file = devkit / year / "ImageSets" / "Main" / f"{split}.txt"
        if not split_file.is_file():
            raise UserError(f"VOC split file {split_file} does not exist: expected VOCdevkit/{year}/ImageSets/Main/{split}.txt")
        for image_id in split_file.read_text().split():
            record = _read_annotation(devkit / year, image_id, index, problems)
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
