"""`kresnet transfer ...`: fine-tune kresnet backbones for detection and segmentation.

`evaluate` and `predict` dispatch on the recipe's `task` key. Given `--checkpoint`
of a run folder, they can take the recipe from it (`<run>/recipe.toml`) and
write their results there.
"""

import importlib
import pathlib
import tomllib

import typer

from kresnet.bundled_recipes import resolve_recipe
from kresnet.errors import UserError
from kresnet.recipe import set_option
from kresnet.data.image_files import IMAGE_SUFFIXES
from kresnet.runs.folder import RECIPE, run_folder_of

app = typer.Typer(
    help="Transfer kresnet backbones: object detection (Faster R-CNN + FPN) and semantic segmentation (FCN).",
    no_args_is_help=True,
)

TASK_MODULES = {"detection": "kresnet.transfer.detection.commands", "segmentation": "kresnet.transfer.segmentation.commands"}

DETECTION_RECIPE = typer.Argument(..., help="TOML recipe file, or a bundled name such as demo_detect or voc_faster_rcnn_d_cosine")
SEGMENTATION_RECIPE = typer.Argument(
    ..., help="TOML recipe file, or a bundled name such as demo_segment or ade20k_fcn_r50d_cosine")
RUN_OR_RECIPE = typer.Argument(
    None, help="TOML recipe file or bundled name (default: the recipe.toml of the --checkpoint's run folder)")
SET = set_option()
OUT = typer.Option(None, "--out", help="run folder (default runs/<recipe name>)")
WEIGHTS = typer.Option(
    None, "--weights", "--checkpoint", help="trained .weights.h5 (default: the run folder's model.weights.h5)"
)


def _transfer_recipe(recipe):
    return resolve_recipe(recipe, folder="transfer")


def _task(recipe):
    try:
        return tomllib.loads(pathlib.Path(recipe).read_text(encoding="utf-8")).get("task", "")
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{recipe}: not valid TOML: {error}") from None


def _recipe_and_out(recipe, weights, out):
    """The recipe to use and the output folder: a checkpoint's run folder supplies both when they are not given."""
    run = run_folder_of(weights)
    if recipe is None:
        if run is None:
            where = f"--checkpoint {weights} is not inside a run folder with {RECIPE}" if weights else "no --checkpoint"
            raise UserError(f"no recipe given and {where}: pass a RECIPE, or --checkpoint <run>/model.weights.h5")
        recipe = run / RECIPE
    return _transfer_recipe(recipe), out or run


def _is_recipe(path):
    """Whether the first positional of `predict` names a recipe rather than an image or folder."""
    return path.suffix == ".toml" or (not path.exists() and path.suffix.lower() not in IMAGE_SUFFIXES)


def _commands(recipe):
    task = _task(recipe)
    if task not in TASK_MODULES:
        expected = " or ".join(f'task = "{name}"' for name in TASK_MODULES)
        raise UserError(f"{recipe}: task = {task!r}; expected {expected}")
    return importlib.import_module(TASK_MODULES[task])


@app.command("detect")
def detect(recipe: pathlib.Path = DETECTION_RECIPE, set: list[str] = SET, out: pathlib.Path = OUT):
    """Train a Faster R-CNN detector from a recipe and evaluate it (resumes a stopped run in the same folder)."""
    from kresnet.transfer.detection.commands import detect_command

    detect_command(_transfer_recipe(recipe), set, out)


@app.command("segment")
def segment(recipe: pathlib.Path = SEGMENTATION_RECIPE, set: list[str] = SET, out: pathlib.Path = OUT):
    """Train an FCN segmenter from a recipe (resumes a stopped run in the same folder)."""
    from kresnet.transfer.segmentation.commands import segment_command

    segment_command(_transfer_recipe(recipe), set, out)


@app.command("evaluate")
def evaluate(recipe: pathlib.Path = RUN_OR_RECIPE, set: list[str] = SET, out: pathlib.Path = OUT,
             weights: pathlib.Path = WEIGHTS):
    """Score trained weights on the recipe's evaluation split (detection: VOC07/area/COCO mAP; segmentation: pixAcc, mIoU)."""
    recipe, out = _recipe_and_out(recipe, weights, out)
    _commands(recipe).evaluate_command(recipe, set, weights, out)


@app.command("import-weights")
def import_weights(
    recipe: pathlib.Path = typer.Argument(..., help="the recipe whose [model] is the file's model, e.g. "
                                                   "coco_faster_rcnn_resnet50_fpn_torchvision or voc_fcn_resnet50_torchvision"),
    weights: pathlib.Path = typer.Argument(..., help="torchvision state dict (.pth or .safetensors) of "
                                                    "fasterrcnn_resnet50_fpn or fcn_resnet50"),
    set: list[str] = SET,
    out: pathlib.Path = OUT,
):
    """Import torchvision detector or FCN weights as the recipe's model: <out>/model.weights.h5 for evaluate and predict."""
    recipe = _transfer_recipe(recipe)
    _commands(recipe).import_weights_command(recipe, weights, set, out)


@app.command("predict")
def predict(
    paths: list[pathlib.Path] = typer.Argument(
        ..., metavar="[RECIPE] IMAGE...",
        help="a recipe (optional with --checkpoint of a run folder), then image files or folders"),
    set: list[str] = SET,
    out: pathlib.Path = OUT,
    weights: pathlib.Path = WEIGHTS,
):
    """Write predictions to <out>/predictions/: boxes with class names and scores, or colour-overlay masks."""
    recipe, images = (paths[0], paths[1:]) if _is_recipe(paths[0]) else (None, paths)
    if not images:
        raise UserError(f"no images given after the recipe {paths[0]}: expected [RECIPE] IMAGE|FOLDER...")
    recipe, out = _recipe_and_out(recipe, weights, out)
    _commands(recipe).predict_command(recipe, images, set, weights, out)
