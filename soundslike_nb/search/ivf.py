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
  block less than ``1 / _MAX_WIDEN`` as much, it also scans the side index over the other
  blocks alone (one dimension per code, so a single small aspect keeps its detail); the
  candidates, up to ``steered_rerank`` of them, are re-ranked;
- ``exhaustive``: every row in the range, scored on the float16 rows.

A selective filter probes more lists (all of them when the range is small) instead of losing
recall; :class:`~soundslike_nb.search.index.SoundIndex` scans very selective ones exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ParameterError
from ._common import ROW_CHUNK, RoughTopK, TopK, map_in, normalised
from .rows import RerankRows

__all__ = ["IvfBackend", "IvfSettings"]

_QUERY_CHUNK = 256
#: The most a steered query widens the calibrated scan budget of the main index (a query that
#: weighs the first block 1/8 as much as the rows, or less, scans 8 times as many rows).
_MAX_WIDEN = 8
_EMPTY = np.empty(0, np.uint8)


@dataclass(frozen=True)
class IvfSettings:
    """How an IVF index is built and calibrated (the measured defaults, benchmarks/search.py).

    Args:
        target_recall: recall@10 the scan budget is calibrated to, on the library itself.
        calibration_queries: library rows used to calibrate.
        calibration_k: the k of that recall.
        lists_per_sqrt_row: lists per square root of the row count (0.5: 500 lists at 1M
            rows; assigning a row costs one product per list, the bulk of the build).
        train_points_per_list: k-means sample per list.
        kmeans_iterations: k-means iterations.
        dims_per_code: dimensions per 4-bit PQ code of the main index (4: 150 codes for the
            598-d fused rows, 75 bytes a row).
        side_dims_per_code: the same for the side index over the steerable blocks (1: each
            descriptor keeps its own 16 levels, so a single small aspect keeps its detail).
        rerank: candidates scored exactly per query at the default weighting (doubled at
            build, up to 8 times, until a scan of every list reaches the target).
        steered_rerank: candidates scored exactly per query and per index when steered
            (scaled with ``rerank``).
        steered_tolerance: how far a query's weight spread over the blocks may differ from the
            rows' and still take the calibrated path.
        budget_steps: scan budgets tried, in average lists (~25 % apart).

    Example:
        >>> IvfSettings(rerank=64).rerank
        64
    """

    target_recall: float = 0.97
    calibration_queries: int = 300
    calibration_k: int = 10
    lists_per_sqrt_row: float = 0.5
    train_points_per_list: int = 32
    kmeans_iterations: int = 10
    dims_per_code: int = 4
    side_dims_per_code: int = 1
    rerank: int = 200
    steered_rerank: int = 750
    steered_tolerance: float = 0.02
    budget_steps: tuple[int, ...] = (4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 56, 64, 80, 96, 128,
                                     160, 192, 256, 384, 512)


