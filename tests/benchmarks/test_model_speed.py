"""`kresnet bench model` runs a tiny model, compares with keras-hub, and spans backends in subprocesses."""

import collections

import keras
import pytest

from kresnet.benchmarks.model_speed import SpeedResult, _interleaved_seconds, format_table, round_orders

TINY = ["--model", "resnet50d", "--depths", "1,1,1,1", "--batch", "2", "--size", "32", "--steps", "2", "--warmup", "1",
        "--num-classes", "3"]


def _rows(output):
    return [line.split() for line in output.strip().splitlines()[1:]]


def test_bench_model_prints_kresnet_and_keras_hub_rows(run_cli, capsys):
    assert run_cli(["bench", "model", *TINY, "--vs", "keras-hub"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [row[1] for row in rows] == ["resnet50d", "keras-hub"]
    assert all(row[0] == keras.config.backend() for row in rows)
    assert float(rows[0][-1]) == 1.0 and float(rows[1][-1]) > 0
    assert all(float(value) > 0 for row in rows for value in row[-3:])


def test_bench_model_times_kresnet_peers_in_the_same_process(run_cli, capsys):
    assert run_cli(["bench", "model", *TINY, "--vs", "resnet50b"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [row[1] for row in rows] == ["resnet50d", "resnet50b"]
    assert run_cli(["bench", "model", *TINY, "--vs", "keras-hub,resnet99"]) == 2
    assert ("--vs expects keras-hub, timm, generic-bn, keras-layers, channels_last, channels_first or kresnet model names"
            in capsys.readouterr().err)


def test_bench_model_times_the_model_built_other_ways_in_the_same_rounds(run_cli, capsys, monkeypatch):
    import kresnet.models.factory
    from kresnet.models import channels_last_layers

    built = []
    original = kresnet.models.factory.create_model

    def recording(name, **kw):
        built.append((name, kw["fused_batch_norm"], kw["data_format"], channels_last_layers.conv2d_layer().__module__))
        return original(name, **kw)

    monkeypatch.setattr(kresnet.models.factory, "create_model", recording)
    ours, keras_own = channels_last_layers.Conv2D.__module__, keras.layers.Conv2D.__module__
    if keras.config.backend() == "tensorflow":  # no NCHW convolutions on a CPU: one line, before any model is built
        assert run_cli(["bench", "model", *TINY, "--vs", "generic-bn,channels_first"]) == 2
        assert "--vs channels_first: TensorFlow on CPU supports only channels_last" in capsys.readouterr().err
        assert built == []
        peers, layouts = "generic-bn,keras-layers", ["channels_last"] * 3
    else:
        peers, layouts = "generic-bn,keras-layers,channels_first", ["channels_last"] * 3 + ["channels_first"]
    assert run_cli(["bench", "model", *TINY, "--vs", peers]) == 0
    rows = _rows(capsys.readouterr().out)
    labels = ["resnet50d", *[f"resnet50d/{peer}" for peer in peers.split(",")]]
    assert [row[1] for row in rows] == labels
    assert [row[2] for row in rows] == ["NHWC" if layout == "channels_last" else "NCHW" for layout in layouts]
    expected = [("resnet50d", True, "channels_last", ours), ("resnet50d", False, "channels_last", ours),
                ("resnet50d", True, "channels_last", keras_own), ("resnet50d", True, "channels_first", ours)]
    assert built == expected[:len(labels)]


def test_bench_model_runs_a_backend_in_its_own_process(run_cli, capsys):
    assert run_cli(["bench", "model", *TINY, "--backends", keras.config.backend()]) == 0
    rows = _rows(capsys.readouterr().out)
    assert len(rows) == 1 and rows[0][:2] == [keras.config.backend(), "resnet50d"]


def test_unknown_backend_and_dtype_are_one_line_errors(run_cli, capsys):
    assert run_cli(["bench", "model", *TINY, "--backends", "mxnet"]) == 2
    assert "--backends expects" in capsys.readouterr().err
    assert run_cli(["bench", "model", *TINY, "--dtype", "float8"]) == 2
    assert "--dtype expects" in capsys.readouterr().err
    assert run_cli(["bench", "model", *TINY, "--jit-compile", "maybe"]) == 2
    assert "--jit-compile expects auto, on or off" in capsys.readouterr().err


def test_jit_compile_off_reaches_the_compiled_models(run_cli, capsys, monkeypatch):
    import keras

    compiled = []
    original = keras.Model.compile
    monkeypatch.setattr(keras.Model, "compile", lambda self, **kw: (compiled.append(kw["jit_compile"]), original(self, **kw))[1])
    assert run_cli(["bench", "model", *TINY, "--jit-compile", "off"]) == 0
    assert compiled == [False]


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_rounds_put_every_model_in_every_place_and_after_every_other_equally_often(count):
    labels = "abcde"[:count]
    order = []
    steps = {label: (lambda label=label: order.append(label)) for label in labels}
    cycle = len(round_orders(count))
    _interleaved_seconds(steps, warmup=1, steps=2 * cycle)
    rounds = [order[count * (1 + k) : count * (2 + k)] for k in range(2 * cycle)]  # after the warm-up steps
    assert all(sorted(r) == list(labels) for r in rounds)
    places = collections.Counter((place, label) for r in rounds for place, label in enumerate(r))
    assert set(places.values()) == {2 * cycle // count}
    # Every ordered pair (who runs right after whom) occurs, equally often.
    within = collections.Counter(pair for r in rounds for pair in zip(r, r[1:]))
    assert len(set(within.values())) == 1 and len(within) == count * (count - 1)


def test_channels_first_rows_or_a_one_line_error_on_tensorflow_cpu(run_cli, capsys):
    code = run_cli(["bench", "model", *TINY, "--vs", "keras-hub", "--data-format", "channels_first"])
    captured = capsys.readouterr()
    if keras.config.backend() == "tensorflow":
        assert code == 2
        assert "--data-format channels_first: TensorFlow on CPU supports only channels_last" in captured.err
    else:
        assert code == 0
        rows = _rows(captured.out)
        assert [row[1] for row in rows] == ["resnet50d", "keras-hub"]
        assert all("NCHW" in row for row in rows)


def test_table_ratio_is_relative_to_the_first_row_of_each_backend():
    make = lambda backend, model, speed: SpeedResult(model, backend, "float32", 8, 64, speed, 1.0, 1.0, 1.0)  # noqa: E731
    table = format_table([make("jax", "a", 10.0), make("jax", "b", 5.0), make("torch", "a", 4.0)])
    ratios = [line.split()[-1] for line in table.splitlines()[1:]]
    assert ratios == ["1.00", "0.50", "1.00"]


STUB_TIMM_WORKER = """
import sys
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "quit":
        break
    assert line.strip() in ("train", "infer")
    print("done", flush=True)
"""


def test_bench_model_times_timm_in_turns_through_its_worker(run_cli, capsys, tmp_path, monkeypatch):
    # A stub worker stands in for timm (not installed here): this checks the turns and the rows, not a speed.
    import sys

    from kresnet.benchmarks import timm_peer

    stub = tmp_path / "stub_worker.py"
    stub.write_text(STUB_TIMM_WORKER)
    monkeypatch.setattr(timm_peer, "WORKER", str(stub))
    tiny = [arg for arg in TINY if arg not in ("--depths", "1,1,1,1")]
    tiny[tiny.index("resnet50d")] = "resnet18"
    assert run_cli(["bench", "model", *tiny, "--vs", "timm", "--timm-python", sys.executable]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [row[1:4] for row in rows] == [["resnet18", "NHWC", "float32"], ["timm", "resnet18", "NHWC"]]
    assert all(float(value) > 0 for row in rows for value in row[-4:])
    assert run_cli(["bench", "model", *tiny, "--vs", "timm", "--timm-python", str(tmp_path / "missing")]) == 2
    assert "--timm-python expects an executable Python" in capsys.readouterr().err
