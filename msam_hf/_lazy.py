"""Packages whose public names are imported from their submodules on first use, as transformers' `_LazyModule`
does: `import msam_hf` (and `msam --help`) must not pay for torch, transformers or FAISS."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(package: str, import_structure: dict[str, list[str]]) -> tuple[Callable, Callable]:
    """The module-level `__getattr__` and `__dir__` of `package`, whose `import_structure` maps each submodule to
    the public names it defines. A name (or a submodule of the structure) is imported when first looked up, then
    kept in the package's namespace."""
    name_to_module = {name: module for module, names in import_structure.items() for name in names}
    namespace = vars(sys.modules[package])

    def __getattr__(name: str):
        if name in name_to_module:
            value = getattr(importlib.import_module(f".{name_to_module[name]}", package), name)
        elif name in import_structure:
            value = importlib.import_module(f".{name}", package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(name_to_module) | set(import_structure))

    return __getattr__, __dir__
