"""The detection task on the run engine: Faster R-CNN from a recipe, scored with VOC07 (and COCO) mAP.

The run folder is `kresnet.runs`' (recipe, history, logs, checkpoints, model.weights.h5,
metrics.json, finished), plus classes.json.
"""

from kresnet.runs.folder import CLASSES, FINAL_WEIGHTS
from kresnet.console import say
from kresnet.runs.task import TaskRun, run_task
from kresnet.transfer.detection.runner import build_detector, build_variables, evaluate_detector, load_splits


class DetectionTask:
    """Object detection from a `DetectionRecipe`."""

    name = "detection"

    def evaluate_command(self, run):
        return f"kresnet transfer evaluate --checkpoint {run / FINAL_WEIGHTS}"

    def prepare(self, config, run, log):
        from kresnet.data.skips import SkipCounter
        from kresnet.runs.fit import epoch_steps
        from kresnet.transfer.detection.pipeline import make_dataset

        train, test = load_splits(config, progress=log)
        run.write_json(CLASSES, train.class_names)
        model = build_detector(config, len(train.class_names), log=log)
        build_variables(model, config)  # restoring a checkpoint needs a built model; evaluation reuses the compiled predict
        steps = epoch_steps(len(train), config.train.batch_size, config.train.steps_per_epoch)
        train_skips = SkipCounter()

        def stream(first_step):
            return make_dataset(train.records, config.train.batch_size, config.data.short_side, config.data.max_side,
                                config.data.max_boxes, training=True, flip=config.data.flip, seed=config.train.seed,
                                repeat=True, skip_counter=train_skips, first_batch=first_step)

        dataset = f"{config.data.source} {config.data.root or ''}".strip()
        return TaskRun(model, stream, steps, model_name=config.model.backbone,
                       dataset=f"{dataset}, {len(train)} images, {len(train.class_names)} classes",
                       skipped={"train": train_skips}, state={"test": test})

    def compile(self, job, optimizer, config):
        job.model.compile(optimizer=optimizer)  # the detector computes its own losses

    def evaluate(self, job, config, log):
        test = job.state["test"]
        log(f"evaluating on {len(test)} images")
        return evaluate_detector(job.model, config, test)


def train_detector(config, run_dir, log=say, verbose="auto", extra_callbacks=(), fault=None):
    """Train (or resume), evaluate, and return the metrics dict (a finished run's stored ones).

    Args:
        config: `DetectionRecipe`.
        run_dir: path of the run folder.
        log: callable for one-line progress messages.
        verbose: Keras `fit` verbosity.
        extra_callbacks: more Keras callbacks, after the run folder's own (tests interrupt runs with them).
        fault: the run folder's fault hook (tests simulate kills and full disks with it).
    """
    return run_task(DetectionTask(), config, run_dir, log=log, verbose=verbose, extra_callbacks=extra_callbacks,
                    fault=fault)
