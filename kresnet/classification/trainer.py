"""The classification task on the run engine: its data, its model, its evaluation.

The run folder (layout, lock, checkpoints, resume) is `kresnet.runs`'; model.weights.h5
holds the classifier after each finished epoch, so `kresnet evaluate` works mid-run.
"""

from kresnet.classification.build import build_models, check_channels_first_supported, compile_classifier
from kresnet.console import say
from kresnet.runs.task import TaskRun, run_task


class ClassificationTask:
    """Image classification from a `ClassificationRecipe`: top-1/top-5 on the validation split."""

    name = "classification"

    def __init__(self, data=None):
        self.data = data  # a ready `TrainingData` (the CLI builds it early to show progress), else from the recipe

    def evaluate_command(self, run):
        return f"kresnet evaluate {run.path}"

    def prepare(self, config, run, log):
        data = self.data
        if data is None:
            from kresnet.classification.data import build_training_data

            data = build_training_data(config)
        model, classifier = build_models(config, class_names=data.class_names)
        fit_options = dict(validation=data.val, validation_steps=data.validation_steps)
        if config.tricks.mixup_alpha > 0:
            from kresnet.tricks.mixup_schedule import MixupSchedule

            fit_options["mixup"] = MixupSchedule(config.tricks.mixup_alpha, config.train.epochs, data.steps_per_epoch,
                                                 config.tricks.mixup_off_epochs, seed=config.train.seed + 2000)
        if data.class_names:
            from kresnet.runs.folder import CLASSES

            run.write_json(CLASSES, list(data.class_names))
        where = config.data.root if config.data.source == "imagenet" else "synthetic data"
        name = config.model.name
        if config.model.weights:
            frozen = [f"stem + stages 1-{config.model.freeze_stages} frozen"] if config.model.freeze_stages else []
            frozen += ["BatchNorm frozen"] if config.model.freeze_bn else []
            name += f" fine-tuned from {config.model.weights}" + (f" ({', '.join(frozen)})" if frozen else "")
        return TaskRun(model, data.train, data.steps_per_epoch, model_name=name,
                       dataset=f"{where}, {data.num_classes} classes", export_model=classifier,
                       skipped=data.skipped or {}, fit_options=fit_options, state={"data": data})

    def compile(self, job, optimizer, config):
        compile_classifier(job.model, optimizer, config)

    def evaluate(self, job, config, log):
        data = job.state["data"]
        if job.model.optimizer is None:  # a finished run measured again: nothing was compiled for training
            compile_classifier(job.model, "sgd", config)
        results = job.model.evaluate(data.val, steps=data.validation_steps, verbose=0, return_dict=True)
        return {"top1": float(results["top1"]) * 100, "top5": float(results["top5"]) * 100,
                "val_loss": float(results["loss"])}


def train(config, out_dir, data=None, verbose="auto", extra_callbacks=(), log=say, fault=None):
    """Train (or resume) the recipe into `out_dir`; returns the final metrics dict.

    Args:
        config: a `ClassificationRecipe`.
        out_dir: the run folder; rerunning on the same folder resumes.
        data: a `TrainingData`; built from the recipe by default.
        verbose: Keras verbosity (progress bar by default).
        extra_callbacks: more Keras callbacks (tests use them to interrupt a run).
        log: callable for one-line messages.
        fault: the run folder's fault hook (tests simulate kills and full disks with it).
    """
    if config.model.data_format == "channels_first":  # refused before the run folder or any data is made
        check_channels_first_supported()
    return run_task(ClassificationTask(data), config, out_dir, log=log, verbose=verbose,
                    extra_callbacks=extra_callbacks, fault=fault)
