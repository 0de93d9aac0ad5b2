"""The `kresnet` command line: one front door for models, data, training, benchmarks and transfer.

Command modules import their heavy dependencies (Keras, TensorFlow) inside the
command functions, so `kresnet --help` stays fast.
"""

import os
import sys

# TensorFlow's C++ start-up chatter (CUDA probing, CPU features) hides the command's own output.
_USER_TF_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import typer  # noqa: E402

from kresnet.errors import UserError  # noqa: E402

app = typer.Typer(
    help="Bag of Tricks ResNets for Keras 3 (JAX, PyTorch, TensorFlow).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(
    help="Datasets: check folders, convert them to TFRecords, generate synthetic data, export CIFAR-10 as JPEG folders.",
    no_args_is_help=True,
)
bench_app = typer.Typer(help="Benchmarks: input pipeline and model training speed.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@app.callback()
def _console(
    verbose: bool = typer.Option(False, "--verbose", help="Also show TensorFlow's, XLA's and absl's C++ log lines."),
):
    """Bag of Tricks ResNets for Keras 3 (JAX, PyTorch, TensorFlow)."""
    if verbose:  # runs before any command imports TensorFlow
        from kresnet.data.decoder_messages import show_native_logs

        show_native_logs()
        if _USER_TF_LOG_LEVEL is None:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"

app.add_typer(bench_app, name="bench")


def _register_commands():
    from kresnet.models import commands as model_commands

    app.command("models")(model_commands.models)
    app.command("import-weights")(model_commands.import_weights)
    from kresnet.data import commands as data_commands

    data_commands.register(data_app, bench_app)

    from kresnet.benchmarks import commands as benchmark_commands

    bench_app.command("model")(benchmark_commands.bench_model)

    from kresnet.bundled_recipes import recipes

    app.command("recipes")(recipes)
    from kresnet.classification import commands as training_commands

    app.command("train")(training_commands.train)
    app.command("evaluate")(training_commands.evaluate)
    app.command("predict")(training_commands.predict)
    app.command("export")(training_commands.export)
    app.command("ablate")(training_commands.ablate)
    from kresnet.classification import plots

    app.command("plot")(plots.plot)


def _register_transfer():
    # `kresnet` never depends on `transfer` except here, at the front door, lazily.
    try:
        from kresnet.transfer.cli import app as transfer_app
    except ImportError:
        return
    app.add_typer(transfer_app, name="transfer")


_register_commands()
_register_transfer()


def main(argv=None):
    """Run the CLI; user mistakes end as one `error:` line and exit status 2, without a traceback."""
    from kresnet.data.decoder_messages import hide_decoder_messages

    hide_decoder_messages()  # unreadable images are skipped and counted; libjpeg's bare line would only alarm
    try:
        app(args=argv, standalone_mode=True)
    except UserError as error:
        from kresnet.console import end_progress_line

        end_progress_line()  # a save error mid-epoch: on a line of its own, not on the end of the bar
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
