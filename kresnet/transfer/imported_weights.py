"""Where `kresnet transfer import-weights` puts an imported model: the run folder `evaluate` and `predict` read."""

import pathlib

from kresnet.atomic_files import save_weights_atomically, write_json_atomically
from kresnet.runs.folder import CLASSES, FINAL_WEIGHTS, default_run_dir


def write_imported_model(model, class_names, recipe, source, out=None):
    """Write `<out>/model.weights.h5` and `<out>/classes.json` and say which command scores them.

    Args:
        model: the task's model holding the imported weights.
        class_names: list of str. Its classes, in output order.
        recipe: the recipe path or name the model was built from.
        source: the imported file, for the message.
        out: the run folder; default `runs/<recipe name>`.

    Returns:
        The written weights file.
    """
    run = pathlib.Path(out) if out else default_run_dir(recipe)
    run.mkdir(parents=True, exist_ok=True)
    save_weights_atomically(model, run / FINAL_WEIGHTS)
    write_json_atomically(run / CLASSES, class_names)
    print(f"{source} -> {run / FINAL_WEIGHTS} ({len(class_names)} classes); next: kresnet transfer evaluate {recipe} "
          f"--out {run}")
    return run / FINAL_WEIGHTS
