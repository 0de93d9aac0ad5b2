"""In-memory detection dataset: one record per image, boxes in pixels, plus the problems met while reading."""

import dataclasses

import numpy as np

# VOC's twenty classes in the devkit's order (class index = position).
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)


@dataclasses.dataclass
class DetectionRecord:
    """One image and its objects.

    Args:
        image_id: str or int. VOC file id or COCO image id.
        image_path: str. Where the image file lives.
        width: int. Image width in pixels.
        height: int. Image height in pixels.
        boxes: float32 (N, 4). `[xmin, ymin, xmax, ymax]` in continuous pixel
            coordinates (0 = left edge of the first pixel).
        labels: int32 (N,). Contiguous class indices.
        difficult: bool (N,). VOC `difficult` or COCO `iscrowd`: left out of
            training targets; in VOC evaluation neither true nor false positive.
        areas: float32 (N,) or None. COCO's annotation `area` (the mask's, not
            the box's), which decides COCO's small/medium/large ranges; None: box areas.
    """

    image_id: object
    image_path: str
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    areas: np.ndarray | None = None


@dataclasses.dataclass
class DetectionDataset:
    """Records, class names and the readable one-line problems found while loading.

    Args:
        records: list of `DetectionRecord`.
        class_names: list of str, index = class label.
        problems: list of str, each naming the file and what was wrong.
        category_ids: list of int or None. COCO category id per class index
            (None for VOC), so detections can be written back in COCO ids.
        coco_truth: dict or None. For COCO data, the source JSON's entries of
            the loaded images (original image and annotation ids, unclipped
            boxes): what COCO AP is scored against, as pycocotools on the file.
    """

    records: list
    class_names: list
    problems: list = dataclasses.field(default_factory=list)
    category_ids: list = None
    coco_truth: dict = None

    def __len__(self):
        return len(self.records)

    def report_problems(self, split, limit=5):
        """Say how many problems reading the dataset met, quoting the first `limit`, each on a line of its own.

        Args:
            split: str. Which part of the dataset this is ("train", "test"), for the first line.
            limit: int. How many problems to quote.
        """
        if not self.problems:
            return
        from kresnet.console import say

        quoted = [f"  {problem}" for problem in self.problems[:limit]]
        if len(self.problems) > limit:
            quoted.append(f"  ... and {len(self.problems) - limit} more")
        say("\n".join([f"warning: {len(self.problems)} problem(s) while reading the {split} data:", *quoted]))


def make_record(image_id, image_path, width, height, boxes, labels, difficult, areas=None):
    """Build a record with the array dtypes fixed (empty lists give (0, 4) boxes).

    Args:
        image_id: str or int.
        image_path: str.
        width: int.
        height: int.
        boxes: sequence of 4-sequences, pixel xyxy.
        labels: sequence of int.
        difficult: sequence of bool.
        areas: sequence of float or None. COCO annotation areas.
    """
    return DetectionRecord(
        image_id=image_id,
        image_path=str(image_path),
        width=int(width),
        height=int(height),
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        labels=np.asarray(labels, dtype=np.int32).reshape(-1),
        difficult=np.asarray(difficult, dtype=bool).reshape(-1),
        areas=None if areas is None else np.asarray(areas, dtype=np.float32).reshape(-1),
    )


def clip_box(box, width, height, where, problems):
    """Clip a pixel xyxy box to the image; None (and a problem) if nothing is left.

    Args:
        box: 4 floats, xyxy.
        width: int. Image width.
        height: int. Image height.
        where: str. File (and object) the box came from, for the message.
        problems: list of str. Receives a message when the box had to change.
    """
    xmin, ymin, xmax, ymax = box
    clipped = [min(max(xmin, 0.0), width), min(max(ymin, 0.0), height),
               min(max(xmax, 0.0), width), min(max(ymax, 0.0), height)]
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        problems.append(f"{where}: box {list(box)} is empty or outside the {width}x{height} image; object skipped")
        return None
    if clipped != list(box):
        problems.append(f"{where}: box {list(box)} extends outside the {width}x{height} image; clipped")
    return clipped
