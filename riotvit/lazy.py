"""Lazy package exports: a stage package names its public API without importing it.

``import riotvit.tile`` must stay cheap (``riotvit --help`` imports the CLI, which must not pull
in torch, rasterio or geopandas), yet ``from riotvit.tile import tile`` should work. A package
lists its exports as ``{name: module}`` and gets a module ``__getattr__`` that imports on first
use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, table: dict[str, str]) -> Callable[[str], Any]:
    """Return a module-level ``__getattr__`` resolving ``table[name]`` (a module path) lazily."""

    def __getattr__(name: str) -> Any:
        if name in table:
            return getattr(importlib.import_module(table[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def callable_package(package: str, function: str) -> None:
    """Make a stage package callable as its stage: ``riotvit.tile(...)`` runs ``riotvit.tile.tile(...)``.

    ``riotvit.tile`` is both the package (``riotvit.tile.TileConfig``) and, for notebooks, the stage
    function, with the function's signature and docstring for ``help()`` and tab completion. The
    function is imported on the first call, so the package stays cheap to import.
    """
    import inspect
    import sys
    import types

    module = sys.modules[package]

    class StagePackage(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(self, function)(*args, **kwargs)

        @property
        def __signature__(self) -> inspect.Signature:
            return inspect.signature(getattr(self, function))

    StagePackage.__call__.__doc__ = f"Run the stage: ``{package}.{function}(...)``."
    module.__class__ = StagePackage
