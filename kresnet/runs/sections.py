"""Recipe tables that every task shares: what a recipe reproduces, how long and how it trains, the SGD
family of optimizers and the learning-rate schedule. The engine (`kresnet.runs.task`) reads these.

A task subclasses these and re-declares only the fields whose defaults differ
(detection trains at a different learning rate than classification, say), so
each key is validated and documented in one place.
"""

import dataclasses

import sys

from kresnet.recipe import section, setting
from kresnet.tricks.low_precision import PRECISIONS


@dataclasses.dataclass
class PaperReference:
    """What the recipe reproduces; not used by training. Tasks add their `expected_*` metrics."""

    title: str = setting("", help="one line describing the run")
    paper_table: str = setting("", help="the paper table this row comes from, e.g. 'Table 6'")
    paper_row: str = setting("", help="the row label in that table")


def paper_reference(class_name, **expected):
    """A task's `[meta]` table: `PaperReference` plus the paper's numbers it expects, each a percentage.

    Args:
        class_name: the name of the table's class.
        **expected: {metric: help}, e.g. `top1="the paper's ImageNet top-1 (%)"` makes `expected_top1`.
    """
    fields = [(f"expected_{metric}", float | None, setting(None, minimum=0.0, maximum=100.0, help=text))
              for metric, text in expected.items()]
    return _schema(class_name, fields, bases=(PaperReference,))


def fused_batch_norm_setting():
    """`model.fused_batch_norm`, the same key in every task's `[model]` table (`kresnet.models.fused_batch_norm`)."""
    return setting(True, help="BatchNorm on the backend's fused kernel (PyTorch, TensorFlow): same weights and results, "
                              "faster; false: Keras' generic layer")


def task_recipe(class_name, task=None, **tables):
    """A task's recipe schema: its tables in the order a recipe lists them, the shared ones included.

    Args:
        class_name: the name of the schema's class.
        task: the recipe's `task = "..."` key (transfer recipes name their task), or None.
        **tables: {table name: dataclass}, e.g. `meta=Meta, model=Model, train=Train`.
    """
    fields = [("task", str, setting(task, choices=[task]))] if task else []
    fields += [(name, table, section(table)) for name, table in tables.items()]
    return _schema(class_name, fields)


def with_defaults(table, class_name, doc, **defaults):
    """A shared table with a task's own defaults (detection trains at another learning rate than
    classification, say); every key keeps its validation and help.

    Args:
        table: the shared table (a dataclass of this module).
        class_name: the name of the task's table.
        doc: why the task's defaults are these (where they come from).
        **defaults: {key: the task's default}.
    """
    inherited = {field.name: field for field in dataclasses.fields(table)}
    unknown = sorted(set(defaults) - set(inherited))
    if unknown:
        raise TypeError(f"with_defaults: {table.__name__} has no keys {unknown}")
    fields = [(key, inherited[key].type, setting(value, **inherited[key].metadata)) for key, value in defaults.items()]
    schema = _schema(class_name, fields, bases=(table,))
    schema.__doc__ = doc
    return schema


def _schema(class_name, fields, bases=()):
    schema = dataclasses.make_dataclass(class_name, fields, bases=bases)
    schema.__module__ = sys._getframe(2).f_globals["__name__"]  # the task's config module, where it is documented
    return schema


@dataclasses.dataclass
class Train:
    """How long and how a run trains; every task has these keys and may add its own."""

    epochs: int = setting(120, minimum=1)
    batch_size: int = setting(256, minimum=1, help="global batch size")
    steps_per_epoch: int = setting(0, minimum=0, help="0: one pass over the training set")
    seed: int = setting(0, minimum=0)
    checkpoint_every_steps: int = setting(0, minimum=0, help="0: checkpoint at the end of each epoch only")
    precision: str = setting("float32", choices=list(PRECISIONS), help="auto: bfloat16/float16 mixed on an accelerator, float32 on CPU")
    steps_per_execution: int = setting(1, minimum=1, help="optimizer steps per compiled call (fewer host round-trips "
                                       "on an accelerator); divides steps_per_epoch; PyTorch runs 1")


@dataclasses.dataclass
class SgdOptimizer:
    """SGD with momentum, the weight decay added to the gradient (L2) before momentum, as in the paper.

    Defaults are the paper's classification baseline: NAG, momentum 0.9, 1e-4 decay,
    lr 0.1 per 256 images.
    """

    lr_per_256: float = setting(0.1, exclusive_minimum=0.0, help="lr = lr_per_256 * batch_size / 256")
    momentum: float = setting(0.9, minimum=0.0, maximum=0.999)
    nesterov: bool = setting(True)
    weight_decay: float = setting(1e-4, minimum=0.0, help="L2 coefficient added to the gradient")
    no_bias_decay: bool = setting(False, help="no decay on biases and BN gamma/beta")


@dataclasses.dataclass
class Schedule:
    """Linear warmup, then step, cosine or poly decay, per step. Defaults: the paper's baseline."""

    kind: str = setting("step", choices=["step", "cosine", "poly"], help="poly: GluonCV's FCN schedule")
    warmup_epochs: float = setting(0.0, minimum=0.0, help="linear warmup from 0, per step")
    step_epochs: list[int] = setting([30, 60, 90], minimum=1, help="step decay boundaries")
    step_factor: float = setting(0.1, exclusive_minimum=0.0, maximum=1.0)
    power: float = setting(0.9, exclusive_minimum=0.0, help="poly exponent")

    def problems_with(self, epochs):
        """One-line problems of this schedule for a run of `epochs` epochs (empty when consistent)."""
        problems = []
        if self.warmup_epochs >= epochs:
            problems.append(f"schedule.warmup_epochs: expected fewer than train.epochs ({epochs}), got {self.warmup_epochs}")
        if self.kind == "step" and any(e >= epochs for e in self.step_epochs):
            problems.append(f"schedule.step_epochs: expected epochs below train.epochs ({epochs}), got {self.step_epochs}")
        return problems
