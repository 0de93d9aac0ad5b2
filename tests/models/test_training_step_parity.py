"""One training step from timm's weights is timm's step: the loss, and the logits after a plain SGD
update (`train_step` in tests/fixtures/reference/meta.json, made by tools/make_timm_reference.py).

On TensorFlow it holds with oneDNN's CPU kernels (TensorFlow's default on x86) and without them
(`TF_ENABLE_ONEDNN_OPTS=0`, read when TensorFlow starts, so in a fresh process).
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from kresnet.models.weight_import import build_model_for, import_state_dict, infer_stage_depths, load_state_dict
from tests.conftest import FIXTURES, PROJECT_ROOT

REFERENCE = FIXTURES / "reference"
STEP = json.loads((REFERENCE / "meta.json").read_text())["train_step"]
# Measured max |logit difference| after the step: JAX 4.1e-6, PyTorch 5.7e-6, TensorFlow 6.1e-6 with
# oneDNN and 6.3e-6 without; the step itself moves the logits by up to 2.0.
LOGITS_TOLERANCE = 1e-4


def one_step():
    """kresnet's side: import timm's weights, `train_on_batch` once with SGD, return (loss, logits after)."""
    state = load_state_dict(REFERENCE / f"{STEP['model']}.safetensors")
    model = build_model_for(state, "resnet50d", stage_depths=infer_stage_depths(state))
    model = import_state_dict(model, state)
    model.compile(optimizer=keras.optimizers.SGD(STEP["learning_rate"]),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    labels = np.eye(10, dtype="float32")[STEP["labels"]]
    loss = model.train_on_batch(np.load(REFERENCE / "input_96_nhwc.npy"), labels)
    after = model(np.load(REFERENCE / "input_97_nhwc.npy"), training=True)
    return float(loss), keras.ops.convert_to_numpy(after).tolist()


def _check(loss, logits):
    assert loss == pytest.approx(STEP["loss"], rel=1e-5)
    assert np.abs(np.asarray(logits) - np.asarray(STEP["logits_after"])).max() <= LOGITS_TOLERANCE


def test_one_sgd_step_from_timm_weights_matches_timm():
    _check(*one_step())


@pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="oneDNN is TensorFlow's CPU kernel library: the other backends never read TF_ENABLE_ONEDNN_OPTS",
)
def test_the_same_step_on_tensorflow_without_onednn():
    script = "import json; from tests.models.test_training_step_parity import one_step; print(json.dumps(one_step()))"
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    _check(*json.loads(done.stdout.strip().splitlines()[-1]))
