"""The task interface: what a task supplies, and `run_task`, the one routine that trains any task.

A task (classification, detection, segmentation, or yours) supplies five things:

    name                          "classification", ...: the run header and metrics.json say it
    evaluate_command(run)         the command that measures a finished run again
    prepare(config, run, log)     its data and its (uncompiled) model, as a `TaskRun`
    compile(job, optimizer, config)   the model compiled with the task's losses and metrics
    evaluate(job, config, log)    its numbers for metrics.json (percent, as the paper)

and the engine owns everything else, once for every task: the claim and lock of the run
folder, the finished-run rule, seeding, the precision policy, distribution, the learning-rate
schedule and optimizer from the recipe's shared sections, resume, checkpoints, history,
TensorBoard, skipped-image counts, the final weights and metrics.json.

A recipe of any task has the shared sections `meta`, `train` (epochs, batch_size,
steps_per_epoch, seed, checkpoint_every_steps, precision, steps_per_execution), `optimizer` and `schedule` (kresnet.runs.sections).
"""

import dataclasses
from typing import Any

from kresnet.console import say
from kresnet.errors import reraise_as_user_error
from kresnet.runs.distribution import setup_distribution
from kresnet.runs.fit import fit_run
from kresnet.runs.folder import FINAL_WEIGHTS, RunFolder
from kresnet.runs.report import core_metrics, run_header
from kresnet.runs.seeding import seed_run


@dataclasses.dataclass
class TaskRun:
    """One run of a task, as its `prepare` hands it to the engine.

    Args:
        model: the model to train (built, not compiled); the task's `compile` compiles it.
        train: callable(first_step) -> the endless training stream from that optimizer step of the run
            on: the batches an unkilled run trains on from there, so that a resumed run ends as an
            unkilled one (build it on `kresnet.data.order`).
        steps_per_epoch: optimizer steps per epoch.
        model_name: what the run header calls the model.
        dataset: what the run header says it trains on.
        export_model: the model whose weights are the run's `model.weights.h5`, when not `model`
            (the bare classifier inside a distillation wrapper).
        skipped: {split: `SkipCounter`} of unreadable images: reported each epoch and counted in metrics.json.
        fit_options: more `fit_run` arguments of the task (validation, mixup).
        state: whatever else the task's `evaluate` needs (its evaluation data, class names).
    """

    model: Any
    train: Any
    steps_per_epoch: int
    model_name: str
    dataset: str
    export_model: Any = None
    skipped: dict = dataclasses.field(default_factory=dict)
    fit_options: dict = dataclasses.field(default_factory=dict)
    state: dict = dataclasses.field(default_factory=dict)

    @property
    def weights_model(self):
        return self.export_model if self.export_model is not None else self.model


def learning_rate_schedule(config, steps_per_epoch):
    """The recipe's `[schedule]` with the linearly scaled peak rate of its `[optimizer]` and `[train]`.

    Args:
        config: a recipe with the shared sections.
        steps_per_epoch: optimizer steps per epoch.
    """
    from kresnet.tricks.schedules import build_schedule, scaled_learning_rate

    base_lr = scaled_learning_rate(config.optimizer.lr_per_256, config.train.batch_size)
    s = config.schedule
    return build_schedule(s.kind, base_lr, steps_per_epoch, config.train.epochs, s.warmup_epochs, s.step_epochs,
                          s.step_factor, s.power)


def build_task_optimizer(config, steps_per_epoch):
    """The recipe's SGD (coupled L2, optional NAG, no bias decay) on its learning-rate schedule."""
    from kresnet.tricks.optimizer import build_optimizer

    return build_optimizer(config.optimizer, learning_rate_schedule(config, steps_per_epoch))


def apply_run_settings(config):
    """What holds before any model of a recipe is built, for training and evaluation alike: the seed
    and the precision policy."""
    from kresnet.tricks.low_precision import set_precision

    seed_run(config.train.seed)
    set_precision(config.train.precision)


def run_task(task, config, run_dir, *, log=say, verbose="auto", extra_callbacks=(), fault=None):
    """Train (or resume) `task` on `config` into `run_dir`, evaluate it, and return the metrics dict.

    Running a finished run again returns its stored metrics without training or evaluating; a
    finished run whose metrics.json was removed evaluates its final weights again, and one whose
    model.weights.h5 was removed writes it again from its last checkpoint.

    Args:
        task: the task definition (see the module docstring).
        config: the task's resolved recipe.
        run_dir: the run folder; rerunning on the same folder resumes.
        log: callable for one-line messages.
        verbose: Keras `fit` verbosity.
        extra_callbacks: more Keras callbacks, after the run folder's own (tests interrupt runs with them).
        fault: the run folder's fault hook (tests simulate kills and full disks with it).
    """
    distribution = getattr(config, "distribution", None)
    plan = (setup_distribution(distribution.strategy, distribution.multi_host, distribution.cpu_devices)
            if distribution else setup_distribution())
    plan.check_batch(config.train.batch_size)
    with RunFolder(run_dir, fault=fault) as run:
        run.claim(config)
        if run.change.extended_from is not None:
            log(f"{run.path}: extending the run from {run.change.extended_from} to {config.train.epochs} epochs "
                f"(the learning-rate schedule of the epochs to come spans {config.train.epochs})")
        completed = run.completed_metrics(task.evaluate_command(run), log)
        if completed is not None:
            return completed
        apply_run_settings(config)
        with plan.scope:
            job = task.prepare(config, run, log)
        log(run_header(task.name, job.model_name, job.dataset, config.train.epochs, job.steps_per_epoch,
                       config.train.batch_size, run.path, plan.num_replicas))
        fit = None
        if run.finished and (run / FINAL_WEIGHTS).is_file():  # metrics.json was removed: measure the weights again
            log(f"{run.path}: training already finished, evaluating {run / FINAL_WEIGHTS}")
            job.weights_model.load_weights(run / FINAL_WEIGHTS)
        else:
            with plan.scope:
                task.compile(job, build_task_optimizer(config, job.steps_per_epoch), config)
            callbacks = list(extra_callbacks)
            if job.skipped:
                from kresnet.data.skips import skipped_images_callback

                callbacks.append(skipped_images_callback(job.skipped, log))
            try:
                fit = fit_run(run, job.model, job.train, epochs=config.train.epochs,
                              steps_per_epoch=job.steps_per_epoch, every_steps=config.train.checkpoint_every_steps,
                              steps_per_execution=config.train.steps_per_execution,
                              export_model=job.export_model, verbose=verbose, extra_callbacks=callbacks, log=log,
                              **job.fit_options)
            except Exception as error:  # a bad file's UserError, wrapped by tf.data
                reraise_as_user_error(error)
            run.save_weights(job.weights_model, FINAL_WEIGHTS)
        metrics = task.evaluate(job, config, log)
        metrics.update(core_metrics(task.name, fit, config.train.epochs, config.meta))
        if job.skipped:
            from kresnet.data.skips import skip_counts

            metrics["skipped_images"] = {**skip_counts(job.skipped), **metrics.get("skipped_images", {})}
        run.finish(metrics)
    return metrics
