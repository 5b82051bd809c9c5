"""The values an :class:`~.state.AppState` holds, as plain data: the :class:`Query`, the checks of
its controls (k, at most so many results per file, the duration range, the similar-length
factor), and the empty result table."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analysis_records import SoundFeatures
from ..errors import ParameterError
from ..space import ASPECT_NAMES
from .formatting import DurationRange
from .query_region import Span

__all__ = ["K_MAX", "Query", "checked_factor", "checked_k", "checked_per_file", "checked_range",
           "no_results", "positive_seconds", "within"]

#: The largest k the app offers.
K_MAX = 100


@dataclass(frozen=True)
class Query:
    """The sound being searched with: its name, features (embedding and descriptors), where it
    came from, and its map point.

    ``position`` is its library row when it is a library sound (then it is left out of its own
    results); ``path`` is the file to play (the library file, or the saved upload);
    ``duration`` the length searched in seconds (``None`` when unknown): the region's when
    ``region`` is a ``(start_s, end_s)`` span of the sound, else ``length``, the whole sound's;
    ``whole`` then keeps the whole sound's features (to search with it again).
    """

    name: str
    features: SoundFeatures
    source: str  # "upload" or "library"
    path: str
    position: int | None = None
    point: tuple[float, float] | None = None
    duration: float | None = None
    region: Span | None = None
    length: float | None = None
    whole: SoundFeatures | None = None


def within(durations_s: np.ndarray, duration: DurationRange) -> np.ndarray:
    """Which of ``durations_s`` lie in ``(low, high)`` (``None``: open)."""
    low, high = duration
    keep = np.ones(len(durations_s), dtype=bool)
    if low is not None:
        keep &= durations_s >= low
    if high is not None:
        keep &= durations_s <= high
    return keep


def positive_seconds(seconds) -> float | None:
    """A length in seconds, or ``None`` when it is unknown (missing, zero, not finite)."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def checked_factor(factor: float | None) -> float | None:
    if factor is None:
        return None
    if isinstance(factor, bool) or not isinstance(factor, (int, float, np.floating, np.integer)
                                                  ) or not (1 <= factor < math.inf):
        raise ParameterError(f"relative_duration must be a factor >= 1 (4: from a quarter to "
                             f"four times the query's length) or None, got {factor!r}")
    return float(factor)


def checked_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= K_MAX:
        raise ParameterError(f"k must be an integer from 1 to {K_MAX}, got {k!r}")
    return int(k)


def checked_per_file(per_file: int | None) -> int | None:
    if per_file is not None and (isinstance(per_file, bool) or not isinstance(
            per_file, (int, np.integer)) or per_file < 1):
        raise ParameterError(f"per_file must be an integer >= 1 or None, got {per_file!r}")
    return None if per_file is None else int(per_file)


def checked_range(duration: DurationRange | None) -> DurationRange:
    if duration is None:
        return (None, None)
    try:
        low, high = duration
    except (TypeError, ValueError):
        raise ParameterError(f"duration must be (min_s, max_s), got {duration!r}") from None
    for end in (low, high):
        if end is not None and not (isinstance(end, (int, float)) and end >= 0):
            raise ParameterError(f"duration ends must be seconds >= 0 or None, got {duration!r}")
    if low is not None and high is not None and low > high:
        raise ParameterError(f"duration minimum {low} s is above its maximum {high} s")
    return (None if low is None else float(low), None if high is None else float(high))


def no_results() -> pd.DataFrame:
    return pd.DataFrame({"position": pd.Series(dtype="int64"), "rank": pd.Series(dtype="int64"),
                         "name": pd.Series(dtype="string"), "folder": pd.Series(dtype="string"),
                         "path": pd.Series(dtype="string"),
                         "start": pd.Series(dtype="float64"), "end": pd.Series(dtype="float64"),
                         "duration": pd.Series(dtype="float64"),
                         "similarity": pd.Series(dtype="float64"),
                         **{aspect: pd.Series(dtype="float64") for aspect in ASPECT_NAMES}})


