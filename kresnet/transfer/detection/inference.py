"""Run a detector over records and return detections in each image's own pixel coordinates."""

import numpy as np

from kresnet.transfer.detection.pipeline import make_dataset


def detect_records(model, records, batch_size, short_side, max_side, progress=None, skip_counter=None):
    """Detections per record, boxes mapped back to the original image size.

    Args:
        model: `FasterRCNN`.
        records: list of `DetectionRecord`.
        batch_size: int.
        short_side: int. As used in training.
        max_side: int.
        progress: callable or None, called with the number of images done.
        skip_counter: `SkipCounter` or None. Counts the unreadable images.

    Returns:
        list, one entry per record: a dict with `boxes` (N, 4), `scores` (N,),
        `labels` (N,), or None for an image that could not be read (skipped).
    """
    results = [None] * len(records)
    done = 0
    data = make_dataset(records, batch_size, short_side, max_side, training=False, skip_counter=skip_counter,
                        pad_value=model.pixel_mean)
    for batch in data.as_numpy_iterator():
        outputs = model.predict_on_batch({"images": batch["images"], "image_sizes": batch["image_sizes"]})
        outputs = {key: np.asarray(value) for key, value in outputs.items()}
        for index, ((scale_y, scale_x), number) in enumerate(zip(batch["scales"], batch["indices"])):
            record = records[number]
            valid = outputs["valid"][index].astype(bool)
            boxes = outputs["boxes"][index][valid] / np.array([scale_x, scale_y, scale_x, scale_y], np.float32)
            boxes = np.clip(boxes, 0, [record.width, record.height, record.width, record.height])
            results[number] = {"boxes": boxes, "scores": outputs["scores"][index][valid],
                               "labels": outputs["labels"][index][valid].astype(np.int32)}
            done += 1
        if progress is not None:
            progress(done)
    return results


def ground_truths(records):
    """The VOC evaluator's view of records: boxes, labels, difficult.

    Args:
        records: list of `DetectionRecord`.
    """
    return [{"boxes": r.boxes, "labels": r.labels, "difficult": r.difficult} for r in records]
