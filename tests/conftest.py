"""Shared test fixtures: the backend under test, seeds, and the sample data in tests/fixtures."""

import atexit
import os
import pathlib
import shutil
import tempfile


def _share_jax_compilations():
    """One JAX compilation cache for this pytest run and the processes its tests start.

    Many tests start `kresnet` processes (resume after a kill, multi-host, reruns) that compile the same
    small programs again; on a 2-core CPU each compilation takes seconds. The cache holds XLA's compiled
    executables, keyed by the program and compile options, so a hit runs the very same executable. It
    lives in a fresh folder, removed at exit, so nothing carries over from another version. Set before
    Keras imports JAX, which reads these variables then; the child processes inherit them.
    """
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    folder = tempfile.mkdtemp(prefix="kresnet-tests-jax-cache-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ.update(JAX_COMPILATION_CACHE_DIR=folder, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")


_share_jax_compilations()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

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
