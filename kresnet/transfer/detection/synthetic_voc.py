"""Write `kresnet.data.synthetic` scenes as a Pascal VOC folder, so the demo runs through the real VOC reader."""

import pathlib

from PIL import Image

from kresnet.data.synthetic import SceneGenerator, class_name
from kresnet.data.synthetic_dataset import GENERATOR_VERSION, build_once, cache_dir

FOLDER = "synthetic"  # the "year" folder inside VOCdevkit; splits are "synthetic/trainval", "synthetic/test"


def synthetic_class_names(num_classes):
    """Class names of the synthetic generator, index = label.

    Args:
        num_classes: int.
    """
    return [class_name(k, num_classes) for k in range(num_classes)]


def write_synthetic_voc(devkit_dir, num_classes=4, image_size=64, train_images=200, test_images=50, seed=0,
                        max_objects=3):
    """Generate scenes into `devkit_dir/synthetic/{Annotations,JPEGImages,ImageSets/Main}`.

    Boxes are written as VOC does (1-based inclusive corners), so the reader's
    shift gives back the generator's continuous boxes.

    Args:
        devkit_dir: path of the `VOCdevkit` folder to create.
        num_classes: int.
        image_size: int. Square image side.
        train_images: int. Images in `trainval`.
        test_images: int. Images in `test` (generator indices after the training ones).
        seed: int.
        max_objects: int. Objects per scene are 1..max_objects.
    """
    root = pathlib.Path(devkit_dir) / FOLDER
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    generator = SceneGenerator(num_classes=num_classes, image_size=image_size, seed=seed)
    names = synthetic_class_names(num_classes)
    for split, first, count in (("trainval", 0, train_images), ("test", train_images, test_images)):
        ids = []
        for index in range(first, first + count):
            scene = generator.scene(index, min_objects=1, max_objects=max_objects)
            image_id = f"{index:06d}"
            Image.fromarray(scene.image).save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
            (root / "Annotations" / f"{image_id}.xml").write_text(
                _annotation_xml(image_id, scene, names, generator.width, generator.height))
            ids.append(image_id)
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return pathlib.Path(devkit_dir)


def cached_synthetic_voc(num_classes=4, image_size=64, train_images=200, test_images=50, seed=0, max_objects=3):
    """The synthetic VOC devkit for these settings from the cache (`$KRESNET_CACHE`), generated on first use.

    Args:
        num_classes, image_size, train_images, test_images, seed, max_objects: see `write_synthetic_voc`.
    """
    key = (f"synthetic-voc-v{GENERATOR_VERSION}-c{num_classes}-s{image_size}-n{train_images}-t{test_images}"
           f"-o{max_objects}-seed{seed}")
    return build_once(
        cache_dir() / key,
        lambda folder: write_synthetic_voc(folder, num_classes, image_size, train_images, test_images, seed, max_objects),
    )


def _annotation_xml(image_id, scene, names, width, height):
    objects = []
    for box, label in zip(scene.boxes, scene.labels):
        xmin, ymin, xmax, ymax = (int(round(float(v))) for v in box)
        objects.append(
            f"  <object>\n    <name>{names[label]}</name>\n    <difficult>0</difficult>\n"
            f"    <bndbox><xmin>{xmin + 1}</xmin><ymin>{ymin + 1}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>\n"
            f"  </object>\n")
    return (f"<annotation>\n  <folder>{FOLDER}</folder>\n  <filename>{image_id}.jpg</filename>\n"
            f"  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>\n"
            + "".join(objects) + "</annotation>\n")
