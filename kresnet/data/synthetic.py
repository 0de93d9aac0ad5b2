"""Procedural scenes of textured shapes: a dataset that needs no download.

A class is a (shape, texture, colour family) combination. Shapes are drawn at a
random scale, rotation and mild stretch on a cluttered, shaded background;
smaller objects of other classes and plain blobs occlude or distract. Shape and
texture carry the class; colour only does once there are more classes than
shape x texture pairs (then each class owns a band of hues wide enough to
survive the paper's hue jitter most of the time). So a ResNet learns it well
above chance in minutes, yet it is not separable by mean colour alone.

Every scene is a pure function of (seed, index): the same call on any machine
gives the same pixels, boxes and mask. Only NumPy and Pillow are used.
"""

import dataclasses

import numpy as np
from PIL import Image, ImageDraw

from kresnet.errors import UserError

SHAPES = ("circle", "square", "triangle", "star", "cross", "ring", "hexagon", "crescent")
TEXTURES = ("solid", "stripes", "dots", "checker")
COLOUR_FAMILIES = ("red", "yellow", "green", "cyan", "blue", "magenta")
MAX_CLASSES = len(SHAPES) * len(TEXTURES) * len(COLOUR_FAMILIES)

# Drawing at 4x and box-filtering down gives antialiased edges for little cost.
_SUPERSAMPLE = 4


