"""Answering queries from an IVF index: which rows each list holds inside a filter, how a
query's weight spreads over the column blocks (steered or not), probing the lists, the side
index, and the re-rank of the candidates on the stored rows.

:class:`~soundslike_nb.search.ivf.IvfBackend` holds the state and calls these; see its module
for the three paths a query takes.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ._common import padded_columns
from .rows import RerankRows

__all__ = ["BlockWeights", "ListFilter", "ListRows", "probe", "rerank", "steered_candidates"]

#: The most a steered query widens the calibrated scan budget of the main index (a query that
#: weighs the first block 1/8 as much as the rows, or less, scans 8 times as many rows).
MAX_WIDEN = 8


class ListFilter(NamedTuple):
    """A filter as faiss sees it: its selector (``None``: every row), the rows of each list
    inside it, how many rows are inside, and the bitmap the selector reads (kept alive)."""

    selector: Any
    counts: np.ndarray
    inside: int
    bitmap: np.ndarray | None


class ListRows:
    """Which list each internal id lies in, from the sorted list keys
    (``list * rows + internal id``).

    Example:
        >>> lists = ListRows(np.array([0 * 3 + 1, 1 * 3 + 0, 1 * 3 + 2]), 3, 2)
        >>> lists.filter(0, 3, None).counts
        array([1, 2])
    """

    def __init__(self, keys: np.ndarray, n_valid: int, nlist: int) -> None:
        self.keys, self.n_valid, self.nlist = keys, int(n_valid), int(nlist)
        self._list_of: np.ndarray | None = None
        self._sizes: np.ndarray | None = None

    def list_of(self) -> np.ndarray:
        """The list of each internal id (made once)."""
        if self._list_of is None:
            list_of = np.empty(self.n_valid, np.int64)
            list_of[self.keys % self.n_valid] = self.keys // self.n_valid
            self._list_of = list_of
        return self._list_of

    def filter(self, start: int, stop: int, allowed: np.ndarray | None) -> ListFilter:
        """The rows inside [start, stop), or the sorted internal ids ``allowed`` there."""
        import faiss

        if allowed is None and stop - start == self.n_valid:
            if self._sizes is None:
                self._sizes = np.bincount(self.keys // self.n_valid, minlength=self.nlist)
            return ListFilter(None, self._sizes, self.n_valid, None)
        if allowed is None:
            list_base = np.arange(self.nlist, dtype=np.int64) * self.n_valid
            counts = (np.searchsorted(self.keys, list_base + stop)
                      - np.searchsorted(self.keys, list_base + start))
            selector = (faiss.IDSelectorRange(start, stop, True) if stop - start < self.n_valid
                        else None)
            return ListFilter(selector, counts, stop - start, None)
        counts = np.bincount(self.list_of()[allowed], minlength=self.nlist)
        bitmap = np.zeros(self.n_valid, bool)
        bitmap[allowed] = True
        bits = np.packbits(bitmap, bitorder="little")
        selector = faiss.IDSelectorBitmap(self.n_valid, faiss.swig_ptr(bits))
        return ListFilter(selector, counts, len(allowed), bits)


class BlockWeights:
    """How the rows' largest scores spread over the column blocks (``starts``: each block's
    first column; ``scales``: its largest norm among the rows), to tell the queries weighted
    unlike the rows (steered) apart.

    Example:
        >>> blocks = BlockWeights(np.array([0, 2]), np.array([1.0, 1.0]), tolerance=0.02)
        >>> blocks.steered(np.array([[0.6, 0.0, 0.6, 0.0], [1.0, 0.0, 0.0, 0.0]]))
        array([False,  True])
    """

    def __init__(self, starts: np.ndarray, scales: np.ndarray, *, tolerance: float) -> None:
        self.starts = np.asarray(starts, np.int64)
        self.scales = np.asarray(scales, np.float64)
        self.tolerance = float(tolerance)

    def spread(self, queries: np.ndarray) -> np.ndarray:
        """(q, blocks): each block's share of the largest score a query can give a row."""
        bounds = [*self.starts, queries.shape[1]]
        bound = np.stack([np.linalg.norm(queries[:, bounds[i]:bounds[i + 1]], axis=1)
                          * self.scales[i] for i in range(len(self.starts))], axis=1)
        return bound / np.maximum(bound.sum(axis=1, keepdims=True), 1e-30)

    def steered(self, queries: np.ndarray) -> np.ndarray:
        """Queries whose weight spread over the blocks differs from the rows' by more than the
        tolerance (never with one block)."""
        if len(self.starts) < 2:
            return np.zeros(len(queries), bool)
        spread = self.spread(queries)
        rows = self.scales ** 2 / max(float((self.scales ** 2).sum()), 1e-30)
        return np.abs(spread - rows).max(axis=1) > self.tolerance

    def first_share(self) -> float:
        """The first block's share of the rows' weight."""
        return float(self.scales[0] ** 2 / max(float((self.scales ** 2).sum()), 1e-30))


