"""`kresnet bench model`: training and inference images/s, per backend, optionally against keras-hub and timm."""

import dataclasses
import json
import os
import subprocess
import sys
from typing import Optional

import typer

from kresnet.benchmarks.model_speed import SELF_PEERS
from kresnet.errors import UserError

BACKENDS = ("jax", "torch", "tensorflow")
DTYPES = ("float32", "mixed_float16", "mixed_bfloat16")


def _parse_backends(text):
    backends = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise UserError(f"--backends expects a comma list of {', '.join(BACKENDS)}; got {text!r}")
    return backends


def _parse_peers(text):
    from kresnet.models.registry import list_models

    peers = [part.strip() for part in (text or "").split(",") if part.strip()]
    known = ["keras-hub", "timm", *SELF_PEERS, *list_models()]
    unknown = [peer for peer in peers if peer not in known]
    if unknown:
        raise UserError(
            f"--vs expects keras-hub, timm, {', '.join(SELF_PEERS)} or kresnet model names (see `kresnet models`); "
            f"got {unknown[0]!r}"
        )
    return peers


def bench_model(
    model: str = typer.Option("resnet50d", "--model", help="kresnet model name."),
    batch: int = typer.Option(32, min=1, help="Global batch size."),
    size: int = typer.Option(224, min=32, help="Square input size."),
    steps: int = typer.Option(10, min=1, help="Timed steps (median reported)."),
    warmup: int = typer.Option(3, min=1, help="Untimed steps first (compilation)."),
    dtype: str = typer.Option("float32", help="Dtype policy: float32, mixed_float16 or mixed_bfloat16."),
    num_classes: int = typer.Option(1000, min=1, help="Classifier outputs."),
    depths: Optional[str] = typer.Option(None, help="Blocks per stage instead of the name's, e.g. 1,1,1,1."),
    backends: Optional[str] = typer.Option(None, help="Run each backend in its own process, e.g. jax,torch,tensorflow."),
    vs: Optional[str] = typer.Option(
        None, "--vs", help="Peers timed in turns: keras-hub, timm, the model itself built another way (generic-bn: on Keras' generic "
             "BatchNorm; keras-layers: on Keras' own Conv2D and pools; channels_last or channels_first: in that layout) and/or "
             "kresnet names, e.g. timm,keras-hub,resnet50b."
    ),
    timm_python: Optional[str] = typer.Option(
        None, "--timm-python", help="Python with torch and timm that runs timm's step for --vs timm (default: this one)."
    ),
    data_format: str = typer.Option(
        "channels_last", "--data-format",
        help="Layout of the Keras models: channels_last or channels_first (TensorFlow on CPU has only channels_last).",
    ),
    jit_compile: str = typer.Option(
        "auto", "--jit-compile", help="auto, on or off, as train.jit_compile (XLA on JAX/TensorFlow, torch.compile on PyTorch)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON rows instead of a table."),
):
    """Training-step and inference images/s of a model on the current (or each) Keras backend."""
    from kresnet.benchmarks.model_speed import SpeedResult, benchmark, format_table
    from kresnet.models.commands import parse_depths
    from kresnet.models.registry import model_spec

    model_spec(model)
    if dtype not in DTYPES:
        raise UserError(f"--dtype expects one of {', '.join(DTYPES)}; got {dtype!r}")
    if data_format not in ("channels_last", "channels_first"):
        raise UserError(f"--data-format expects channels_last or channels_first; got {data_format!r}")
    from kresnet.classification.config import JIT_COMPILE

    if jit_compile not in JIT_COMPILE:
        raise UserError(f"--jit-compile expects auto, on or off; got {jit_compile!r}")
    if data_format == "channels_first" and not backends:
        from kresnet.classification.build import check_channels_first_supported

        check_channels_first_supported("--data-format channels_first")
    peers = _parse_peers(vs)
    stage_depths = parse_depths(depths)
    typer.echo(
        f"# bench model={model} batch={batch} size={size} steps={steps} warmup={warmup} dtype={dtype}"
        f" classes={num_classes} depths={stage_depths or 'default'} data_format={data_format} jit_compile={jit_compile}",
        err=True,
    )
    if backends:
        rows = []
        for backend in _parse_backends(backends):
            argv = ["bench", "model", "--model", model, "--batch", batch, "--size", size, "--steps", steps,
                    "--warmup", warmup, "--dtype", dtype, "--num-classes", num_classes, "--data-format", data_format, "--jit-compile", jit_compile, "--json"]
            argv += ["--depths", depths] if depths else []
            argv += ["--vs", vs] if vs else []
            argv += ["--timm-python", timm_python] if timm_python else []
            command = [sys.executable, "-m", "kresnet.cli", *map(str, argv)]
            typer.echo(f"# running on {backend} ...", err=True)
            done = subprocess.run(command, env={**os.environ, "KERAS_BACKEND": backend}, capture_output=True, text=True)
            if done.returncode != 0:
                raise UserError(f"the benchmark failed on {backend}: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
            rows += [SpeedResult(**row) for row in json.loads(done.stdout.strip().splitlines()[-1])]
    else:
        rows = benchmark(
            model, batch=batch, size=size, steps=steps, warmup=warmup, dtype=dtype, num_classes=num_classes,
            stage_depths=stage_depths, peers=peers, timm_python=timm_python, data_format=data_format,
            jit_compile=jit_compile,
        )
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(row) for row in rows]))
    else:
        typer.echo(format_table(rows))

