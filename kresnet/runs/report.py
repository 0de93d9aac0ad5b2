"""What every run says and records the same way: its header line and the core keys of metrics.json."""

import keras


def run_header(task, model, dataset, epochs, steps_per_epoch, global_batch, run, devices=1):
    """The one line a run prints before training: what trains on what, how long, where.

    Args:
        task: "classification", "detection" or "segmentation".
        model: the model's name.
        dataset: what it trains on (path or kind, images, classes).
        epochs: total epochs.
        steps_per_epoch: optimizer steps per epoch.
        global_batch: images per optimizer step over all devices.
        run: the run folder.
        devices: devices that share each batch (data-parallel training).
    """
    shared = f" over {devices} devices" if devices > 1 else ""
    return (f"{task}: {model} on {dataset}; {epochs} epochs x {steps_per_epoch} steps, global batch {global_batch}{shared}, "
            f"backend {keras.backend.backend()}, {keras.config.dtype_policy().name}, run folder {run}")


def core_metrics(task, fit, epochs, meta, skipped_images=None):
    """The keys metrics.json has in every task; the task adds its own numbers (in percent).

    Args:
        task: the task's name.
        fit: the `FitResult` of the run (None when this process trained nothing).
        epochs: total epochs of the recipe.
        meta: the recipe's `[meta]` table (paper row and the expected number).
        skipped_images: images the readers skipped, when the task counts them.
    """
    metrics = {
        "task": task,
        "backends": fit.backends if fit else [keras.backend.backend()],
        **evaluation_context(meta),
        "epochs": epochs,
        "steps": fit.optimizer_steps if fit else None,
        "train_seconds": fit.train_seconds if fit else 0.0,
    }
    if skipped_images is not None:
        metrics["skipped_images"] = skipped_images
    return metrics


def evaluation_context(meta):
    """What an evaluation records beside its numbers (metrics.json and eval_metrics.json): backend, precision,
    the software versions, and the recipe's paper row with its expected numbers.

    Args:
        meta: the recipe's `[meta]` table.
    """
    context = {"backend": keras.backend.backend(), "precision": keras.config.dtype_policy().name, "versions": software_versions()}
    for key, value in vars(meta).items():
        if key.startswith(("paper_", "expected_")):
            context[key] = value
    return context


def software_versions():
    """{"python", "numpy", "keras", "<backend framework>"}: version strings of what a number was measured with.

    The backend framework is the one Keras runs on (`jax`, `torch` or `tensorflow`), plus TensorFlow
    whatever the backend, since it runs the input pipeline.
    """
    import platform

    import numpy

    versions = {"python": platform.python_version(), "numpy": numpy.__version__, "keras": keras.__version__}
    for framework in dict.fromkeys((keras.backend.backend(), "tensorflow")):
        module = __import__(framework)
        versions[framework] = module.__version__
    return versions
