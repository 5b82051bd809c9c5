"""The approximate backend: faiss IVF over 4-bit PQ fast-scan codes, a re-rank of the
candidates on stored rows (int8 to pick the best few, float16 to score them: see
:mod:`~soundslike_nb.search.rows`), and a second, small fast-scan index over the steerable
blocks.

Rows are kept in the index's internal order (sorted by duration), so a duration range is one
id range: faiss gets an ``IDSelectorRange`` (or a bitmap for an ``allowed`` mask). Three paths:

- a query weighted like the rows (the library's default weighting) probes its nearest lists
  until it has scanned a calibrated number of rows *inside* the range, then the best
  ``rerank`` candidates are scored exactly on the stored float16 rows;
- a steered query (its weight spread over the column blocks differs from the rows') probes the
  lists nearest to it with the calibrated budget widened by how much less it weighs the first
  block than the rows do (a full scan cost 8-10 ms at a million rows); when it weighs that
  block less than ``1 / MAX_WIDEN`` as much, it also scans the side index over the other
  blocks alone (one dimension per code, so a single small aspect keeps its detail); the
  candidates, up to ``steered_rerank`` of them, are re-ranked;
- ``exhaustive``: every row in the range, scored on the float16 rows.

A selective filter probes more lists (all of them when the range is small) instead of losing
recall; :class:`~soundslike_nb.search.index.SoundIndex` scans very selective ones exactly.

This module holds the backend's state, the order of a search and the stored form; building
and calibrating are in :mod:`~soundslike_nb.search.ivf_build`, the steps of a query (filters,
steering, probes, re-rank) in :mod:`~soundslike_nb.search.ivf_query`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import ROW_CHUNK, TopK, map_in
from .ivf_build import IvfSettings, build_parts, calibrate
from .ivf_query import BlockWeights, ListFilter, ListRows, probe, rerank, steered_candidates
from .rows import RerankRows

__all__ = ["IvfBackend", "IvfSettings"]

_QUERY_CHUNK = 256
_EMPTY = np.empty(0, np.uint8)
_DEFAULT_SETTINGS = IvfSettings()


class IvfBackend:
    """Fast-scan IVF codes + stored rows (internal order) + an optional side index.

    Build with :meth:`build`; ``scan_budget`` is the number of in-range rows a query weighted
    like the rows scans before its candidates are re-ranked. ``lists`` says which rows each
    list holds; ``blocks`` how the rows' weight spreads over the column blocks.
    """

    kind = "ivf"

    def __init__(self, faiss_index: Any, side_index: Any | None, rows: RerankRows,
                 list_keys: np.ndarray, block_starts: np.ndarray, block_scales: np.ndarray,
                 *, scan_budget: int, rerank: int, steered_rerank: int,
                 steered_tolerance: float) -> None:
        self.faiss_index = faiss_index
        self.side_index = side_index
        self.rows = rows
        self.n_valid = len(rows)
        self.lists = ListRows(list_keys, self.n_valid, faiss_index.nlist)
        self.blocks = BlockWeights(block_starts, block_scales, tolerance=steered_tolerance)
        self.scan_budget = int(scan_budget)
        self.rerank = int(rerank)
        self.steered_rerank = int(steered_rerank)
        self.reaches_target = True  # set by build's calibration

    def describe(self) -> str:
        lists = self.faiss_index.nlist
        side = ", side index" if self.side_index is not None else ""
        return (f", lists={lists}, scan={self.scan_budget * lists / max(self.n_valid, 1):.0f}"
                f" lists, rerank={self.rerank}{side}")

    def exact_limit(self, k: int) -> int:
        """Rows left by a filter up to which a search scores them all (:meth:`score_all`):
        what the calibrated path scans anyway. At 1M rows, a 1 % duration range scanned in
        the lists took 3.6 ms (default weights) to 7 ms (steered), measured here."""
        return max(self.scan_budget, self.steered_rerank, 4 * k)

    def score_all(self, queries: np.ndarray, k: int, candidates: np.ndarray,
                  tie_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` of each query among ``candidates`` (internal ids): each scored on the int8
        rows, the best ``8 k`` on the float16 rows, as a re-rank does."""
        chunk = np.ascontiguousarray(queries, dtype=np.float32)
        return rerank(self.rows, chunk,
                      np.broadcast_to(candidates, (len(chunk), len(candidates))), k, tie_ids)

    @classmethod
    def build(cls, vectors: np.ndarray, norms: np.ndarray, order: np.ndarray, *,
              settings: IvfSettings = _DEFAULT_SETTINGS, max_scan: float | None = None,
              blocks: np.ndarray | None = None) -> IvfBackend:
        """Train, fill and calibrate over rows ``order`` of ``vectors`` (internal order).

        ``blocks``: the first column of each block a query may weight on its own (the
        space's aspects); the side index covers every block after the first. With
        ``max_scan`` (a share of the rows), a library that needs a bigger budget gets the
        budget of every row (the caller may prefer an exact index).
        """
        parts, calibration_set = build_parts(vectors, norms, order, settings=settings,
                                             blocks=blocks)
        backend = cls(*parts, scan_budget=0, rerank=settings.rerank,
                      steered_rerank=settings.steered_rerank,
                      steered_tolerance=settings.steered_tolerance)
        found = calibrate(backend._budget_search, calibration_set, n_valid=backend.n_valid,
                          nlist=backend.faiss_index.nlist, settings=settings,
                          max_scan=max_scan)
        backend.scan_budget, backend.rerank = found.scan_budget, found.rerank
        backend.steered_rerank, backend.reaches_target = found.steered_rerank, found.reaches_target
        return backend

    def search(self, queries: np.ndarray, k: int, start: int, stop: int, *,
               tie_ids: np.ndarray | None = None, exhaustive: bool = False,
               budget: int | None = None, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` internal ids and similarities of each unit query inside [start, stop).

        ``allowed`` (sorted internal ids inside the range) keeps only those rows, and the
        budget counts only them; ``exhaustive`` scores every row in the range.
        """
        tie_ids = np.arange(self.n_valid) if tie_ids is None else tie_ids
        if exhaustive:
            candidates = np.arange(start, stop) if allowed is None else allowed
            top = TopK(queries, k, tie_ids=tie_ids)
            for at in range(0, len(candidates), ROW_CHUNK):
                ids = candidates[at:at + ROW_CHUNK]
                top.push(0, self.reconstruct(ids), ids)
            return top.result()
        return self._ranked(queries, k, self.lists.filter(start, stop, allowed), tie_ids,
                            budget=budget, depth=self.rerank)

    def _ranked(self, queries: np.ndarray, k: int, filters: ListFilter, tie_ids: np.ndarray,
                *, budget: int | None, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidates of each query (steered or not, see module), re-ranked; a query weighted
        like the rows re-ranks ``depth`` of them, scanning ``budget`` rows when given."""
        ids = np.full((len(queries), k), -1, np.int64)
        sims = np.full((len(queries), k), -np.inf, np.float32)
        steered = self._steered(queries) if budget is None else np.zeros(len(queries), bool)
        for group in (np.flatnonzero(~steered), np.flatnonzero(steered)):
            for q0 in range(0, len(group), _QUERY_CHUNK):
                at = group[q0:q0 + _QUERY_CHUNK]
                chunk = np.ascontiguousarray(queries[at], dtype=np.float32)
                if steered[at[0]]:
                    found = steered_candidates(
                        chunk, filters, index=self.faiss_index, side_index=self.side_index,
                        blocks=self.blocks, scan_budget=self.scan_budget,
                        steered_rerank=self.steered_rerank)
                else:
                    found = probe(self.faiss_index, chunk, max(depth, k), filters,
                                  self.scan_budget if budget is None else budget)
                ids[at], sims[at] = rerank(self.rows, chunk, found, k, tie_ids)
        return ids, sims

    def _budget_search(self, queries: np.ndarray, k: int, budget: int, depth: int
                       ) -> np.ndarray:
        """What calibration measures: the ids found over every row, scanning ``budget`` rows
        and re-ranking ``depth`` candidates."""
        return self._ranked(queries, k, self.lists.filter(0, self.n_valid, None),
                            np.arange(self.n_valid), budget=budget, depth=depth)[0]

    def _steered(self, queries: np.ndarray) -> np.ndarray:
        """Queries whose weight spread over the blocks differs from the rows' (see module)."""
        return self.blocks.steered(queries)

    def reconstruct(self, internal: np.ndarray) -> np.ndarray:
        """The stored (float16-rounded) unit rows of internal ids, as float32."""
        return self.rows.reconstruct(internal)

    # -- storage -----------------------------------------------------------------------------

    def to_stored(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Header fields and arrays (the stored rows are read back memory-mapped)."""
        import faiss

        side = _EMPTY if self.side_index is None else faiss.serialize_index(self.side_index)
        return ({"scan_budget": self.scan_budget, "rerank": self.rerank,
                 "steered_rerank": self.steered_rerank,
                 "steered_tolerance": self.blocks.tolerance},
                {**self.rows.to_stored(), "faiss": faiss.serialize_index(self.faiss_index),
                 "side": side, "list_keys": self.lists.keys, "block_starts": self.blocks.starts,
                 "block_scales": self.blocks.scales})

    @classmethod
    def from_stored(cls, header: dict[str, Any], arrays: dict[str, np.ndarray], *,
                    path: str, offsets: dict[str, int], n_valid: int, dimension: int,
                    mmap: bool) -> IvfBackend:
        import faiss

        try:
            index = faiss.deserialize_index(np.asarray(arrays["faiss"]))
            side = (faiss.deserialize_index(np.asarray(arrays["side"]))
                    if len(arrays["side"]) else None)
        except RuntimeError as exc:
            raise ValueError(f"unreadable faiss index ({exc})") from None
        rows = RerankRows.from_stored(arrays)
        map_in(arrays["list_keys"])
        if (index.ntotal != n_valid or rows.rows16.shape != (n_valid, dimension)
                or rows.rows8.shape != rows.rows16.shape):
            raise ValueError(f"faiss index of {index.ntotal} rows and stored rows of shape "
                             f"{rows.rows16.shape}, expected {n_valid}x{dimension}")
        return cls(index, side, rows, np.asarray(arrays["list_keys"]),
                   np.asarray(arrays["block_starts"]), np.asarray(arrays["block_scales"]),
                   scan_budget=header["scan_budget"], rerank=header["rerank"],
                   steered_rerank=header["steered_rerank"],
                   steered_tolerance=header["steered_tolerance"])
