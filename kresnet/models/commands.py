"""CLI commands about models: `kresnet models` and `kresnet import-weights`."""

import pathlib
from typing import Optional

import typer

from kresnet.errors import UserError


def models(
    image_size: int = typer.Option(224, help="Input size at which multiply-accumulates are counted."),
    match: Optional[str] = typer.Option(None, "--match", help="Only names containing this text, e.g. 50."),
    pretrained: bool = typer.Option(False, "--pretrained", help="Print the pretrained checkpoints instead: tag, origin, published accuracy, eval transform."),
    # The flag's old name, which elsewhere (`evaluate --weights TAG`) takes a value.
    old_flag: bool = typer.Option(False, "--weights", hidden=True),
):
    """Print every model: name, variant, trainable parameters and GMACs per image (or, with --pretrained, its pretrained tags)."""
    from kresnet.models import registry

    if old_flag:
        typer.echo("kresnet models --weights is now --pretrained", err=True)
    if pretrained or old_flag:
        from kresnet.models.presets import format_table

        rows = format_table(match)
        if len(rows) == 1:
            raise UserError(f"no pretrained weights match {match!r}; see `kresnet models --pretrained`")
        for row in rows:
            typer.echo(row)
        typer.echo("top-1/top-5: ImageNet val as published by timm (results-imagenet.csv) at size/crop/interp; "
                   "use: kresnet.create_model(model, weights=tag); timm's name (the hub id after timm/) works too")
        return
    from kresnet.models.complexity import count_macs, count_parameters, shape_only

    names = [name for name in registry.list_models() if match is None or match in name]
    if not names:
        raise UserError(f"no model name contains {match!r}; names are {', '.join(registry.list_models())}")
    typer.echo(f"{'name':<12}{'variant':<10}{'params':>14}{'GMACs@' + str(image_size):>12}")
    for name in names:
        spec = registry.model_spec(name)
        model = shape_only(lambda: registry.build_classifier(name, input_shape=[image_size, image_size, 3]))
        typer.echo(f"{name:<12}{spec.variant_label:<10}{count_parameters(model):>14,}{count_macs(model) / 1e9:>12.2f}")


def _parse_per_stage(text, option, example):
    """`"1,1,1,1"` -> `[1, 1, 1, 1]` (one positive int per stage), or a one-line error naming `option`."""
    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or min(values) < 1:
        raise UserError(f"{option} expects 4 positive integers like {example}; got {text!r}")
    return values


def parse_depths(text):
    """`--depths 1,1,1,1`: blocks per stage."""
    return _parse_per_stage(text, "--depths", "3,4,6,3")


def parse_widths(text):
    """`--widths 8,16,24,32`: base width of each stage."""
    return _parse_per_stage(text, "--widths", "64,128,256,512")


def import_weights(
    file: pathlib.Path = typer.Argument(..., help="PyTorch state dict: .safetensors or .pth (float32 or float16)."),
    model: str = typer.Option(..., "--model", help="kresnet model name, e.g. resnet50d (see `kresnet models`)."),
    out: pathlib.Path = typer.Option(..., "--out", help="Output: NAME.weights.h5 (weights) or NAME.keras (whole model)."),
    depths: Optional[str] = typer.Option(None, help="Blocks per stage when they differ from the name's, e.g. 1,1,1,1."),
):
    """Import timm / torchvision ResNet weights into a kresnet model and save them for Keras.

    timm and torchvision share one key naming and one layout, so the file alone is enough; a file of
    another layout than --model (B weights into ResNet, basic into bottleneck, ...) is an error.
    """
    from kresnet.models.weight_import import SizeMismatch, build_model_for, cli_flags, import_state_dict, infer_num_classes, load_state_dict

    if not (out.name.endswith(".weights.h5") or out.suffix == ".keras"):
        raise UserError(f"--out must end with .weights.h5 or .keras; got {out}")
    state = load_state_dict(file)
    try:
        keras_model = build_model_for(state, model, stage_depths=parse_depths(depths))
    except SizeMismatch as error:
        raise error.with_hint(cli_flags(depths="--depths")) from None
    import_state_dict(keras_model, state)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".keras":
        keras_model.save(out)
    else:
        keras_model.save_weights(out)
    classes = infer_num_classes(state)
    kind = f"classifier with {classes} classes" if classes else "backbone (no head in the file)"
    typer.echo(f"imported {len(state)} tensors from {file} into {model} ({kind}) -> {out}")
