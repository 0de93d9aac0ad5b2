"""Make the hand-made samples of tests/fixtures (no third-party content, so no licence beyond the project's).

- `imagenet/samples/<synset>/*.JPEG`: an ILSVRC-style class-per-synset folder, one small
  synthetic JPEG per class, odd sizes, one greyscale and one CMYK JPEG (both occur in ImageNet).
- `voc-quirks/VOCdevkit/VOC2007`: one image whose XML has what real annotation tools write and
  the devkit's own files do not: float coordinates, an empty `<difficult/>`, a float `<width>`.
- `labelme-coco/`: what labelme's `labelme2coco.py --labels labels.txt` writes: `annotations.json`
  (category 0 `_background_`, image and annotation ids from 0, `file_name` "JPEGImages/x.jpg"
  relative to the JSON, polygon segmentations, bbox and area of the polygon's pixel mask) and
  `JPEGImages/`, with the `labels.txt` it was given.
- `decode/`: the photos of the ADE20K, COCO and VOC fixtures re-encoded in the forms a decoder
  meets (baseline and progressive JPEG, 4:4:4 / 4:2:2 / 4:2:0 chroma, greyscale, CMYK, odd and
  tiny sizes, PNG with alpha, palette GIF): the inputs of the eval-pixel test against timm.

    python tools/make_sample_images.py     # rewrites those folders; deterministic

Needs only numpy and Pillow (kresnet's own dependencies).
"""

import json
import pathlib

import numpy as np
from PIL import Image, ImageDraw

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures"
# Ten real synset ids (sorted order gives the class indices), each with a width x height that is
# odd or non-square, and the JPEG mode its file is written in.
SYNSETS = [
    ("n01440764", (75, 50), "RGB"),
    ("n01443537", (50, 75), "RGB"),
    ("n01860187", (97, 64), "RGB"),
    ("n02077923", (64, 97), "RGB"),
    ("n02110185", (121, 83), "RGB"),
    ("n02165105", (83, 121), "RGB"),
    ("n02669723", (66, 66), "RGB"),
    ("n03297495", (101, 57), "RGB"),
    ("n03804744", (57, 101), "L"),
    ("n07747607", (89, 89), "CMYK"),
]

VOC_QUIRKS_XML = """<annotation>
	<folder>VOC2007</folder>
	<filename>000001.jpg</filename>
	<size>
		<width>120.0</width>
		<height>90</height>
		<depth>3</depth>
	</size>
	<object>
		<name>cat</name>
		<difficult/>
		<bndbox>
			<xmin>10.5</xmin>
			<ymin>20.25</ymin>
			<xmax>60.5</xmax>
			<ymax>80.75</ymax>
		</bndbox>
	</object>
	<object>
		<name>dog</name>
		<truncated>1</truncated>
		<difficult>1</difficult>
		<bndbox>
			<xmin>70</xmin>
			<ymin>5</ymin>
			<xmax>118</xmax>
			<ymax>50</ymax>
		</bndbox>
	</object>
</annotation>
"""


