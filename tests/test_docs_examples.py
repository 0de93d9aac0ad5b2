"""Every example in README.md and docs/ runs as written.

- Each page's ```python blocks run in order in one namespace (a reader continues from the block
  above), in an empty folder, with `$KRESNET_CACHE` there too. The size constants of blocks sized
  for ImageNet or a GPU are shrunk for a CPU by the explicit substitutions in SHRUNK; nothing else
  changes. Blocks that cannot run in a test are in NOT_RUN with the reason.
- Each `kresnet ...` line of a ```bash block names an existing command and its options, with the
  right number of arguments; a recipe it names resolves, with its `--set` overrides applied.
- Each ```toml block is a valid recipe fragment.
"""

import re
import shlex
import tomllib

import pytest
import typer

from tests.conftest import PROJECT_ROOT
from tests.docs_pages import code_blocks, pages

# (page, text found in the block) -> why it does not run in a test.
NOT_RUN = {
    ("docs/models.md", 'model = kresnet.create_model("resnet50d", weights="gluon_in1k")'):
        "downloads the authors' ResNet-50-D from the Hugging Face Hub; tests/models/test_pretrained.py loads "
        "every form of `weights=` from an offline Hub cache",
    ("docs/finetune.md", 'model, transform, class_names = kresnet.load_for_inference("resnet50d.gluon_in1k")'):
        "downloads the authors' ResNet-50-D and reads photo.jpg; tests/classification/test_predict.py makes the same "
        "calls on a tag from an offline Hub cache and on fixture JPEGs and PNGs",
    ("docs/tricks.md", "EPOCHS, STEPS, BATCH, SIZE, CLASSES = 12, 100, 64, 224, 10"):
        "run with its outcome checked (mixup epochs, zero gamma, step counts) by tests/tricks/test_tricks_examples.py",
    ("docs/tricks.md", "distiller = kresnet.DistillationModel(student, teacher, temperature=20.0, label_smoothing=0.1)"):
        "run with its outcome checked (frozen teacher, smaller student) by tests/tricks/test_tricks_examples.py",
}

# (page, text as written) -> the text run: ImageNet sizes shrunk for a CPU. `{tiny_root}` is a
# 3-class folder dataset of 40 px images made by the test.
SHRUNK = {
    ("docs/data.md", 'ROOT, EPOCHS, BATCH, SIZE = "/data/imagenet", 120, 256, 224   # class folders or TFRecord shards'):
        'ROOT, EPOCHS, BATCH, SIZE = "{tiny_root}", 1, 4, 32',
    ("docs/data.md", 'model = kresnet.create_model("resnet50d", num_classes=info.num_classes)'):
        'model = kresnet.create_model("resnet50d", num_classes=info.num_classes, stage_depths=[1, 1, 1, 1], stage_widths=[8, 16, 24, 32])',
    ("docs/data.md", "root = cached_classification_dataset(num_classes=10, per_class=100, image_size=64, seed=0)"):
        "root = cached_classification_dataset(num_classes=10, per_class=2, image_size=64, seed=0)",
}


def _python_blocks(page):
    return [block for block in code_blocks(page) if block.language == "python"]


def _matches(table, page, block):
    return [key for key in table if key[0] == page and key[1] in block.text]


def test_every_listed_text_is_in_exactly_one_block():
    """A stale entry (its block edited or gone) fails here instead of being ignored."""
    for table in (NOT_RUN, SHRUNK):
        for page, line in table:
            holders = [block for block in _python_blocks(page) if line in block.text]
            assert len(holders) == 1, f"{page}: {len(holders)} python blocks hold {line!r}"


PAGES_WITH_PYTHON = [page for page in pages() if any(not _matches(NOT_RUN, page, block) for block in _python_blocks(page))]


@pytest.mark.parametrize("page", PAGES_WITH_PYTHON)
def test_python_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KRESNET_CACHE", str(tmp_path / "cache"))
    from kresnet.data import cached_classification_dataset

    tiny_root = cached_classification_dataset(num_classes=3, per_class=8, image_size=40, seed=0)
    namespace, ran = {}, 0
    for block in _python_blocks(page):
        if _matches(NOT_RUN, page, block):
            continue
        source = block.text
        for key in _matches(SHRUNK, page, block):
            source = source.replace(key[1], SHRUNK[key].format(tiny_root=tiny_root.as_posix()))
        exec(compile(source, f"{page}:{block.line}", "exec"), namespace)
        ran += 1
    assert ran, f"{page}: every python block is in NOT_RUN"


# ---- commands


def _cli():
    from kresnet.cli import app

    return typer.main.get_command(app)


def _command_lines(text):
    """Each shell command of a bash block as tokens, comments dropped and continuation lines joined."""
    for line in text.replace("\\\n", " ").splitlines():
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as error:
            raise AssertionError(f"not valid shell: {line!r} ({error})") from None
        yield from _split_on_operators(tokens)


def _split_on_operators(tokens):
    command = []
    for token in tokens:
        if token in ("&&", "||", ";", "|"):
            yield command
            command = []
        else:
            command.append(token)
    yield command


def _kresnet_invocations(tokens):
    """The argument lists after each `kresnet` in a command, also inside `bash -c '...'` strings."""
    for index, token in enumerate(tokens):
        if token == "kresnet":
            yield tokens[index + 1:]
            return
        if " kresnet " in f" {token} ":
            for inner in _split_on_operators(shlex.split(token)):
                yield from _kresnet_invocations(inner)


