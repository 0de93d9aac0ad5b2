"""Draw detections (box, class name, score) on an image with Pillow."""

from PIL import Image, ImageDraw, ImageFont

_COLOURS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 190), (0, 128, 128), (170, 110, 40))


def draw_detections(image_path, detection, class_names, out_path, threshold=0.5):
    """Write a copy of the image with every detection scoring at least `threshold` drawn on it.

    Args:
        image_path: source image.
        detection: dict with `boxes` (N, 4) xyxy pixels, `scores` (N,), `labels` (N,).
        class_names: list of str.
        out_path: destination image (format from the suffix).
        threshold: float. Lowest score drawn.

    Returns:
        int, the number of boxes drawn.
    """
    image = Image.open(image_path).convert("RGB")
    canvas = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    drawn = 0
    for box, score, label in zip(detection["boxes"], detection["scores"], detection["labels"]):
        if score < threshold:
            continue
        colour = _COLOURS[int(label) % len(_COLOURS)]
        xmin, ymin, xmax, ymax = (float(v) for v in box)
        canvas.rectangle([xmin, ymin, xmax, ymax], outline=colour, width=max(1, round(min(image.size) / 200)))
        text = f"{class_names[int(label)]} {score:.2f}"
        left, top, right, bottom = canvas.textbbox((xmin, ymin), text, font=font)
        top_edge = max(0.0, ymin - (bottom - top) - 2)
        canvas.rectangle([xmin, top_edge, xmin + (right - left) + 4, top_edge + (bottom - top) + 2], fill=colour)
        canvas.text((xmin + 2, top_edge), text, fill=(0, 0, 0), font=font)
        drawn += 1
    image.save(out_path)
    return drawn