def probe(index: Any, chunk: np.ndarray, fetch: int, filters: ListFilter, budget: int
          ) -> np.ndarray:
    """``fetch`` candidates of each query from ``index``, probing its nearest lists until
    ``budget`` rows inside the filter."""
    import faiss

    selector, counts, inside, _ = filters
    nlist = index.nlist
    padded = padded_columns(chunk, index.d)
    coarse_sims, coarse = index.quantizer.search(padded, nlist)
    ordered_counts = counts[coarse]
    need = min(inside, max(budget, fetch))
    n_probe = (np.cumsum(ordered_counts, axis=1) < need).sum(axis=1) + 1
    width = int(min(nlist, n_probe.max()))
    assign = np.ascontiguousarray(coarse[:, :width])
    skip = (np.arange(width) >= n_probe[:, None]) | (ordered_counts[:, :width] == 0)
    assign[skip] = -1  # faiss skips lists numbered -1
    params = faiss.SearchParametersIVF(nprobe=width)
    if selector is not None:
        params.sel = selector
    ids = np.empty((len(chunk), fetch), np.int64)
    sims = np.empty((len(chunk), fetch), np.float32)
    index.search_preassigned_c(
        len(chunk), faiss.swig_ptr(padded), fetch, faiss.swig_ptr(assign),
        faiss.swig_ptr(np.ascontiguousarray(coarse_sims[:, :width])),
        faiss.swig_ptr(sims), faiss.swig_ptr(ids), False, params,
    )  # fmt: skip
    return ids


def steered_candidates(chunk: np.ndarray, filters: ListFilter, *, index: Any,
                       side_index: Any | None, blocks: BlockWeights, scan_budget: int,
                       steered_rerank: int) -> np.ndarray:
    """Candidates of a steered chunk: the main index's widened probe alone when the queries
    still weigh the first block enough, else its union with the side index's."""
    import faiss

    selector, _, inside, _ = filters
    spread = blocks.spread(chunk)
    first = float(spread[:, 0].min())
    # The lists are clusters of whole rows: the less a query weighs the first block (what
    # mostly made them), the more of its neighbours lie in farther lists.
    rows_share = blocks.first_share()
    widen = max(1, min(MAX_WIDEN, math.ceil(rows_share / max(first, 1e-30))))
    if side_index is None or first * MAX_WIDEN >= rows_share:
        # timbre-heavy at 1M rows: 4x the budget finds 0.99 (the side scan cost 6 ms more)
        fetch = min(steered_rerank, max(inside, 1))
        return probe(index, chunk, fetch, filters, scan_budget * widen)
    # Each index gives candidates in proportion to its blocks' share of the score (at least
    # a quarter of the depth): the envelope alone needs the side index's deep list.
    main_share = float(np.clip(2 * spread[:, 0].max(), 0.25, 1.0))
    side_share = float(np.clip(2 * (1 - spread[:, 0]).max(), 0.25, 1.0))
    found = []
    if spread[:, 0].max() > blocks.tolerance:
        fetch = min(max(1, round(steered_rerank * main_share)), max(inside, 1))
        found.append(probe(index, chunk, fetch, filters, scan_budget * widen))
    side_params = faiss.SearchParametersIVF(nprobe=1)
    if selector is not None:
        side_params.sel = selector
    side_rows = chunk[:, blocks.starts[1]:]
    fetch = min(max(1, round(steered_rerank * side_share)), max(inside, 1))
    found.append(side_index.search(padded_columns(side_rows, side_index.d), fetch,
                                   params=side_params)[1])
    return np.concatenate(found, axis=1)


def rerank(rows: RerankRows, chunk: np.ndarray, found: np.ndarray, k: int,
           tie_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of each query among its candidates ``found`` (``-1``: none): the int8 rows
    keep the best ``8 k`` (at least 64), scored on the float16 rows (float32 sums)."""
    ids = np.full((len(chunk), k), -1, np.int64)
    sims = np.full((len(chunk), k), -np.inf, np.float32)
    for row, (query, candidates) in enumerate(zip(chunk, found)):
        candidates = candidates[candidates >= 0]
        if not len(candidates):
            continue
        # the union of two indexes may name a row twice: once is enough, after the cut
        candidates = np.unique(rows.best(query, candidates, max(8 * k, 64)))
        scores = rows.reconstruct(candidates) @ query
        order = np.lexsort((tie_ids[candidates], -scores))[:k]
        ids[row, :len(order)] = candidates[order]
        sims[row, :len(order)] = scores[order]
    return ids, sims