def _codes_index(faiss, dimension: int, nlist: int, dims_per_code: int, settings: IvfSettings):
    """An untrained IVF fast-scan index (inner product, codes of the vectors themselves)."""
    padded = _padded(dimension, dims_per_code)
    index = faiss.IndexIVFPQFastScan(faiss.IndexFlatIP(padded), padded, nlist,
                                     padded // dims_per_code, 4, faiss.METRIC_INNER_PRODUCT)
    index.by_residual = False
    index.cp.niter = settings.kmeans_iterations
    index.cp.min_points_per_centroid = 1  # small libraries: no "provide more points" warning
    index.cp.max_points_per_centroid = settings.train_points_per_list
    index.pq.cp.min_points_per_centroid = 1
    return index


def _padded(dimension: int, dims_per_code: int) -> int:
    """Columns rounded up to whole codes, and to an even number of codes (fast-scan packs
    codes in pairs)."""
    return math.ceil(dimension / (2 * dims_per_code)) * 2 * dims_per_code


def _pad(block: np.ndarray, width: int) -> np.ndarray:
    if block.shape[1] == width:
        return np.ascontiguousarray(block, dtype=np.float32)
    out = np.zeros((len(block), width), np.float32)
    out[:, :block.shape[1]] = block
    return out


class IvfBackend:
    """Fast-scan IVF codes + stored rows (internal order) + an optional side index.

    Build with :meth:`build`; ``scan_budget`` is the number of in-range rows a query weighted
    like the rows scans before its candidates are re-ranked.
    """

    kind = "ivf"

    def __init__(self, faiss_index: Any, side_index: Any | None, rows: RerankRows,
                 list_keys: np.ndarray, block_starts: np.ndarray, block_scales: np.ndarray,
                 *, scan_budget: int, rerank: int, steered_rerank: int,
                 steered_tolerance: float) -> None:
        self.faiss_index = faiss_index
        self.side_index = side_index
        self.rows = rows
        self.list_keys = list_keys
        self.block_starts = np.asarray(block_starts, np.int64)
        self.block_scales = np.asarray(block_scales, np.float64)
        self.scan_budget = int(scan_budget)
        self.rerank = int(rerank)
        self.steered_rerank = int(steered_rerank)
        self.steered_tolerance = float(steered_tolerance)
        self.n_valid = len(rows)
        self.reaches_target = True  # set by build's calibration
        self._list_of_cache: np.ndarray | None = None
        self._list_sizes: np.ndarray | None = None

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
        return self._rerank(chunk, np.broadcast_to(candidates, (len(chunk), len(candidates))),
                            k, tie_ids)

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def build(cls, vectors: np.ndarray, norms: np.ndarray, order: np.ndarray, *,
              settings: IvfSettings = IvfSettings(), max_scan: float | None = None,
              blocks: np.ndarray | None = None) -> IvfBackend:
        """Train, fill and calibrate over rows ``order`` of ``vectors`` (internal order).

        ``blocks``: the first column of each block a query may weight on its own (the
        space's aspects); the side index covers every block after the first. With
        ``max_scan`` (a share of the rows), a library that needs a bigger budget gets the
        budget of every row (the caller may prefer an exact index).
        """
        import faiss

        n_valid, dimension = len(order), vectors.shape[1]
        if n_valid == 0:
            raise ParameterError("kind='ivf' needs at least one row with a nonzero norm, got 0")
        starts = np.zeros(1, np.int64) if blocks is None else np.asarray(blocks, np.int64)
        nlist = max(1, round(settings.lists_per_sqrt_row * math.sqrt(n_valid)))
        rng = np.random.default_rng(0)
        n_train = min(n_valid, max(nlist * settings.train_points_per_list, 4096))
        train_at = np.sort(rng.choice(n_valid, n_train, False))
        train = normalised(vectors, norms, order[train_at])
        index = _codes_index(faiss, dimension, nlist, settings.dims_per_code, settings)
        side = None
        if len(starts) > 1:
            side = _codes_index(faiss, dimension - int(starts[1]), 1,
                                settings.side_dims_per_code, settings)
        rows = RerankRows.allocate(n_valid, dimension, sample=train)
        probe_at = np.sort(rng.choice(n_valid, min(n_valid, settings.calibration_queries), False))
        probes = normalised(vectors, norms, order[probe_at])
        truth = RoughTopK(probes, settings.calibration_k + 1)
        scales = np.zeros(len(starts))
        bounds = [*starts, dimension]
        threads = faiss.omp_get_max_threads()
        # Training runs hundreds of tiny k-means (one per code) and adding encodes rows code by
        # code: on one thread, because on a busy machine each OpenMP barrier can wait
        # milliseconds (training 35 s instead of 2 at 100k; adding 1M rows 20 % slower on two).
        faiss.omp_set_num_threads(1)
        try:
            index.train(_pad(train, index.d))
            if side is not None:
                side.train(_pad(train[:, starts[1]:], side.d))
            for start in range(0, n_valid, ROW_CHUNK):
                block = normalised(vectors, norms, order[start:start + ROW_CHUNK])
                rows.put(start, block)
                truth.push(start, block)  # the calibration's reference, while rows are here
                index.add(_pad(block, index.d))  # ids are sequential: lists' ids stay sorted
                if side is not None:
                    side.add(_pad(block[:, starts[1]:], side.d))
                for at in range(len(starts)):
                    width = np.linalg.norm(block[:, bounds[at]:bounds[at + 1]], axis=1)
                    scales[at] = max(scales[at], float(width.max(initial=0.0)))
        finally:
            faiss.omp_set_num_threads(threads)
        list_of = np.concatenate([
            np.full(index.invlists.list_size(lst), lst, np.int64) for lst in range(nlist)])
        ids = np.concatenate([
            faiss.rev_swig_ptr(index.invlists.get_ids(lst), index.invlists.list_size(lst)).copy()
            for lst in range(nlist)])
        backend = cls(index, side, rows, np.sort(list_of * n_valid + ids), starts, scales,
                      scan_budget=0, rerank=settings.rerank,
                      steered_rerank=settings.steered_rerank,
                      steered_tolerance=settings.steered_tolerance)
        backend.scan_budget, backend.reaches_target = backend._calibrate(
            probes, probe_at, truth.result(), settings, max_scan)
        return backend

    def _calibrate(self, probes: np.ndarray, probe_at: np.ndarray, truth: np.ndarray,
                   settings: IvfSettings, max_scan: float | None) -> tuple[int, bool]:
        """Smallest scan budget whose recall@k on library rows (itself left out) meets the
        target, and whether one does.

        Recall grows with the budget (each query probes a superset of lists), so bisect. With
        ``max_scan``, the largest allowed budget is checked first on a fifth of the probes:
        if even that misses, every row is the budget and the target is not reached.
        """
        n_valid, nlist, k = self.n_valid, self.faiss_index.nlist, settings.calibration_k
        expected = [set(row[(row >= 0) & (row != me)][:k]) for row, me in zip(truth, probe_at)]

        def meets_target(budget: int, count: int | None = None) -> bool:
            found, _ = self.search(probes[:count], k + 1, 0, n_valid, budget=budget)
            wanted = expected[:count] if count is not None else expected
            hits = sum(len(e.intersection(row)) for e, row in zip(wanted, found))
            return hits >= settings.target_recall * sum(len(e) for e in wanted)

        budgets = sorted({min(n_valid, math.ceil(s * n_valid / nlist))
                          for s in settings.budget_steps} | {n_valid})
        if max_scan is not None:
            budgets = [budget for budget in budgets if budget <= max_scan * n_valid]
        if not budgets:
            return n_valid, False
        # The codes' resolution limits recall even when every list is scanned: the more rows,
        # the more candidates the exact re-rank needs (200 at 100k rows, more at 1M).
        base, steered = self.rerank, self.steered_rerank
        for factor in (1, 2, 4, 8):
            if factor > 1 and base * factor > max(n_valid // 10, 4 * base):
                break  # re-ranking that many rows is a scan: out of reach
            self.rerank, self.steered_rerank = base * factor, steered * factor
            if meets_target(budgets[-1], max(1, len(probes) // 5)):
                break
        else:
            factor = 0
        if factor == 0 or self.rerank != base * factor:
            self.rerank, self.steered_rerank = base, steered
            return n_valid, False
        lo, hi = 0, len(budgets) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if meets_target(budgets[mid]):
                hi = mid
            else:
                lo = mid + 1
        return budgets[lo], True

    # -- searching ---------------------------------------------------------------------------

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
        ids = np.full((len(queries), k), -1, np.int64)
        sims = np.full((len(queries), k), -np.inf, np.float32)
        steered = self._steered(queries) if budget is None else np.zeros(len(queries), bool)
        filters = self._filters(start, stop, allowed)
        for group in (np.flatnonzero(~steered), np.flatnonzero(steered)):
            for q0 in range(0, len(group), _QUERY_CHUNK):
                at = group[q0:q0 + _QUERY_CHUNK]
                chunk = np.ascontiguousarray(queries[at], dtype=np.float32)
                if steered[at[0]]:
                    found = self._steered_candidates(chunk, filters)
                else:
                    found = self._probe(chunk, max(self.rerank, k), filters,
                                        self.scan_budget if budget is None else budget)
                ids[at], sims[at] = self._rerank(chunk, found, k, tie_ids)
        return ids, sims

    def _steered(self, queries: np.ndarray) -> np.ndarray:
        """Queries whose weight spread over the blocks differs from the rows' (see module)."""
        if len(self.block_starts) < 2:
            return np.zeros(len(queries), bool)
        spread = self._spread(queries)
        rows = self.block_scales ** 2 / max(float((self.block_scales ** 2).sum()), 1e-30)
        return np.abs(spread - rows).max(axis=1) > self.steered_tolerance

    def _spread(self, queries: np.ndarray) -> np.ndarray:
        """(q, blocks): each block's share of the largest score a query can give a row."""
        bounds = [*self.block_starts, queries.shape[1]]
        bound = np.stack([np.linalg.norm(queries[:, bounds[i]:bounds[i + 1]], axis=1)
                          * self.block_scales[i] for i in range(len(self.block_starts))], axis=1)
        return bound / np.maximum(bound.sum(axis=1, keepdims=True), 1e-30)

    def _filters(self, start: int, stop: int, allowed: np.ndarray | None):
        """(selector, rows per list inside the filter, rows inside, keep-alive buffer)."""
        import faiss

        nlist = self.faiss_index.nlist
        if allowed is None and stop - start == self.n_valid:
            if self._list_sizes is None:
                self._list_sizes = np.bincount(self.list_keys // self.n_valid, minlength=nlist)
            return None, self._list_sizes, self.n_valid, None
        if allowed is None:
            list_base = np.arange(nlist, dtype=np.int64) * self.n_valid
            counts = (np.searchsorted(self.list_keys, list_base + stop)
                      - np.searchsorted(self.list_keys, list_base + start))
            selector = (faiss.IDSelectorRange(start, stop, True) if stop - start < self.n_valid
                        else None)
            return selector, counts, stop - start, None
        counts = np.bincount(self._list_of()[allowed], minlength=nlist)
        bitmap = np.zeros(self.n_valid, bool)
        bitmap[allowed] = True
        bits = np.packbits(bitmap, bitorder="little")
        selector = faiss.IDSelectorBitmap(self.n_valid, faiss.swig_ptr(bits))
        return selector, counts, len(allowed), bits

    def _probe(self, chunk: np.ndarray, fetch: int, filters, budget: int) -> np.ndarray:
        """Candidates of the main index, probing lists until ``budget`` filtered rows."""
        import faiss

        index = self.faiss_index
        selector, counts, inside, _ = filters
        nlist = index.nlist
        padded = _pad(chunk, index.d)
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

    def _steered_candidates(self, chunk: np.ndarray, filters) -> np.ndarray:
        """Candidates of a steered chunk: the main index's widened probe alone when the
        queries still weigh the first block enough, else its union with the side index's."""
        import faiss

        selector, _, inside, _ = filters
        spread = self._spread(chunk)
        first = float(spread[:, 0].min())
        # The lists are clusters of whole rows: the less a query weighs the first block (what
        # mostly made them), the more of its neighbours lie in farther lists.
        rows_share = float(self.block_scales[0] ** 2 / max(
            float((self.block_scales ** 2).sum()), 1e-30))
        widen = max(1, min(_MAX_WIDEN, math.ceil(rows_share / max(first, 1e-30))))
        if self.side_index is None or first * _MAX_WIDEN >= rows_share:
            # timbre-heavy at 1M rows: 4x the budget finds 0.99 (the side scan cost 6 ms more)
            fetch = min(self.steered_rerank, max(inside, 1))
            return self._probe(chunk, fetch, filters, self.scan_budget * widen)
        # Each index gives candidates in proportion to its blocks' share of the score (at least
        # a quarter of the depth): the envelope alone needs the side index's deep list.
        main_share = float(np.clip(2 * spread[:, 0].max(), 0.25, 1.0))
        side_share = float(np.clip(2 * (1 - spread[:, 0]).max(), 0.25, 1.0))
        found = []
        if spread[:, 0].max() > self.steered_tolerance:
            fetch = min(max(1, round(self.steered_rerank * main_share)), max(inside, 1))
            found.append(self._probe(chunk, fetch, filters, self.scan_budget * widen))
        side_params = faiss.SearchParametersIVF(nprobe=1)
        if selector is not None:
            side_params.sel = selector
        side_rows = chunk[:, self.block_starts[1]:]
        fetch = min(max(1, round(self.steered_rerank * side_share)), max(inside, 1))
        found.append(self.side_index.search(_pad(side_rows, self.side_index.d), fetch,
                                            params=side_params)[1])
        return np.concatenate(found, axis=1)

    def _rerank(self, chunk: np.ndarray, found: np.ndarray, k: int, tie_ids: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` of each query among its candidates: the int8 rows keep the best
        ``8 k`` (at least 64), scored on the float16 rows (float32 sums)."""
        ids = np.full((len(chunk), k), -1, np.int64)
        sims = np.full((len(chunk), k), -np.inf, np.float32)
        for row, (query, candidates) in enumerate(zip(chunk, found)):
            candidates = candidates[candidates >= 0]
            if not len(candidates):
                continue
            # the union of two indexes may name a row twice: once is enough, after the cut
            candidates = np.unique(self.rows.best(query, candidates, max(8 * k, 64)))
            scores = self.reconstruct(candidates) @ query
            order = np.lexsort((tie_ids[candidates], -scores))[:k]
            ids[row, :len(order)] = candidates[order]
            sims[row, :len(order)] = scores[order]
        return ids, sims

    def reconstruct(self, internal: np.ndarray) -> np.ndarray:
        """The stored (float16-rounded) unit rows of internal ids, as float32."""
        return self.rows.reconstruct(internal)

    def _list_of(self) -> np.ndarray:
        """The list of each internal id (from the sorted list keys, made once)."""
        if self._list_of_cache is None:
            list_of = np.empty(self.n_valid, np.int64)
            list_of[self.list_keys % self.n_valid] = self.list_keys // self.n_valid
            self._list_of_cache = list_of
        return self._list_of_cache

    # -- storage -----------------------------------------------------------------------------

    def to_stored(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Header fields and arrays (the stored rows are read back memory-mapped)."""
        import faiss

        side = _EMPTY if self.side_index is None else faiss.serialize_index(self.side_index)
        return ({"scan_budget": self.scan_budget, "rerank": self.rerank,
                 "steered_rerank": self.steered_rerank,
                 "steered_tolerance": self.steered_tolerance},
                {**self.rows.to_stored(), "faiss": faiss.serialize_index(self.faiss_index),
                 "side": side, "list_keys": self.list_keys, "block_starts": self.block_starts,
                 "block_scales": self.block_scales})

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
