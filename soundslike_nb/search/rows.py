"""The unit rows an approximate index re-ranks its candidates on, kept twice: int8 with a scale
per column (a first, cheap pass over many candidates) and float16 (the scores it returns).

Reading rows is most of a re-rank's cost: numpy converts float16 to float32 one element at a
time (about 0.5 ms for 400 rows of 598 columns measured here), int8 twenty times faster. So
the int8 rows pick the best few candidates and only those are scored on the float16 rows,
whose cosines are within ~1e-4 of exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import map_in

__all__ = ["RerankRows"]

_LEVELS = 127
_HEADROOM = 1.25  # columns are scaled on a sample: room for values past its largest
_BLOCK_ROWS = 2048  # rows scored at once on the int8 copy


class RerankRows:
    """float16 and int8 copies of unit rows (internal order), with the int8 column scales.

    Example:
        >>> unit = np.eye(3, dtype=np.float32)
        >>> rows = RerankRows.allocate(3, 3, sample=unit)
        >>> rows.put(0, unit)
        >>> rows.best(np.array([0.0, 1.0, 0.0], np.float32), np.arange(3), 1)
        array([1])
    """

    def __init__(self, rows16: np.ndarray, rows8: np.ndarray, scales: np.ndarray) -> None:
        self.rows16 = rows16
        self.rows8 = rows8
        self.scales = np.asarray(scales, np.float32)

    @classmethod
    def allocate(cls, n_rows: int, dimension: int, *, sample: np.ndarray) -> RerankRows:
        """Empty rows, the int8 scales taken from ``sample`` (unit rows like those to come)."""
        largest = np.abs(sample).max(axis=0, initial=0.0) if len(sample) else np.ones(dimension)
        scales = np.where(largest > 0, largest * _HEADROOM / _LEVELS, 1.0 / _LEVELS)
        return cls(np.empty((n_rows, dimension), np.float16),
                   np.empty((n_rows, dimension), np.int8), scales)

    def __len__(self) -> int:
        return len(self.rows16)

    def put(self, start: int, block: np.ndarray) -> None:
        """Store unit rows ``block`` at ``start``."""
        self.rows16[start:start + len(block)] = block
        levels = np.rint(block / self.scales)
        np.clip(levels, -_LEVELS, _LEVELS, out=levels)
        self.rows8[start:start + len(block)] = levels

    def reconstruct(self, internal: np.ndarray) -> np.ndarray:
        """The float16-rounded rows of internal ids, as float32."""
        return np.asarray(self.rows16[internal], dtype=np.float32)

    def best(self, query: np.ndarray, candidates: np.ndarray, depth: int) -> np.ndarray:
        """The ``depth`` candidates (internal ids) with the highest int8 scores, in id order;
        all of them, as given, when there are no more."""
        if len(candidates) <= depth:
            return candidates
        scaled = query * self.scales
        rough = np.empty(len(candidates), np.float32)
        # in blocks that stay in cache; a run of consecutive ids (a duration range) is a slice
        for at in range(0, len(candidates), _BLOCK_ROWS):
            ids = candidates[at:at + _BLOCK_ROWS]
            run = ids[-1] - ids[0] + 1 == len(ids) and bool(np.all(np.diff(ids) == 1))
            block = self.rows8[ids[0]:ids[-1] + 1] if run else self.rows8[ids]
            rough[at:at + len(ids)] = block.astype(np.float32) @ scaled
        return np.sort(candidates[np.argpartition(-rough, depth - 1)[:depth]])

    def to_stored(self) -> dict[str, np.ndarray]:
        return {"rows16": self.rows16, "rows8": self.rows8, "row_scales": self.scales}

    @classmethod
    def from_stored(cls, arrays: dict[str, Any]) -> RerankRows:
        """The rows of :meth:`to_stored`; memory-mapped ones are mapped in at once."""
        for name in ("rows16", "rows8"):
            map_in(arrays[name])
        return cls(arrays["rows16"], arrays["rows8"], np.asarray(arrays["row_scales"]))

