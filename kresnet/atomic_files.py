"""Files that are either the old or the new version, never half of one: write a temporary, then rename.

`os.replace` is atomic on POSIX and Windows, so a kill at any instant leaves the previous
file (or none) in place. A failed write (disk full, permissions) becomes a one-line
`UserError` naming the file. Weights are serialised to HDF5 in memory and written with
plain Python I/O: h5py writing to a full disk leaves objects that fail again when freed
(one "Exception ignored" traceback each) and can crash the interpreter.

`fault` is a callable `(phase, path)` called at "write" (nothing written yet) and "replace"
(the temporary file is complete, the rename is next): tests raise from it to simulate a
kill or a full disk at each phase of a save.
"""

import errno
import io
import json
import os
import pathlib

from kresnet.errors import UserError

PHASES = ("write", "replace")


class SaveFailed(UserError):
    """A run-folder file could not be written; the previous version of it, if any, is kept."""


def temporary_name(path):
    """`<dir>/.partial-<name>`: same folder (so the rename is atomic), same suffix (h5py and Keras check it)."""
    path = pathlib.Path(path)
    return path.with_name(".partial-" + path.name)


def write_atomically(path, write, fault=None):
    """Call `write(temporary_path)`, then rename the temporary file to `path`.

    Args:
        path: the final file.
        write: callable that writes the whole file to the path it is given.
        fault: optional `(phase, path)` hook, see the module docstring.
    """
    path = pathlib.Path(path)
    scratch = temporary_name(path)
    try:
        if fault is not None:
            fault("write", scratch)
        write(scratch)
        if fault is not None:
            fault("replace", scratch)
        os.replace(scratch, path)
    except OSError as error:
        _remove(scratch)
        reason = os.strerror(error.errno) if error.errno else str(error).splitlines()[0]
        hint = "; free some disk space and rerun to resume" if error.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        kept = "; the previous version is kept" if path.exists() else ""
        raise SaveFailed(f"{path}: could not be written ({reason}){kept}{hint}") from None
    return path


def write_text_atomically(path, text, fault=None):
    """Write `text` (UTF-8) to `path` through a temporary file."""
    return write_atomically(path, lambda scratch: pathlib.Path(scratch).write_text(text, encoding="utf-8"), fault)


def write_json_atomically(path, value, fault=None):
    """Write `value` as indented JSON to `path` through a temporary file, creating its folder."""
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomically(path, json.dumps(value, indent=2) + "\n", fault)


def save_weights_atomically(model, path, fault=None, writer=True):
    """What `model.save_weights(path)` writes (a `.weights.h5`), through a temporary file.

    Every process of a multi-host job serialises the weights (on JAX reading a variable spread
    over the job is a collective that all processes must enter); only the writer writes.
    """
    content = weights_h5_bytes(model)
    if not writer:
        return path
    return write_atomically(path, lambda scratch: _write_bytes(scratch, content), fault)


def weights_h5_bytes(model):
    """The bytes of `model.save_weights` (the same HDF5 layout), built in memory."""
    from keras.src.saving import saving_lib

    if not model.built:
        raise ValueError(f"cannot save the weights of {model.name}: the model is not built")
    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    try:
        saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set())
    finally:
        store.close()
    return buffer.getvalue()


def _write_bytes(path, content):
    with open(path, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass
