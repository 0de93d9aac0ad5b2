"""The run folder every task trains into: its file names, its lock, and how each file is written.

    <run>/recipe.toml        the resolved recipe (a rerun must use the same one: it resumes)
    <run>/history.csv        one row per finished epoch, numbered from 1 as the console
    <run>/logs/train/        TensorBoard scalars
    <run>/checkpoints/       the full training state (weights, optimizer, epoch and step)
    <run>/model.weights.h5   the trained model
    <run>/metrics.json       the evaluation
    <run>/finished           written last: only a folder holding it is a finished run

Every file is written under a temporary name and renamed. One process writes
(`writer=True`, by default the primary process of a multi-process job) and holds the
folder's lock; the others write nothing and take no lock, but read checkpoints to resume.
"""

import dataclasses
import json
import pathlib
import tomllib

from kresnet.errors import UserError
from kresnet.recipe import TASK_COMMANDS
from kresnet.atomic_files import save_weights_atomically, write_text_atomically
from kresnet.runs.lock import RunLock
from kresnet.runs.recipe_change import RecipeChange, check_recipe_change

RECIPE = "recipe.toml"
HISTORY = "history.csv"
LOGS = "logs"
CHECKPOINTS = "checkpoints"
FINAL_WEIGHTS = "model.weights.h5"
METRICS = "metrics.json"
PREDICTIONS = "predictions"  # `transfer predict`'s drawn images
EVAL_METRICS = "eval_metrics.json"  # `transfer evaluate` of a run's weights, beside its metrics.json
CLASSES = "classes.json"
FINISHED = "finished"
LOCK = ".lock"
# What a run folder holds once training has started.
RUN_STATE = (CHECKPOINTS, FINAL_WEIGHTS, FINISHED)
# Resumable state of kresnet versions before the run engine (Keras BackupAndRestore); it cannot be resumed.
LEGACY_BACKUPS = ("backup/training_metadata.json", "checkpoints/training_metadata.json")


@dataclasses.dataclass
class RunRecord:
    """A run folder as a command reads it: where it is, its task and raw recipe, and what it holds."""

    path: pathlib.Path
    task: str
    recipe: dict

    @property
    def recipe_path(self):
        return self.path / RECIPE

    @property
    def weights(self):
        return self.path / FINAL_WEIGHTS

    @property
    def finished(self):
        return (self.path / FINISHED).is_file()

    @property
    def class_names(self):
        """The class names the run trained on (`classes.json`), or None when it has none."""
        path = self.path / CLASSES
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UserError(f"{path}: not a readable class list ({error})") from None


def open_run(path, task=None, needs=(), asked_by=None):
    """The run folder at `path`, or one line saying why it is not one a command can use.

    Args:
        path: the run folder.
        task: the task the command reads ("classification", "detection", "segmentation"), or None for any.
        needs: file names the command needs in it (e.g. `FINAL_WEIGHTS`).
        asked_by: the option or argument that named the folder, for the message (e.g. "--teacher").
    """
    path = pathlib.Path(path).expanduser()
    where = f"{asked_by} {path}" if asked_by else str(path)
    recipe_path = path / RECIPE
    if not recipe_path.is_file():
        raise UserError(f"{where}: not a run folder (no {RECIPE})")
    try:
        recipe = tomllib.loads(recipe_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UserError(f"{recipe_path}: not a readable recipe ({error})") from None
    found = recipe.get("task", "classification")
    if task is not None and found != task:
        raise UserError(f"{where}: a {found} run (written by `{TASK_COMMANDS.get(found, found)}`); "
                        f"expected a {task} run from `{TASK_COMMANDS[task]}`")
    why = {FINISHED: "the run has not finished", FINAL_WEIGHTS: "no epoch has finished yet",
           HISTORY: "no epoch has finished yet", CLASSES: "written when the run starts"}
    for name in needs:
        if not (path / name).is_file():
            raise UserError(f"{where}: no {name} in this run folder ({why.get(name, 'needed here')})")
    return RunRecord(path, found, recipe)


def run_folder_of(weights, marker=RECIPE):
    """The run folder holding `weights` (its folder or the one above, whichever has `marker`), or None.

    Weights sit at `<run>/model.weights.h5` or one level down (`<run>/checkpoints/...`), so
    commands can take the run's recipe and class names from the weights alone.
    """
    if weights is None:
        return None
    weights = pathlib.Path(weights)
    for folder in (weights.parent, weights.parent.parent):
        if (folder / marker).is_file():
            return folder
    return None


def load_run_weights(model, path, fits):
    """`load_trained_weights` (kresnet.models.pretrained); when `path` is the damaged `model.weights.h5`
    of a run folder whose checkpoint is intact, the line also says how to write it again.

    Args:
        model: the built model.
        path: the `.weights.h5` file.
        fits: what the weights must fit, for the message.
    """
    from kresnet.models.pretrained import load_trained_weights
    from kresnet.runs.checkpoint import STATE_FILE, readable_h5

    try:
        return load_trained_weights(model, path, fits)
    except UserError as error:
        path = pathlib.Path(path)
        run = run_folder_of(path)
        if run is None or path.name != FINAL_WEIGHTS or not path.is_file() or readable_h5(path):
            raise
        try:
            checkpoint = run / CHECKPOINTS / json.loads((run / CHECKPOINTS / STATE_FILE).read_text())["weights"]
        except (OSError, ValueError, KeyError, TypeError):
            raise error from None
        if not readable_h5(checkpoint):
            raise
        command = TASK_COMMANDS.get(open_run(run).task, "kresnet train")
        raise UserError(f"{error}; the run's checkpoint {checkpoint} is intact: delete {path} and rerun "
                        f"`{command} <its recipe> --out {run}`, which writes it again from the checkpoint") from None


def read_class_names(weights):
    """The class names the run of `weights` was trained on, or None when its `classes.json` is not found."""
    run = run_folder_of(weights, marker=CLASSES)
    return None if run is None else RunRecord(run, "", {}).class_names


def refuse_if_busy(path, distribution=None):
    """One line when another process trains in the run folder `path`: checked before any data or model is built.

    Args:
        path: the run folder.
        distribution: the recipe's `[distribution]`, if it has one: the processes of one multi-host job
            share the folder (one writes), so none is refused here.
    """
    if distribution is None or not distribution.multi_host:
        RunLock(pathlib.Path(path) / LOCK).check_free()


def default_run_dir(recipe):
    """`runs/<recipe file stem>`: the run folder of every task when `--out` is not given."""
    return pathlib.Path("runs") / pathlib.Path(recipe).stem


class RunFolder:
    """A claimed run folder: `claim` it, write through it, `release` it (or use it as a context manager).

    Args:
        path: the folder (created when claimed).
        writer: bool or None. Whether this process writes the folder; None: the primary process.
        fault: optional `(phase, path)` hook called before each write and rename (tests simulate kills with it).
    """

    def __init__(self, path, writer=None, fault=None):
        self.path = pathlib.Path(path)
        self._writer = writer
        self.fault = fault
        self._lock = RunLock(self.path / LOCK)
        self.change = RecipeChange()  # how the recipe differs from a started run's (set by `claim`)

    @property
    def writer(self):
        # Decided on first use: on JAX, asking for the process index before a multi-host job is
        # joined (`setup_distribution`) would start JAX too early.
        if self._writer is None:
            from kresnet.runs.distribution import is_primary_process

            self._writer = is_primary_process()
        return bool(self._writer)

    def __truediv__(self, name):
        return self.path / name

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        self.release()
        if error is not None:  # the whole run is inside this block: every task, every collective
            from kresnet.runs.job_failure import exit_if_a_process_was_lost

            exit_if_a_process_was_lost(error, self.path)

    def claim(self, config):
        """Lock the folder and record the resolved recipe, or check a started run there used the same one
        (`kresnet.runs.recipe_change`: the keys that cannot alter what was trained may differ).

        Args:
            config: the resolved recipe (dataclass instance).
        """
        from kresnet.recipe import dumps_recipe

        recipe_path = self.path / RECIPE
        if not self.writer:
            return self
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            for legacy in LEGACY_BACKUPS:
                if (self.path / legacy).is_file():
                    raise UserError(
                        f"{self.path}: this run was started by an older kresnet ({legacy}), whose state cannot be "
                        "resumed; choose another --out"
                    )
            started = any((self.path / name).exists() for name in RUN_STATE)
            if started and recipe_path.is_file():
                self.change = check_recipe_change(recipe_path, config, self.path)
                if self.change.extended_from is not None:
                    self.unfinish()  # a finished run made longer trains on
            self.write_text(RECIPE, dumps_recipe(config))
        except BaseException:
            self.release()
            raise
        return self

    def hold(self):
        """Lock the folder without claiming it for training: for an evaluation that writes beside the
        run's results (`eval_metrics.json`), refused with one line while the run trains."""
        if self.writer:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        return self

    def release(self):
        self._lock.release()

    @property
    def finished(self):
        """True once the run wrote its last file (the `finished` marker)."""
        return (self.path / FINISHED).is_file()

    def completed_metrics(self, evaluate_command, log=print):
        """The stored metrics of a finished run, else None: every task treats running a finished
        run again the same way, by saying where its results are, without training or evaluating.

        Args:
            evaluate_command: the command that measures this run again, named in the message.
            log: callable for the message.
        """
        if not (self.finished and (self.path / METRICS).is_file() and (self.path / FINAL_WEIGHTS).is_file()):
            return None
        log(f"{self.path}: already complete; metrics in {self.path / METRICS} (`{evaluate_command}` measures it again)")
        return json.loads((self.path / METRICS).read_text(encoding="utf-8"))

    def write_text(self, name, text):
        """Write `text` to `<run>/name` atomically (nothing when this process is not the writer)."""
        if self.writer:
            write_text_atomically(self.path / name, text, self.fault)
        return self.path / name

    def write_json(self, name, value):
        return self.write_text(name, json.dumps(value, indent=2) + "\n")

    def save_weights(self, model, name):
        """`model.save_weights` to `<run>/name` atomically (nothing written when this process is not the writer)."""
        if self.writer:
            (self.path / name).parent.mkdir(parents=True, exist_ok=True)
        return save_weights_atomically(model, self.path / name, self.fault, writer=self.writer)

    def finish(self, metrics):
        """Write `metrics.json`, then the `finished` marker: the run is complete only once both exist."""
        self.write_json(METRICS, metrics)
        self.write_text(FINISHED, "")

    def unfinish(self):
        """Forget that the run finished (before it writes its final files again)."""
        if self.writer and self.finished:
            (self.path / FINISHED).unlink()