@dataclasses.dataclass
class Scene:
    """One generated image with its objects.

    Args:
        image: uint8 (H, W, 3).
        boxes: float32 (N, 4), pixel [xmin, ymin, xmax, ymax]; xmax/ymax are the
            right/bottom pixel edges (exclusive), so a one-pixel object at column
            5 has xmin=5, xmax=6.
        labels: int32 (N,) in [0, num_classes).
        mask: uint8 (H, W); 0 = background, k + 1 = object of class k; later
            objects occlude earlier ones.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    mask: np.ndarray


def class_name(class_index, num_classes):
    """Human-readable name of a class, e.g. `star_dots` or `star_dots_blue`."""
    shape, texture, family = _class_parts(class_index)
    name = f"{SHAPES[shape]}_{TEXTURES[texture]}"
    families = _num_families(num_classes)
    if families > 1:
        # Family f owns the hues around f / families; name it after the nearest named hue.
        name += f"_{COLOUR_FAMILIES[int(family * len(COLOUR_FAMILIES) / families + 0.5) % len(COLOUR_FAMILIES)]}"
    return name


def _class_parts(class_index):
    shape = class_index % len(SHAPES)
    texture = (class_index // len(SHAPES)) % len(TEXTURES)
    family = class_index // (len(SHAPES) * len(TEXTURES))
    return shape, texture, family


def _num_families(num_classes):
    return -(-num_classes // (len(SHAPES) * len(TEXTURES)))


class SceneGenerator:
    """Deterministic generator of classification samples and multi-object scenes.

    Args:
        num_classes: int. Number of object classes, 1 to `MAX_CLASSES` (192).
        image_size: int or (height, width). Output image size in pixels (>= 16).
        seed: int. Together with the sample index, fixes every pixel.

    Example:
        gen = SceneGenerator(num_classes=10, image_size=64, seed=0)
        scene = gen.scene(3, min_objects=1, max_objects=4)
        image, label = gen.classification_sample(3)
    """

    def __init__(self, num_classes=10, image_size=64, seed=0):
        if not 1 <= int(num_classes) <= MAX_CLASSES:
            raise UserError(f"synthetic num_classes must be in [1, {MAX_CLASSES}]. Received: num_classes={num_classes}")
        height, width = (image_size, image_size) if np.isscalar(image_size) else image_size
        if min(height, width) < 16:
            raise UserError(f"synthetic image_size must be at least 16 pixels. Received: image_size={image_size}")
        self.num_classes = int(num_classes)
        self.height, self.width = int(height), int(width)
        self.seed = int(seed)
        self._families = _num_families(self.num_classes)

    def _rng(self, index, stream):
        # A separate stream per kind of sample keeps scene(i) and classification_sample(i) independent.
        return np.random.default_rng([self.seed, int(index), stream])

    def scene(self, index, min_objects=1, max_objects=4):
        """A cluttered scene with `min_objects`..`max_objects` labelled objects.

        Args:
            index: int. Sample index; with the seed, fixes the output.
            min_objects: int. Fewest labelled objects.
            max_objects: int. Most labelled objects.

        Returns:
            A `Scene`.
        """
        if not 1 <= min_objects <= max_objects:
            raise UserError(f"need 1 <= min_objects <= max_objects. Received: {min_objects}, {max_objects}")
        rng = self._rng(index, 1)
        image = self._background(rng)
        mask = np.zeros((self.height, self.width), np.uint8)
        boxes, labels = [], []
        short = min(self.height, self.width)
        for _ in range(int(rng.integers(min_objects, max_objects + 1))):
            label = int(rng.integers(self.num_classes))
            for _attempt in range(10):
                size = rng.uniform(0.18, 0.5) * short
                centre = self._centre_inside(rng, size)
                box = _square_box(centre, size)
                # Keep earlier objects mostly visible: later ones occlude, but not wholly.
                if all(_iou(box, other) < 0.3 for other in boxes):
                    break
            alpha = self._draw_object(rng, image, label, centre, size)
            visible = alpha > 0.5
            if not visible.any():
                continue
            mask[visible] = label + 1
            boxes.append(_mask_box(visible))
            labels.append(label)
        return Scene(
            image=image,
            boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
            labels=np.asarray(labels, np.int32),
            mask=mask,
        )

    def classification_sample(self, index):
        """One image dominated by a single object; the label is `index % num_classes`.

        Args:
            index: int. Sample index; with the seed, fixes the output.

        Returns:
            (image uint8 (H, W, 3), label int).
        """
        rng = self._rng(index, 0)
        label = int(index) % self.num_classes
        image = self._background(rng)
        short = min(self.height, self.width)
        for _ in range(int(rng.integers(0, 3))):
            distractor = int(rng.integers(self.num_classes))
            size = rng.uniform(0.12, 0.28) * short
            self._draw_object(rng, image, distractor, self._centre_inside(rng, size), size)
        size = rng.uniform(0.4, 0.8) * short
        centre = self._centre_inside(rng, size, spread=0.5)
        self._draw_object(rng, image, label, centre, size)
        if rng.random() < 0.5:
            self._draw_blob(rng, image, centre, size)
        return image, label

    def _centre_inside(self, rng, size, spread=1.0):
        half = size / 2
        cx = self.width / 2 + spread * rng.uniform(-1, 1) * max(self.width / 2 - half, 0)
        cy = self.height / 2 + spread * rng.uniform(-1, 1) * max(self.height / 2 - half, 0)
        return cx, cy

    def _background(self, rng):
        h, w = self.height, self.width
        low, high = (_hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.45), rng.uniform(0.25, 0.95)) for _ in range(2))
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h + 1) / 2
        image = low + (high - low) * ramp[..., None]
        # Low-frequency noise: a coarse random grid upsampled to the image.
        coarse = rng.normal(0, 18, (4, 4, 3)).astype(np.float32)
        noise = np.asarray(Image.fromarray(coarse[..., 0]).resize((w, h), Image.BILINEAR))
        image += noise[..., None] + rng.normal(0, 6, (h, w, 3))
        image = np.clip(image, 0, 255).astype(np.uint8)
        canvas = Image.fromarray(image)
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(2, 7))):
            colour = tuple(int(c) for c in _hsv_to_rgb(rng.random(), rng.uniform(0, 0.6), rng.uniform(0.2, 1.0)))
            x0, x1 = sorted(rng.uniform(0, w, 2))
            y0, y1 = sorted(rng.uniform(0, h, 2))
            if rng.random() < 0.5:
                draw.line([(x0, y0), (x1, y1)], fill=colour, width=int(rng.integers(1, 3)))
            else:
                draw.rectangle([x0, y0, x0 + (x1 - x0) / 3, y0 + (y1 - y0) / 3], outline=colour)
        return np.asarray(canvas).copy()

    def _object_colours(self, rng, family):
        if self._families == 1:
            hue = rng.random()
        else:
            hue = (family + rng.uniform(-0.35, 0.35)) / self._families % 1.0
        base = _hsv_to_rgb(hue, rng.uniform(0.55, 1.0), rng.uniform(0.6, 1.0))
        second = base * 0.35 if rng.random() < 0.5 else base + (255 - base) * 0.7
        return base, second

    def _draw_object(self, rng, image, label, centre, size):
        """Composite one object into `image` in place; returns its alpha (H, W) in [0, 1]."""
        shape, texture, family = _class_parts(label)
        angle = rng.uniform(0, 2 * np.pi)
        stretch = rng.uniform(0.8, 1.2)
        alpha = self._shape_alpha(SHAPES[shape], centre, size, angle, stretch)
        base, second = self._object_colours(rng, family)
        pattern = _texture(TEXTURES[texture], self.height, self.width, centre, size, angle)
        colour = np.where(pattern[..., None], second, base)
        image[:] = np.clip(image * (1 - alpha[..., None]) + colour * alpha[..., None], 0, 255).astype(np.uint8)
        return alpha

    def _draw_blob(self, rng, image, centre, size):
        """An untextured, unlabelled blob partly covering the object at `centre`."""
        offset = rng.uniform(0.3, 0.6) * size
        direction = rng.uniform(0, 2 * np.pi)
        where = (centre[0] + offset * np.cos(direction), centre[1] + offset * np.sin(direction))
        alpha = self._shape_alpha("circle", where, rng.uniform(0.25, 0.5) * size, 0.0, rng.uniform(0.6, 1.6))
        colour = _hsv_to_rgb(rng.random(), rng.uniform(0, 0.4), rng.uniform(0.2, 0.9))
        image[:] = (image * (1 - alpha[..., None]) + colour * alpha[..., None]).astype(np.uint8)

    def _shape_alpha(self, shape, centre, size, angle, stretch):
        s = _SUPERSAMPLE
        canvas = Image.new("L", (self.width * s, self.height * s), 0)
        draw = ImageDraw.Draw(canvas)
        cx, cy, r = centre[0] * s, centre[1] * s, size * s / 2

        def polygon(points):
            # Stretch along x, rotate, move to the centre.
            pts = np.asarray(points, np.float64) * [stretch, 1.0 / stretch] * r
            rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            return [tuple(p) for p in pts @ rot.T + [cx, cy]]

        def disc(radius, dx=0.0, dy=0.0, fill=255):
            x, y = cx + dx * r, cy + dy * r
            draw.ellipse([x - radius * r * stretch, y - radius * r / stretch, x + radius * r * stretch, y + radius * r / stretch], fill=fill)

        if shape == "circle":
            disc(1.0)
        elif shape == "ring":
            disc(1.0)
            disc(0.55, fill=0)
        elif shape == "crescent":
            disc(1.0)
            disc(0.85, 0.45 * np.cos(angle), 0.45 * np.sin(angle), fill=0)
        elif shape == "cross":
            a, b = 0.33, 1.0
            draw.polygon(polygon([(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]), fill=255)
        elif shape == "star":
            t = np.arange(10) * np.pi / 5
            radius = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
            draw.polygon(polygon(np.stack([radius * np.sin(t), -radius * np.cos(t)], 1)), fill=255)
        else:
            sides = {"square": 4, "triangle": 3, "hexagon": 6}[shape]
            t = np.arange(sides) * 2 * np.pi / sides + (np.pi / 4 if sides == 4 else 0)
            radius = 1.0 if sides != 4 else 1.25
            draw.polygon(polygon(np.stack([radius * np.sin(t), -radius * np.cos(t)], 1) * (0.85 if sides == 4 else 1.0)), fill=255)
        return np.asarray(canvas.reduce(s), np.float32) / 255.0


def _texture(name, height, width, centre, size, angle):
    """Boolean (H, W): where the second colour goes, in the object's own rotated frame."""
    if name == "solid":
        return np.zeros((height, width), bool)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    xx, yy = xx - centre[0], yy - centre[1]
    u = np.cos(angle) * xx + np.sin(angle) * yy
    v = -np.sin(angle) * xx + np.cos(angle) * yy
    period = max(size / 4.0, 3.0)
    if name == "stripes":
        return np.floor(u / (period / 2)) % 2 == 1
    if name == "checker":
        return (np.floor(u / (period / 2)) + np.floor(v / (period / 2))) % 2 == 1
    du = u - period * np.round(u / period)
    dv = v - period * np.round(v / period)
    return du * du + dv * dv < (0.3 * period) ** 2


def _hsv_to_rgb(h, s, v):
    """One HSV colour (h in [0, 1)) as float32 RGB in [0, 255]."""
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.asarray(rgb, np.float32) * 255


def _square_box(centre, size):
    half = size / 2
    return (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half)


def _mask_box(visible):
    rows = np.flatnonzero(visible.any(axis=1))
    cols = np.flatnonzero(visible.any(axis=0))
    return (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
