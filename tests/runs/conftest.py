"""A finished tiny run, made once per session, that tests copy and then damage or rerun."""

import shutil

import pytest

from tests.runs.tiny_run import train_command


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A folder holding `run/` (a finished 2-epoch `kresnet train` run) and `cache/` (its synthetic data)."""
    from kresnet.cli import main

    root = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KRESNET_CACHE", str(root / "cache"))
        try:
            main(train_command(root / "run", "train.epochs=2"))
        except SystemExit as exit_info:
            assert not exit_info.code
    return root


@pytest.fixture
def run(finished_run, tmp_path, monkeypatch):
    """A copy of the finished run, free to change, with the data cache it was trained on."""
    monkeypatch.setenv("KRESNET_CACHE", str(finished_run / "cache"))
    shutil.copytree(finished_run / "run", tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
    return tmp_path / "run"


@pytest.fixture
def error_line(run_cli, capsys):
    """Run `kresnet ARGS`, expect exit status 2, and return its one `error:` line."""

    def run(arguments):
        assert run_cli(arguments) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
        return err

    return run
