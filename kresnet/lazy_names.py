"""A package's public names, imported on first use (PEP 562 module `__getattr__`).

kresnet's packages export names from modules that import Keras, TensorFlow or a backend;
importing the package itself (for `kresnet --help`, or a recipe schema) must not pay for that.
"""

import importlib
import sys


def lazy_exports(package, homes):
    """`__getattr__` and `__dir__` for `package`, whose public names live in other modules.

    Args:
        package: str. The package's `__name__`.
        homes: dict. Public name -> the module that defines it; a name whose home is the
            submodule `package.name` stands for that submodule.

    Returns:
        (__getattr__, __dir__), to assign in the package's `__init__`. A name is imported
        once, then held by the package like any other attribute.
    """

    def __getattr__(name):
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(homes[name])
        value = module if module.__name__ == f"{package}.{name}" else getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(homes))

    return __getattr__, __dir__
