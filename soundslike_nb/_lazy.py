"""Lazy package exports: a name is imported from its module the first time it is used."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, namespace: dict[str, Any], table: dict[str, str]
                 ) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``name`` from ``package.<table[name]>`` on first
    use and keeps it in ``namespace`` (the package's globals), so later uses are plain lookups.

    Example:
        >>> __getattr__ = lazy_exports(__name__, globals(), {"Library": "library"})
    """

    def getattr_(name: str) -> Any:
        if name in table:
            value = getattr(import_module(f".{table[name]}", package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return getattr_
