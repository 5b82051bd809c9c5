"""The notebook app: find sounds like a query sound, and see the library as a map.

``App(open_library(...))`` in a notebook cell shows it. The state (:class:`AppState`) holds no
widgets and can be driven from tests or scripts; widgets and plotly load only with ``App``.

Example:
    >>> from soundslike_nb.app import App, open_library
    >>> App(open_library("data/demo.parquet", folders=["data/demo"]))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

__all__ = ["App", "AppState", "Query", "open_library"]

_LAZY = {"App": "widgets", "AppState": "state", "Query": "state_values", "open_library": "loading"}

if TYPE_CHECKING:
    from .loading import open_library
    from .state import AppState
    from .state_values import Query
    from .widgets import App


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