def synthetic_photo(width, height, seed):
    """A smooth colour gradient with an ellipse and a bar: compresses small, resizes without aliasing."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    low, high = rng.uniform(0, 255, (2, 3))
    ramp = (x / width + y / height)[..., None] / 2
    image = Image.fromarray((low + (high - low) * ramp).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    box = [width * 0.2, height * 0.25, width * 0.7, height * 0.8]
    draw.ellipse(box, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw.rectangle([width * 0.75, 0, width * 0.85, height], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return image


def write_imagenet_samples():
    root = FIXTURES / "imagenet" / "samples"
    for seed, (synset, (width, height), mode) in enumerate(SYNSETS):
        folder = root / synset
        folder.mkdir(parents=True, exist_ok=True)
        suffix = {"RGB": "", "L": "_grey", "CMYK": "_cmyk"}[mode]
        synthetic_photo(width, height, seed).convert(mode).save(folder / f"{synset}_{seed}{suffix}.JPEG", quality=85)


def write_voc_quirks():
    year = FIXTURES / "voc-quirks" / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (year / sub).mkdir(parents=True, exist_ok=True)
    synthetic_photo(120, 90, 100).save(year / "JPEGImages" / "000001.jpg", quality=85)
    (year / "Annotations" / "000001.xml").write_text(VOC_QUIRKS_XML)
    (year / "ImageSets" / "Main" / "trainval.txt").write_text("000001\n")


LABELME_LABELS = ["__ignore__", "_background_", "cat", "dog"]
# Per image: (file stem, width, height, [(label, polygon [x, y, ...])...]); labelme writes a
# rectangle as its four corners.
LABELME_SHAPES = [
    ("cat_and_dog", 64, 48, [("cat", [4, 6, 30, 6, 30, 40, 4, 40]), ("dog", [34, 10, 60, 10, 60, 44, 34, 44])]),
    ("two_dogs", 48, 64, [("dog", [6, 4, 40, 4, 40, 28, 6, 28]), ("dog", [10.5, 36.5, 38.5, 34.5, 30.5, 60.5])]),
]


def write_labelme_coco():
    root = FIXTURES / "labelme-coco"
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (root / "labels.txt").write_text("\n".join(LABELME_LABELS) + "\n")
    # labelme2coco: class id = line number - 1, so `_background_` is category 0.
    category_ids = {name: line - 1 for line, name in enumerate(LABELME_LABELS) if name != "__ignore__"}
    data = {
        "info": {"description": None, "url": None, "version": None, "year": 2025, "contributor": None,
                 "date_created": "2025-01-01 00:00:00.000000"},
        "licenses": [{"url": None, "id": 0, "name": None}],
        "type": "instances",
        "images": [],
        "categories": [{"supercategory": None, "id": i, "name": name} for name, i in category_ids.items()],
        "annotations": [],
    }
    for image_id, (stem, width, height, shapes) in enumerate(LABELME_SHAPES):
        synthetic_photo(width, height, 200 + image_id).save(root / "JPEGImages" / f"{stem}.jpg", quality=85)
        data["images"].append({"license": 0, "url": None, "file_name": f"JPEGImages/{stem}.jpg", "height": height,
                               "width": width, "date_captured": None, "id": image_id})
        for label, polygon in shapes:
            mask = Image.new("L", (width, height))
            ImageDraw.Draw(mask).polygon([(x, y) for x, y in zip(polygon[::2], polygon[1::2])], fill=1)
            ys, xs = np.nonzero(np.asarray(mask))
            bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
            data["annotations"].append({"id": len(data["annotations"]), "image_id": image_id,
                                        "category_id": category_ids[label], "segmentation": [polygon],
                                        "area": float(len(xs)), "bbox": bbox, "iscrowd": 0})
    (root / "annotations.json").write_text(json.dumps(data))
# name: (source photo under tests/fixtures, crop box (left, top, right, bottom) or None, size, mode, save options)
DECODE_SAMPLES = {
    "baseline_444_301x227.jpg": ("ade20k/images/ADE_val_00000001.jpg", None, (301, 227), "RGB", {"quality": 92, "subsampling": 0}),
    "baseline_422_389x211.jpg": ("ade20k/images/ADE_val_00000002.jpg", (0, 60, 500, 331), (389, 211), "RGB", {"quality": 88, "subsampling": 1}),
    "progressive_420_257x333.jpg": ("coco/images/000000439180.jpg", (200, 0, 478, 360), (257, 333), "RGB",
                                    {"quality": 85, "subsampling": 2, "progressive": True}),
    "grey_199x263.jpg": ("voc/VOCdevkit/VOC2007/JPEGImages/000001.jpg", None, (199, 263), "L", {"quality": 90}),
    "grey_progressive_163x121.jpg": ("ade20k/images/ADE_val_00000001.jpg", (100, 100, 500, 400), (163, 121), "L",
                                     {"quality": 80, "progressive": True}),
    "cmyk_211x173.jpg": ("ade20k/images/ADE_val_00000002.jpg", (50, 20, 450, 348), (211, 173), "CMYK", {"quality": 90}),
    "tiny_wide_150x37.jpg": ("coco/images/000000439180.jpg", (0, 150, 640, 310), (150, 37), "RGB", {"quality": 75}),
    "alpha_97x61.png": ("ade20k/images/ADE_val_00000001.jpg", (300, 200, 494, 322), (97, 61), "RGBA", {}),
    "palette_83x71.gif": ("voc/VOCdevkit/VOC2012/JPEGImages/000001.jpg", (50, 100, 300, 315), (83, 71), "P", {}),
}


def write_decode_samples():
    folder = FIXTURES / "decode"
    folder.mkdir(exist_ok=True)
    for name, (source, box, size, mode, options) in DECODE_SAMPLES.items():
        with Image.open(FIXTURES / source) as photo:
            image = photo.convert("RGB").resize(size, Image.LANCZOS, box=box)
        if mode == "RGBA":
            # A left-to-right alpha ramp: a decoder must drop alpha (as PIL's convert("RGB")), not blend it.
            image.putalpha(Image.linear_gradient("L").rotate(90).resize(size))
        elif mode == "P":
            image = image.quantize(64)
        else:
            image = image.convert(mode)
        image.save(folder / name, **options)


if __name__ == "__main__":
    write_imagenet_samples()
    write_voc_quirks()
    write_labelme_coco()
    write_decode_samples()
