"""COCO detection JSON reader: category ids mapped to contiguous class indices, `iscrowd` kept as ignored."""

import json
import pathlib

from kresnet.errors import UserError
from kresnet.transfer.class_list import object_class_names
from kresnet.transfer.detection.dataset import DetectionDataset, clip_box, make_record


def read_coco(annotation_file, image_dir, skip_empty=False, class_names=None):
    """Read a COCO instances JSON into a `DetectionDataset`.

    Classes are `class_names` when given (category names, in label order), else the
    JSON's categories sorted by id without labelme's `_background_` (its category 0,
    no object class, as in the VOC reader); `category_ids[k]` is the COCO id of class
    `k`. Objects of other categories are skipped and reported in `problems`, and COCO
    AP is scored over the classes only. `iscrowd=1` objects are kept with `difficult=True`
    (no training target; pycocotools ignores them). Each object's `area` is
    kept for COCO's size ranges (the box area where the JSON has none). A malformed annotation
    entry, a missing image or a box outside its image is reported in
    `problems`; the rest loads. A file that is not valid JSON is a `UserError`.
    Boxes are clipped to the image in the records (training targets); COCO AP
    is scored on `coco_truth`, the file's own unclipped entries, their annotations
    numbered 1..N for pycocotools (messages name the file's own annotation ids).

    Args:
        annotation_file: path to the `instances_*.json`.
        image_dir: folder holding the images named by `file_name`.
        skip_empty: bool. Drop images without objects (for training).
        class_names: list of str or None. The recipe's `data.class_names`.
    """
    annotation_file, image_dir = pathlib.Path(annotation_file), pathlib.Path(image_dir)
    if not annotation_file.is_file():
        raise UserError(f"COCO annotation file {annotation_file} does not exist")
    try:
        content = json.loads(annotation_file.read_text())
        images, annotations, categories = content["images"], content["annotations"], content["categories"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise UserError(f"{annotation_file}: not a COCO detection JSON ({error.__class__.__name__}: {error}); "
                        "expected keys images, annotations, categories") from None
    categories = sorted(categories, key=lambda category: category["id"])
    category_names = {category["id"]: category["name"] for category in categories}
    chosen = _class_categories(categories, class_names, annotation_file)
    class_of = {category["id"]: index for index, category in enumerate(chosen)}
    problems = []
    objects, source_annotations, not_classes = {}, {}, {}
    for number, annotation in enumerate(annotations):
        try:
            x, y, w, h = (float(v) for v in annotation["bbox"])
            if annotation["category_id"] in category_names and annotation["category_id"] not in class_of:
                not_classes[annotation["category_id"]] = not_classes.get(annotation["category_id"], 0) + 1
                continue
            objects.setdefault(annotation["image_id"], []).append(
                (annotation.get("id", number), (x, y, w, h), class_of[annotation["category_id"]],
                 bool(annotation.get("iscrowd", 0)), float(annotation.get("area", w * h))))
            # pycocotools needs these keys; a file without them gets the reader's defaults.
            source_annotations.setdefault(annotation["image_id"], []).append(
                {"area": w * h, "iscrowd": 0, **annotation})
        except (KeyError, TypeError, ValueError) as error:
            problems.append(f"{annotation_file} annotation {number}: malformed ({error!r}); skipped")
    problems += [f"{annotation_file}: {count} object(s) of category {category_names[category]!r}, not one of the "
                 f"{len(chosen)} classes; skipped" for category, count in not_classes.items()]
    records, truth_images, truth_annotations = [], [], []
    for image in images:
        try:
            image_id, file_name = image["id"], image["file_name"]
            width, height = int(image["width"]), int(image["height"])
        except (KeyError, TypeError, ValueError) as error:
            problems.append(f"{annotation_file} image entry {image!r:.80}: malformed ({error!r}); skipped")
            continue
        image_path = image_dir / file_name
        if not image_path.is_file():
            problems.append(f"{image_path}: image missing; skipped")
            continue
        boxes, labels, crowd, areas = [], [], [], []
        for annotation_id, (x, y, w, h), label, iscrowd, area in objects.get(image_id, []):
            where = f"{annotation_file} annotation id {annotation_id} (image {file_name})"
            box = clip_box([x, y, x + w, y + h], width, height, where, problems)
            if box is None:
                continue
            boxes.append(box)
            labels.append(label)
            crowd.append(iscrowd)
            areas.append(area)
        if skip_empty and not boxes:
            continue
        records.append(make_record(image_id, image_path, width, height, boxes, labels, crowd, areas))
        truth_images.append(image)
        truth_annotations += source_annotations.get(image_id, [])
    # pycocotools takes a match with annotation id 0 for no match (labelme numbers from 0) and
    # indexes annotations by id (a repeated id loses one): it scores ids 1..N in file order.
    truth_annotations = [{**annotation, "id": number} for number, annotation in enumerate(truth_annotations, 1)]
    coco_truth = {"images": truth_images, "annotations": truth_annotations, "categories": chosen}
    return DetectionDataset(records=records, class_names=[c["name"] for c in chosen],
                            problems=problems, category_ids=[c["id"] for c in chosen], coco_truth=coco_truth)


def _class_categories(categories, class_names, annotation_file):
    """The categories that are classes, in label order: `class_names` by name, else all but `_background_`."""
    if not class_names:
        names = object_class_names([category["name"] for category in categories], annotation_file)
        return [category for category in categories if category["name"] in names]
    by_name = {category["name"]: category for category in categories}
    for name in class_names:
        if name not in by_name:
            raise UserError(f"data.class_names: {name!r} is not a category of {annotation_file} "
                            f"(categories: {', '.join(object_class_names(list(by_name), annotation_file))})")
    return [by_name[name] for name in class_names]

