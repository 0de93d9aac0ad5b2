"""What a transfer run folder holds, and finding it from a weights file inside it.

Weights sit at `<run>/model.weights.h5` or one level down (`<run>/checkpoints/...`), so
`evaluate` and `predict` can take the run's recipe and class names from the weights alone.
"""

import json
import pathlib

from kresnet.runs.folder import CLASSES, RECIPE


def run_folder_of(weights, marker=RECIPE):
    """The run folder holding `weights` (its folder or the one above, whichever has `marker`), or None."""
    if weights is None:
        return None
    weights = pathlib.Path(weights)
    for folder in (weights.parent, weights.parent.parent):
        if (folder / marker).is_file():
            return folder
    return None


def read_class_names(weights):
    """The class names the run of `weights` was trained on, or None when its `classes.json` is not found."""
    run = run_folder_of(weights, marker=CLASSES)
    return None if run is None else json.loads((run / CLASSES).read_text(encoding="utf-8"))
