"""The SLURM script of docs/scale.md ("Several hosts"), dry-run: fake `scontrol`, `srun` and `kresnet`
print what the real ones would be given, so the environment each process gets is checked."""

import re
import subprocess

import pytest

from kresnet.bundled_recipes import resolve_recipe
from kresnet.classification.config import load_classification_recipe
from tests.conftest import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "examples" / "slurm_multi_host.sh"
FAKES = {
    # SLURM's tools, as they answer on a two-node allocation.
    "scontrol": 'test "$*" = "show hostnames gpu[07-08]" && printf "gpu07\\ngpu08\\n"',
    "srun": 'for task in $(seq 0 $((SLURM_NTASKS - 1))); do SLURM_PROCID=$task "$@"; done',
    # One line per process: what kresnet would be started with.
    "kresnet": 'echo "$KERAS_BACKEND|$KERAS_DISTRIBUTION_JOB_ADDRESSES|$KERAS_DISTRIBUTION_NUM_PROCESSES|'
               '$KERAS_DISTRIBUTION_PROCESS_ID|$*"',
}


def _dry_run(tmp_path, job_id):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in FAKES.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_JOB_ID": str(job_id), "SLURM_NTASKS": "2"}
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line.split("|") for line in done.stdout.splitlines()]


def test_the_script_parses_and_asks_for_gpus():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    directives = re.findall(r"^#SBATCH (.*)$", SCRIPT.read_text(), flags=re.M)
    # Without a GPU request most clusters allocate none.
    assert any(d.startswith(("--gpus-per-node=", "--gres=gpu:")) for d in directives), directives
    assert "--ntasks-per-node=1" in directives


def test_each_process_gets_the_coordinator_its_index_and_a_port_of_its_job(tmp_path):
    processes = _dry_run(tmp_path, 4242424)
    port = 12000 + 4242424 % 20000
    assert [p[:4] for p in processes] == [["jax", f"gpu07:{port}", "2", "0"], ["jax", f"gpu07:{port}", "2", "1"]]
    assert processes[0][4] == processes[1][4]
    # The next job on the same first node listens elsewhere.
    assert _dry_run(tmp_path, 4242425)[0][1] == f"gpu07:{port + 1}"


def test_the_command_each_process_runs_is_a_valid_multi_host_recipe(tmp_path):
    arguments = _dry_run(tmp_path, 7)[0][4].split()
    assert arguments[:2] == ["train", "r50d"] and arguments[2:4] == ["--out", "runs/r50d"]
    sets = arguments[5::2]
    assert arguments[4::2] == ["--set"] * len(sets)
    config = load_classification_recipe(resolve_recipe(arguments[1]), sets)
    assert (config.distribution.strategy, config.distribution.multi_host) == ("data_parallel", True)


@pytest.mark.parametrize("document", ["docs/scale.md"])
def test_the_documented_script_is_this_file(document):
    text = (PROJECT_ROOT / document).read_text()
    assert f"```bash\n{SCRIPT.read_text()}```" in text
