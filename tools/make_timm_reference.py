"""Make the timm reference fixtures of the weight-import tests (tests/fixtures/reference/).

Builds small random-weight timm ResNets (one block per stage, narrow stages), saves each
state dict as float16 `.safetensors`, and records timm's eval-mode logits on two fixed
inputs. kresnet's import must reproduce these logits; that is the proof that its
architecture is exactly timm's. Needs the `[reference]` extra (timm, torch), which kresnet
itself never imports:

    pip install -e ".[reference]"
    python tools/make_timm_reference.py            # rewrites tests/fixtures/reference/

It also records one training step of the ResNet-D (`TRAIN_STEP`): timm's train-mode loss on
the 96 px input with fixed labels, and its train-mode logits on the 97 px input after one plain
SGD step; kresnet's `train_on_batch` must reproduce both (tests/models/test_training_step_parity.py).

The output is deterministic for a given timm and torch version (seeded).
"""

import argparse
import json
import pathlib

import numpy as np
import timm
import torch
from safetensors.torch import save_file
from timm.models.resnet import BasicBlock, Bottleneck, ResNet

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "reference"
    parser.add_argument("--out", type=pathlib.Path, default=default_out)
    out = parser.parse_args().out
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


if __name__ == "__main__":
    main()
