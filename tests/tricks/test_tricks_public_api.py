"""Every trick is a documented name of `kresnet`, and `import kresnet` still loads no backend."""

import subprocess
import sys

import kresnet
import kresnet.tricks
from tests.conftest import PROJECT_ROOT

PAPER_TRICKS = {  # name -> the paper section its docstring cites
    "scaled_learning_rate": "3.1", "warmup_cosine": "5.1", "WarmupStepDecay": "3.1", "NesterovL2SGD": "2.1",
    "zero_gamma": "3.1", "precision": "3.2", "label_smoothing_loss": "5.2", "DistillationModel": "5.3",
    "distillation_loss": "5.3", "MixupSchedule": "5.4",
}


def test_each_trick_is_exported_with_its_paper_section():
    assert set(PAPER_TRICKS) <= set(kresnet.tricks.__all__)
    for name in kresnet.tricks.__all__:
        assert getattr(kresnet, name) is getattr(kresnet.tricks, name), name
        assert name in kresnet.__all__, name
    for name, section in PAPER_TRICKS.items():
        summary = getattr(kresnet.tricks, name).__doc__.split("\n")[0]
        assert "section" in summary and section in summary, name


def test_import_kresnet_loads_no_deep_learning_backend():
    code = "import sys, kresnet; print(sorted(m for m in ('keras', 'tensorflow', 'torch', 'jax') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True).stdout
    assert out.strip() == "[]"
