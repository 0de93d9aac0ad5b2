"""Shared test fixtures: the backend under test, seeds, and the sample data in tests/fixtures."""

import pathlib

import keras
import numpy as np
import pytest

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[1]
# Everything a test reads lives in the repository (provenance and licences: tests/fixtures/README.md).
FIXTURES = PROJECT_ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def testdata():
    """The sample data folder, tests/fixtures: real and hand-made files in the standard formats."""
    return FIXTURES


@pytest.fixture(autouse=True)
def _seed_and_float32_policy():
    """Every test starts from the same seed and the float32 policy, whatever a previous test set."""
    keras.utils.set_random_seed(0)
    np.random.seed(0)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
    keras.config.set_image_data_format("channels_last")


@pytest.fixture
def run_cli():
    """Run `kresnet ARGS...` in-process; returns the exit status (0 on success)."""
    from kresnet.cli import main

    def run(argv):
        try:
            main([str(arg) for arg in argv])
        except SystemExit as exit_info:
            return exit_info.code or 0
        return 0

    return run
