"""The package's layers, as docs/architecture.md draws them: a lower layer never imports a higher one.

Bottom to top: foundations (errors, recipe parsing), models and data, tricks, runs (the engine),
the tasks (classification, transfer), and the front doors (CLI, benchmarks, plots). Imports inside
functions count too: a lazy import is still a dependency.
"""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "kresnet"

LAYERS = {
    "errors": 0, "console": 0, "lazy_names": 0, "atomic_files": 0, "recipe": 0, "bundled_recipes": 0,
    "models": 1, "data": 1,
    "tricks": 2,
    "runs": 3,
    "classification": 4, "transfer": 4,
    "benchmarks": 5, "cli": 5, "__init__": 5,
}


def _part(module):
    """'kresnet.runs.fit' -> 'runs'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path):
    return ".".join(("kresnet", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")


MODULES = {_module_name(path) for path in PACKAGE.rglob("*.py")}


def _imports(path):
    """The kresnet modules a file imports (`from kresnet.models import hub` imports kresnet.models.hub)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("kresnet"):
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            yield from [name for name in submodules if name in MODULES] or [node.module]
        elif isinstance(node, ast.Import):
            yield from [alias.name for alias in node.names if alias.name.startswith("kresnet.")]


def _graph():
    return {_module_name(path): set(_imports(path)) for path in PACKAGE.rglob("*.py")}


def test_every_package_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert parts <= set(LAYERS), f"give these a layer: {sorted(parts - set(LAYERS))}"


def test_no_import_reaches_up_a_layer():
    upward = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if LAYERS[_part(target)] > LAYERS[_part(module)]
    ]
    assert not upward, "\n".join(sorted(upward))


def test_the_two_tasks_do_not_import_each_other():
    crossing = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if {_part(module), _part(target)} == {"classification", "transfer"}
    ]
    assert not crossing, "\n".join(sorted(crossing))


def test_no_import_cycle_between_packages():
    """Cycles between sub-packages (models/ and its loader once formed one) and between modules."""
    graph = _graph()

    edges = {module: targets - {module} for module, targets in graph.items()}
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)
