"""The exact backend: every row in the duration range is scanned with numpy.

It holds the unit rows in the index's internal order (sorted by duration) and answers in
internal ids; :class:`~soundslike_nb.search.index.SoundIndex` maps them to library rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import TopK, exact_over

__all__ = ["ExactBackend"]

_BLOCK_FLOATS = 1 << 24  # similarities held at once while scanning (64 MiB)
_QUERY_CHUNK = 1024


class ExactBackend:
    """Brute-force inner products over ``unit_rows`` ((n, d) float32, internal order).

    Example:
        >>> backend = ExactBackend(np.eye(3, dtype=np.float32))
        >>> backend.search(np.eye(3, dtype=np.float32)[:1], 2, 0, 3, tie_ids=np.arange(3))[0]
        array([[0, 1]])
    """

    kind = "exact"

    def __init__(self, unit_rows: np.ndarray) -> None:
        self.unit_rows = unit_rows

    def describe(self) -> str:
        return ""


    def search(self, queries: np.ndarray, k: int, start: int, stop: int, *,
               tie_ids: np.ndarray, exhaustive: bool = False,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` internal ids and similarities of each unit query within ``[start, stop)``
        (among the sorted internal ids ``allowed`` when given); ties go to the lower
        ``tie_ids`` (library row), so results are deterministic."""
        if allowed is not None:
            return exact_over(queries, k, allowed, self.reconstruct, tie_ids=tie_ids)
        ids = np.full((len(queries), k), -1, np.int64)
        sims = np.full((len(queries), k), -np.inf, np.float32)
        for q0 in range(0, len(queries), _QUERY_CHUNK):
            chunk = queries[q0:q0 + _QUERY_CHUNK]
            top = TopK(chunk, k, tie_ids=tie_ids)
            step = max(k, _BLOCK_FLOATS // len(chunk))
            for offset in range(start, stop, step):
                top.push(offset, self.unit_rows[offset:min(stop, offset + step)])
            ids[q0:q0 + len(chunk)], sims[q0:q0 + len(chunk)] = top.result()
        return ids, sims

    def reconstruct(self, internal: np.ndarray) -> np.ndarray:
        """The stored unit rows of internal ids."""
        return np.asarray(self.unit_rows[internal], dtype=np.float32)

    def to_stored(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {"unit_rows": np.ascontiguousarray(self.unit_rows, dtype=np.float32)}

    @classmethod
    def from_stored(cls, header: dict[str, Any], arrays: dict[str, np.ndarray], *,
                    path: str, offsets: dict[str, int], n_valid: int, dimension: int,
                    mmap: bool) -> ExactBackend:
        rows = arrays["unit_rows"]
        if rows.shape != (n_valid, dimension):
            raise ValueError(f"exact rows have shape {rows.shape}, expected "
                             f"{(n_valid, dimension)}")
        return cls(rows)
