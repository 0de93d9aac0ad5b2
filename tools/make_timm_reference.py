"""Make the timm reference fixtures: weights and logits (tests/fixtures/reference/), eval pixels (tests/fixtures/decode/).

Weights: builds small random-weight timm ResNets (one block per stage, narrow stages), saves
each state dict as float16 `.safetensors`, and records timm's eval-mode logits on two fixed
inputs. kresnet's import must reproduce these logits; that is the proof that its
architecture is exactly timm's.

Eval pixels: opens each image of `EVAL_PIXEL_FILES` as timm's datasets do (PIL,
`convert("RGB")`) and applies the eval transform of `resolve_data_config` +
`create_transform` for a pretrained tag, as timm's validate script does; stores the
pixels (unnormalised, uint8) per case. kresnet's eval transform of the same file must
match them within one grey level.

Needs the `[reference]` extra (timm, torch), which kresnet itself never imports:

    pip install -e ".[reference]"
    python tools/make_timm_reference.py                      # both
    python tools/make_timm_reference.py --only eval-pixels   # tests/fixtures/decode/timm_eval_pixels.*

It also records one training step of the ResNet-D (`TRAIN_STEP`): timm's train-mode loss on
the 96 px input with fixed labels, and its train-mode logits on the 97 px input after one plain
SGD step; kresnet's `train_on_batch` must reproduce both (tests/models/test_training_step_parity.py).

The output is deterministic for a given timm, torch and Pillow version (seeded).
"""

import argparse
import json
import pathlib

import numpy as np
import PIL
import timm
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file
from timm.data import create_transform, resolve_data_config
from timm.models.resnet import BasicBlock, Bottleneck, ResNet

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures"

NUM_CLASSES = 10
# Distinct, narrow stage widths (a wiring mistake between stages changes a shape); the stems
# keep timm's widths (7x7: 64; deep: 32, 32, 64), which kresnet's names use by default.
STAGE_WIDTHS = (8, 16, 24, 32)
DEEP_D = {"stem_type": "deep", "stem_width": 32, "avg_down": True}
MODELS = {
    # file stem: (timm block, extra ResNet arguments, kresnet model name)
    "bottleneck_b_1111": (Bottleneck, {}, "resnet50b"),
    "bottleneck_d_1111": (Bottleneck, DEEP_D, "resnet50d"),
    "basic_d_1111": (BasicBlock, DEEP_D, "resnet18d"),
}
# One plain SGD step (no momentum, no decay) with cross-entropy on the mean over the batch.
TRAIN_STEP = {"model": "bottleneck_d_1111", "labels": [3, 7], "learning_rate": 0.1}
# 97 is odd: it exercises the ceil-mode, pad-excluding average pool of ResNet-D's shortcut.
INPUT_SIZES = (96, 97)
BATCH = 2


