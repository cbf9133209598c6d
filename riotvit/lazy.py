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
