"""Lazy package exports: a name is imported from its module the first time it is used."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, namespace: dict[str, Any], table: dict[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's ``__getattr__`` and ``__dir__``: ``__getattr__`` imports ``name`` from
    ``package.<table[name]>`` on first use and keeps it in ``namespace`` (the package's globals),
    so later uses are plain lookups; ``__dir__`` lists the lazy names too (tab completion).

    Example:
        >>> __getattr__, __dir__ = lazy_exports(__name__, globals(), {"Library": "library"})
        >>> "Library" in __dir__()
        True
    """

    def getattr_(name: str) -> Any:
        if name in table:
            value = getattr(import_module(f".{table[name]}", package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted({*namespace, *table})

    return getattr_, dir_
