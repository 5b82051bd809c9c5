"""How a :class:`~soundslike_nb.library.Library` reads a query: the analyzer it is given or
told to load (checked to be the library's model, analysing as the library's sounds were), and
whether a path is a sound of the library that has not changed since (its stored row is then
used, nothing is analysed)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pandas as pd

from .analysis import AnalysisSettings, Analyzer
from .embedders import Embedder
from .model_choice import model_for_library

__all__ = ["query_analyzer", "unchanged"]


def query_analyzer(settings: AnalysisSettings, embedder_info: Mapping[str, Any], *,
                   analyzer: Analyzer | None, embedder: str | os.PathLike | Embedder | None,
                   token: str | None, device: str | None, where: str) -> Analyzer | None:
    """The analyzer a library is given (its model checked, its settings made the library's
    ``settings``), or the model it names loaded and checked; ``None`` when neither: the
    library's own model, loaded on first use."""
    if analyzer is not None:
        model_for_library(embedder_info, embedder=analyzer.embedder, where=where)
        if analyzer.settings.record() != settings.record():  # queries as the library
            return Analyzer(analyzer.embedder, replace(settings,
                                                       device=analyzer.settings.device))
        return analyzer
    if embedder is not None:
        return Analyzer(model_for_library(embedder_info, embedder=embedder, token=token,
                                          device=device, where=where), settings)
    return None


def unchanged(row: pd.Series) -> bool:
    """Whether the file of a library row is as it was indexed (same size and modification
    time); ``False`` when it cannot be read.

    Example:
        >>> unchanged(pd.Series({"path": "/no/such.wav", "size": 1, "mtime": 0.0}))
        False
    """
    try:
        stat = os.stat(row["path"])
    except OSError:
        return False
    return stat.st_size == row["size"] and stat.st_mtime == row["mtime"]
