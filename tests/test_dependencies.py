"""Every package kresnet imports is installed with it: `pip install kresnet` never leaves a
command to crash with ModuleNotFoundError after training (COCO evaluation needed pycocotools,
which only the `test` extra brought)."""

import ast
import importlib.metadata
import re
import sys
import tomllib

from tests.conftest import PROJECT_ROOT

# Imported only by a worker that runs under another Python chosen by the user (`bench --vs timm
# --timm-python`), never by kresnet's own process: an extra, not a dependency.
OPTIONAL = {"timm": "reference"}


def _normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirements):
    return {_normalized(re.match(r"[A-Za-z0-9_.-]+", requirement).group()) for requirement in requirements}


def _third_party_imports():
    """Top-level module -> files importing it, for every import in kresnet (lazy ones included)."""
    modules = {}
    for path in sorted((PROJECT_ROOT / "kresnet").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "kresnet" and top not in sys.stdlib_module_names:
                    modules.setdefault(top, set()).add(str(path.relative_to(PROJECT_ROOT)))
    return modules


def test_every_imported_package_is_a_runtime_dependency():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dependencies = _requirement_names(project["dependencies"])
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for module, files in sorted(_third_party_imports().items()):
        if module in OPTIONAL:
            assert _normalized(module) in _requirement_names(project["optional-dependencies"][OPTIONAL[module]])
            continue
        names = {_normalized(name) for name in distributions.get(module, [module])}
        if not names & dependencies:
            missing.append(f"{module} ({sorted(names)[0]}), imported by {sorted(files)[0]}")
    assert not missing, f"not in [project].dependencies: {missing}"
