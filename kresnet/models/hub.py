"""Fetch a pretrained file from the Hugging Face Hub and keep its conversion to Keras in a cache.

Downloads go through `huggingface_hub` (its cache, `HF_HOME`, `HF_HUB_OFFLINE`, progress bar).
The environment is read at call time, not at import, so a process can switch it. The converted
`.weights.h5` lives under `$KRESNET_CACHE` (default `~/.cache/kresnet`), keyed by the Hub
file's sha256, so a checkpoint is converted once and a new revision of it is converted anew.
"""

import dataclasses
import hashlib
import os
import pathlib
import re

from kresnet.errors import UserError

HUB_FILENAME = "model.safetensors"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclasses.dataclass(frozen=True)
class HubFile:
    """A downloaded (or cached) Hub file, its revision and its sha256."""

    hub_id: str
    path: pathlib.Path
    revision: str
    sha256: str


def hub_cache_dir():
    """`HF_HUB_CACHE`, else `$HF_HOME/hub`, else huggingface_hub's default, as huggingface_hub resolves it."""
    if os.environ.get("HF_HUB_CACHE"):
        return pathlib.Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return pathlib.Path(home).expanduser() / "hub"


def offline():
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true")


def kresnet_cache_dir():
    """`$KRESNET_CACHE`, else `~/.cache/kresnet`."""
    return pathlib.Path(os.environ.get("KRESNET_CACHE") or "~/.cache/kresnet").expanduser()


def file_url(hub_id):
    return f"https://huggingface.co/{hub_id}/resolve/main/{HUB_FILENAME}"


def fetch(hub_id):
    """The local `HubFile` of `hub_id`'s `model.safetensors`: from the Hub cache, else downloaded."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    cache = hub_cache_dir()
    try:
        path = hf_hub_download(hub_id, HUB_FILENAME, cache_dir=cache, local_files_only=offline())
    except LocalEntryNotFoundError:
        raise UserError(
            f"{hub_id}: not in the Hugging Face cache {cache} and "
            f"{'HF_HUB_OFFLINE is set' if offline() else 'the Hub is unreachable'}; fetch {file_url(hub_id)} "
            "and pass its path as weights=..., or run once online to cache it"
        ) from None
    except RepositoryNotFoundError:
        raise UserError(f"{hub_id}: no such repository on the Hugging Face Hub") from None
    except HfHubHTTPError as error:
        raise UserError(f"{hub_id}: download failed ({str(error).splitlines()[0]})") from None
    path = pathlib.Path(path)
    revision = path.parent.name
    blob = path.resolve()
    # In the Hub cache an LFS file is a link to blobs/<sha256>; otherwise hash the file itself.
    sha256 = blob.name if _SHA256.match(blob.name) else _hash(blob)
    return HubFile(hub_id, path, revision, sha256)


def _hash(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def evict(hub_file):
    """Remove a corrupt or partial Hub file (its snapshot link and blob) so the next call downloads it anew."""
    for path in {hub_file.path, hub_file.path.resolve()}:
        if path.exists() or path.is_symlink():
            path.unlink()


def converted_path(hub_file, architecture):
    """Where the converted `.weights.h5` of `hub_file` for one architecture (name and overrides) lives."""
    key = hashlib.sha256(f"{hub_file.sha256}:{architecture}".encode()).hexdigest()[:16]
    return kresnet_cache_dir() / "weights" / hub_file.hub_id.replace("/", "--") / f"{hub_file.revision[:12]}-{key}.weights.h5"