def randomise_batch_norms(model, generator):
    """Random BN affine parameters and running statistics: no branch is zero (timm zero-inits
    the last BN of each block) and inference-mode BN is not the identity."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            shape = module.weight.shape
            module.weight.data = torch.rand(shape, generator=generator) + 0.5
            module.bias.data = (torch.rand(shape, generator=generator) - 0.5) * 0.4
            module.running_mean.data = (torch.rand(shape, generator=generator) - 0.5) * 0.4
            module.running_var.data = torch.rand(shape, generator=generator) * 1.5 + 0.5


def float16_state_dict(model):
    """The state dict with floating tensors rounded to float16; the model gets the rounded values back."""
    rounded = {}
    for key, value in model.state_dict().items():
        rounded[key] = value.half() if value.is_floating_point() else value
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in rounded.items()})
    return {k: v.contiguous() for k, v in rounded.items()}


def training_step(model, inputs):
    """timm's side of one training step: the train-mode loss on the 96 px input before the step, and the
    train-mode logits (batch statistics) on the 97 px input after it."""
    model.train()
    labels = torch.tensor(TRAIN_STEP["labels"])
    optimizer = torch.optim.SGD(model.parameters(), lr=TRAIN_STEP["learning_rate"])
    loss = torch.nn.functional.cross_entropy(model(inputs[96]), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        logits = model(inputs[97])
    return {**TRAIN_STEP, "loss": float(loss.detach()), "logits_after": logits.numpy().astype(np.float32).tolist()}


def write_weights(out):
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    inputs = {}
    for size in INPUT_SIZES:
        images = torch.randn((BATCH, 3, size, size), generator=generator)
        inputs[size] = images
        np.save(out / f"input_{size}_nhwc.npy", images.permute(0, 2, 3, 1).numpy().astype(np.float32))
    meta = {
        "timm": timm.__version__,
        "torch": torch.__version__.split("+")[0],
        "stage_widths": list(STAGE_WIDTHS),
        "stage_depths": [1, 1, 1, 1],
        "num_classes": NUM_CLASSES,
        "models": {},
    }
    for stem, (block, arguments, kresnet_name) in MODELS.items():
        model = ResNet(block=block, layers=[1, 1, 1, 1], channels=STAGE_WIDTHS, num_classes=NUM_CLASSES, **arguments)
        randomise_batch_norms(model, generator)
        state = float16_state_dict(model)
        save_file(state, str(out / f"{stem}.safetensors"))
        model.eval()
        with torch.no_grad():
            for size, images in inputs.items():
                logits = model(images).numpy().astype(np.float32)
                np.save(out / f"{stem}_input_{size}_logits.npy", logits)
        params = sum(p.numel() for p in model.parameters())
        timm_arguments = {**arguments, "block": block.__name__}
        meta["models"][stem] = {"kresnet": kresnet_name, "timm_arguments": timm_arguments, "params": params}
        if stem == TRAIN_STEP["model"]:
            meta["train_step"] = training_step(model, inputs)
        print(f"{stem}: {params:,} parameters, {(out / f'{stem}.safetensors').stat().st_size:,} bytes")
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


# Every file of tests/fixtures/decode (made by tools/make_sample_images.py), and real photos and
# small synthetic greyscale and CMYK JPEGs that other fixtures already hold.
EVAL_PIXEL_FILES = [
    *sorted(f"decode/{path.name}" for path in (FIXTURES / "decode").iterdir() if path.suffix in (".jpg", ".png", ".gif")),
    "coco/images/000000142238.jpg",
    "voc/VOCdevkit/VOC2007/JPEGImages/000001.jpg",
    "imagenet/samples/n03804744/n03804744_8_grey.JPEG",
    "imagenet/samples/n07747607/n07747607_9_cmyk.JPEG",
]
# timm's names of three tags with different eval transforms: bicubic / bilinear, crop_pct 0.875 / 0.95.
EVAL_PIXEL_MODELS = ("resnet50d.gluon_in1k", "resnet50.tv_in1k", "resnet50.a1_in1k")
SMALL_SIZE = 48  # every file with every tag at this input size keeps the reference small ...
FULL_SIZE_STRIDE = 4  # ... and a few at the tag's own size (224), every 4th row and column stored
FULL_SIZE_CASES = (
    ("coco/images/000000142238.jpg", "resnet50d.gluon_in1k"),
    ("voc/VOCdevkit/VOC2007/JPEGImages/000001.jpg", "resnet50.a1_in1k"),
    ("decode/progressive_420_257x333.jpg", "resnet50.tv_in1k"),
)


def timm_eval_pixels(path, config):
    """timm's eval transform of one image file as uint8 (S, S, 3): its float output, unnormalised."""
    transform = create_transform(**config)
    with Image.open(path) as image:
        tensor = transform(image.convert("RGB"))
    pixels = (tensor.permute(1, 2, 0).numpy() * np.array(config["std"]) + np.array(config["mean"])) * 255.0
    rounded = np.round(pixels)
    assert np.abs(pixels - rounded).max() < 0.01, "timm's eval pixels are whole grey levels before normalising"
    return rounded.astype(np.uint8)


def write_eval_pixels(out):
    cases = [(path, model, SMALL_SIZE) for path in EVAL_PIXEL_FILES for model in EVAL_PIXEL_MODELS]
    cases += [(path, model, None) for path, model in FULL_SIZE_CASES]
    models = {name: timm.create_model(name, pretrained=False) for name in EVAL_PIXEL_MODELS}
    arrays, meta = {}, []
    for index, (path, model, size) in enumerate(cases):
        config = resolve_data_config({"input_size": (3, size, size)} if size else {}, model=models[model])
        key = f"case_{index:03d}"
        stride = FULL_SIZE_STRIDE if size is None else 1
        arrays[key] = timm_eval_pixels(FIXTURES / path, config)[::stride, ::stride]
        config = {**config, "input_size": list(config["input_size"])}
        meta.append({"key": key, "file": path, "timm_model": model, "config": config, "stride": stride})
    np.savez_compressed(out / "timm_eval_pixels.npz", **arrays)
    versions = {"timm": timm.__version__, "torch": torch.__version__.split("+")[0],
                "torchvision": torchvision.__version__.split("+")[0], "pillow": PIL.__version__}
    text = json.dumps({"versions": versions, "cases": meta}, indent=1)
    (out / "timm_eval_pixels.json").write_text(text + "\n")
    print(f"{len(cases)} eval-pixel cases, {(out / 'timm_eval_pixels.npz').stat().st_size:,} bytes")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["weights", "eval-pixels"], help="write one of the two references")
    parser.add_argument("--out", type=pathlib.Path, default=FIXTURES / "reference", help="folder of the weights reference")
    args = parser.parse_args()
    if args.only != "eval-pixels":
        write_weights(args.out)
    if args.only != "weights":
        write_eval_pixels(FIXTURES / "decode")


if __name__ == "__main__":
    main()
