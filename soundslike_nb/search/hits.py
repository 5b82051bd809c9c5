"""What a library search returns: the rows found, with their scores, in rank order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Hits"]


@dataclass(frozen=True)
class Hits:
    """The sounds a search found, most similar first, keeping their library rows.

    ``positions`` are row positions in the library (``lib.rows.iloc[positions]``): the file
    found, or the file a region found is in; ``starts`` and ``ends`` the region's span in
    seconds (NaN for a whole file; ``None``: all whole files); ``similarities`` the weighted
    score (``sum w_i cos_i / sum w_i``); ``cosines`` one column per name in ``aspects``.
    :meth:`to_frame` gives the public table.

    Example:
        >>> rows = pd.DataFrame({"name": ["a", "b"], "path": ["/a.wav", "/b.wav"],
        ...                      "duration": [1.0, 20.0]})
        >>> hits = Hits(rows, np.array([1, 0]), np.array([0.9, 0.8]), np.array([[0.9], [0.8]]),
        ...             ("cnn",), starts=np.array([3.5, np.nan]), ends=np.array([4.0, np.nan]))
        >>> hits.to_frame()[["name", "start", "end", "duration", "similarity"]]
          name  start  end  duration  similarity
        0    b    3.5  4.0       0.5         0.9
        1    a    NaN  NaN       1.0         0.8
    """

    rows: pd.DataFrame
    positions: np.ndarray
    similarities: np.ndarray
    cosines: np.ndarray
    aspects: tuple[str, ...]
    starts: np.ndarray | None = None
    ends: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.positions)

    def to_frame(self) -> pd.DataFrame:
        """rank, name, path, start, end (NaN for a whole file), duration (of what was found:
        a region's length for a region), similarity, then the cosine of each aspect."""
        # Column by column from the arrays (5x faster than selecting rows of the table).
        positions = np.asarray(self.positions, np.int64)
        columns: dict[str, object] = {"rank": np.arange(1, len(positions) + 1)}
        for name in ("name", "path"):
            columns[name] = self.rows[name].array.take(positions)
        durations = np.asarray(self.rows["duration"].array.take(positions), np.float64)
        starts = ends = np.full(len(positions), np.nan)
        if self.starts is not None:
            starts = np.asarray(self.starts, np.float64)
            ends = np.asarray(self.ends, np.float64)
            durations = np.where(np.isnan(starts), durations, ends - starts)
        columns["start"], columns["end"], columns["duration"] = starts, ends, durations
        columns["similarity"] = np.asarray(self.similarities, dtype=np.float64)
        for column, aspect in enumerate(self.aspects):
            columns[aspect] = np.asarray(self.cosines[:, column], dtype=np.float64)
        return pd.DataFrame(columns, copy=False)
