"""A Hugging Face Hub cache in the real `huggingface_hub` layout, built from the timm reference files."""

import hashlib
import os

import numpy as np

# Hub repo -> reference file (tests/fixtures/reference). Each is a narrow stand-in: one block per stage, 10 classes.
REFERENCE_REPOS = {
    "timm/resnet50d.gluon_in1k": "bottleneck_d_1111",
    "timm/resnet50.gluon_in1k": "bottleneck_b_1111",
    "timm/resnet18d.ra2_in1k": "basic_d_1111",
}
REVISION = "0123456789abcdef0123456789abcdef01234567"


def add_to_hub_cache(hub_dir, repo_id, data, revision=REVISION):
    """models--<org>--<name>/{blobs/<sha256>, snapshots/<rev>/model.safetensors -> blob, refs/main}."""
    root = hub_dir / f"models--{repo_id.replace('/', '--')}"
    sha256 = hashlib.sha256(data).hexdigest()
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / sha256).write_bytes(data)
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / "model.safetensors").symlink_to(os.path.relpath(root / "blobs" / sha256, snapshot))  # relative, as huggingface_hub links
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    return snapshot / "model.safetensors"


def timm_state_dict_bytes(model):
    """The `.safetensors` bytes of the state dict timm would save for a kresnet classifier or backbone."""
    from keras import layers
    from safetensors.numpy import save

    from kresnet.models.weight_import import torch_modules

    state = {}
    for layer, name in torch_modules(model):
        weights = [np.asarray(w) for w in layer.get_weights()]
        if isinstance(layer, layers.Conv2D):
            state[f"{name}.weight"] = weights[0].transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
        elif isinstance(layer, layers.Dense):
            state[f"{name}.weight"], state[f"{name}.bias"] = weights[0].T, weights[1]
        else:
            for suffix, value in zip(("weight", "bias", "running_mean", "running_var"), weights):
                state[f"{name}.{suffix}"] = value
    return save({key: np.ascontiguousarray(value, np.float32) for key, value in state.items()})


def make_offline_hub(tmp_path, monkeypatch, reference_dir, files=None):
    """Populate a Hub cache under tmp_path and point HF_HOME / HF_HUB_OFFLINE / KRESNET_CACHE at it.

    Args:
        files: dict or None. Hub repo -> `.safetensors` bytes, in place of (or beside) the reference files.
    """
    hub_dir = tmp_path / "hf_home" / "hub"
    contents = {repo_id: (reference_dir / f"{stem}.safetensors").read_bytes() for repo_id, stem in REFERENCE_REPOS.items()}
    for repo_id, data in {**contents, **(files or {})}.items():
        add_to_hub_cache(hub_dir, repo_id, data)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("KRESNET_CACHE", str(tmp_path / "kresnet_cache"))
    return hub_dir


IMAGENET_STAND_IN = "timm/resnet50d.a3_in1k"  # a tag whose eval transform (160 of 168, bicubic) is not the paper's


def add_imagenet_stand_in(hub_dir, reference_dir, repo_id=IMAGENET_STAND_IN):
    """The narrow ResNet-D reference with a 1000-class head (ImageNet's count, so ImageNet's names apply), cached as `repo_id`."""
    import numpy as np
    from safetensors.numpy import load_file, save

    state = load_file(reference_dir / "bottleneck_d_1111.safetensors")
    rng = np.random.default_rng(0)
    features = state["fc.weight"].shape[1]
    state["fc.weight"] = rng.normal(0.0, 0.5, (1000, features)).astype(np.float16)
    state["fc.bias"] = rng.normal(0.0, 0.5, (1000,)).astype(np.float16)
    return add_to_hub_cache(hub_dir, repo_id, save(state))