def _placeholder(value):
    """RECIPE, IMAGE_OR_FOLDER, W: a name the reader substitutes."""
    return re.fullmatch(r"[A-Z][A-Z_]*", value) is not None


def _synopsis_tokens(arguments):
    """`[--out DIR]` and `FOLDER...` are synopsis notation: drop the brackets and ellipses (not the brackets
    of a value, as in `model.stage_depths=[2,2,2,2]`)."""
    cleaned = []
    for token in arguments:
        token = token.removeprefix("[").removesuffix("...")
        if token.endswith("]") and token.count("]") > token.count("["):
            token = token[:-1]
        cleaned.append(token)
    return [token for token in cleaned if token]


def _check_recipe(command_path, values):
    """The recipe a command names resolves, and loads with its --set overrides."""
    from kresnet.bundled_recipes import resolve_recipe

    recipe = values.get("recipe")
    if command_path in (("transfer", "evaluate"), ("transfer", "predict")):
        paths = values.get("paths") or ()
        recipe = recipe or next((path for path in paths if path.endswith(".toml")), None)
    if not recipe or _placeholder(recipe):
        return
    folder = "transfer" if command_path[0] == "transfer" else ""
    path = resolve_recipe(recipe, folder=folder)
    task = tomllib.loads(path.read_text(encoding="utf-8")).get("task", "classification")
    from kresnet.classification.config import load_classification_recipe
    from kresnet.transfer.detection.config import load_detection_recipe
    from kresnet.transfer.segmentation.config import load_segmentation_recipe

    loaders = {"classification": load_classification_recipe, "detection": load_detection_recipe,
               "segmentation": load_segmentation_recipe}
    loaders[task](path, values.get("set") or [])


def _check_invocation(root, arguments):
    """Raises with the reason when `kresnet ARGUMENTS` names no command, an unknown option or extra arguments."""
    command, path, arguments = root, [], _synopsis_tokens(arguments)
    while hasattr(command, "commands") and arguments and not arguments[0].startswith("-"):
        name = arguments.pop(0)
        assert name in command.commands, f"no command `kresnet {' '.join([*path, name])}`"
        command, path = command.commands[name], [*path, name]
    if hasattr(command, "commands"):  # options of the group itself, e.g. `kresnet --verbose train`
        options = [token for token in arguments if token.startswith("-")]
        assert not options or options[0] == "--verbose", f"`kresnet {' '.join(path)}`: unknown option {options[0]}"
        if options:
            return _check_invocation(root, [*path, *arguments[1:]])
        return None
    parser = command.make_parser(command.context_class(command, info_name=path[-1]))
    parsed, extra, _ = parser.parse_args(arguments)
    assert not extra, f"`kresnet {' '.join(path)}`: unexpected arguments {extra}"
    # By the name the reader sees (`--set`), not the Python parameter's (`set_`).
    names = {param.name: (param.opts[0].lstrip("-") if param.param_type_name == "option" else param.name)
             for param in command.params}
    values = {names[name]: value for name, value in parsed.items()}
    if path[0] in ("train", "ablate", "transfer"):
        _check_recipe(tuple(path), values)
    return tuple(path)


def _bash_commands():
    for page in pages():
        for block in code_blocks(page):
            if block.language == "bash":
                for tokens in _command_lines(block.text):
                    yield page, block, tokens


def test_every_documented_command_exists_with_its_options_and_recipe():
    root = _cli()
    checked, problems = set(), []
    for page, block, tokens in _bash_commands():
        if tokens[:1] == ["python"] and tokens[1:2] and tokens[1].endswith(".py"):
            if not (PROJECT_ROOT / tokens[1]).is_file():
                problems.append(f"{page}:{block.line}: no script {tokens[1]}")
        for arguments in _kresnet_invocations(tokens):
            try:
                checked.add(_check_invocation(root, arguments))
            except Exception as error:  # a parse error, an unknown recipe key: all are the doc's problem
                problems.append(f"{page}:{block.line}: kresnet {' '.join(arguments)}: {error}")
    assert not problems, "\n".join(problems)
    documented = {("train",), ("evaluate",), ("ablate",), ("plot",), ("models",), ("recipes",), ("import-weights",),
                  ("data", "synth"), ("data", "cifar10"), ("data", "convert"), ("data", "check"), ("bench", "data"),
                  ("bench", "model"), ("transfer", "detect"), ("transfer", "segment"), ("transfer", "evaluate"),
                  ("transfer", "predict")}
    assert documented <= checked, f"no documented example of: {sorted(documented - checked)}"


@pytest.mark.parametrize("line", [
    "kresnet trian demo",
    "kresnet train demo --sett train.epochs=2",
    "kresnet train no_such_recipe",
    "kresnet train demo --set train.epoch=2",
    "kresnet transfer detect demo_detect --set model.fpn_channel=8",
    "kresnet plot runs/a --out",
])
def test_the_command_check_catches_a_wrong_line(line):
    root = _cli()
    (tokens,) = _command_lines(line)
    (arguments,) = _kresnet_invocations(tokens)
    with pytest.raises(Exception):
        _check_invocation(root, arguments)


def test_toml_examples_are_valid_recipe_tables():
    from kresnet.classification.config import classification_recipe_from_dict

    blocks = [block for page in pages() for block in code_blocks(page) if block.language == "toml"]
    assert blocks
    for block in blocks:
        classification_recipe_from_dict(tomllib.loads(block.text))
