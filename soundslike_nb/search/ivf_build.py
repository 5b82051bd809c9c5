"""Building an IVF index: its settings, training and filling the fast-scan codes, and the
calibration of the scan budget on the library itself.

:class:`~soundslike_nb.search.ivf.IvfBackend` ``.build`` uses these: :func:`build_parts`
trains the codes and fills them with the rows in internal order (keeping what calibration
needs while the rows pass by), then :func:`calibrate` finds the smallest scan budget, and
re-rank depth, whose recall on library rows meets the target.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..errors import ParameterError
from ._common import ROW_CHUNK, RoughTopK, normalised, padded_columns
from .rows import RerankRows

__all__ = ["Calibration", "CalibrationSet", "IvfParts", "IvfSettings", "build_parts",
           "calibrate"]


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


class IvfParts(NamedTuple):
    """What a build makes: the trained and filled indexes, the stored rows, the sorted list
    keys (``list * rows + internal id``) and each block's first column and largest norm."""

    faiss_index: Any
    side_index: Any | None
    rows: RerankRows
    list_keys: np.ndarray
    block_starts: np.ndarray
    block_scales: np.ndarray


class CalibrationSet(NamedTuple):
    """Library rows that calibrate the scan budget: unit ``probes``, their internal ids
    ``probe_at``, and each one's exact neighbours ``truth`` (itself among them)."""

    probes: np.ndarray
    probe_at: np.ndarray
    truth: np.ndarray


class Calibration(NamedTuple):
    """What calibration found: the scan budget (in-range rows), the re-rank depths, and
    whether the target recall is reached."""

    scan_budget: int
    rerank: int
    steered_rerank: int
    reaches_target: bool


#: ``search(unit queries, k, budget, rerank)``: the internal ids a query weighted like the
#: rows finds over every row, scanning ``budget`` rows and re-ranking ``rerank`` candidates.
BudgetSearch = Callable[[np.ndarray, int, int, int], np.ndarray]


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


def build_parts(vectors: np.ndarray, norms: np.ndarray, order: np.ndarray, *,
                settings: IvfSettings, blocks: np.ndarray | None = None
                ) -> tuple[IvfParts, CalibrationSet]:
    """Train and fill the indexes over rows ``order`` of ``vectors`` (internal order).

    ``blocks``: the first column of each block a query may weight on its own (the space's
    aspects); the side index covers every block after the first.
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
        index.train(padded_columns(train, index.d))
        if side is not None:
            side.train(padded_columns(train[:, starts[1]:], side.d))
        for start in range(0, n_valid, ROW_CHUNK):
            block = normalised(vectors, norms, order[start:start + ROW_CHUNK])
            rows.put(start, block)
            truth.push(start, block)  # the calibration's reference, while rows are here
            index.add(padded_columns(block, index.d))  # sequential ids: lists' stay sorted
            if side is not None:
                side.add(padded_columns(block[:, starts[1]:], side.d))
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
    parts = IvfParts(index, side, rows, np.sort(list_of * n_valid + ids), starts, scales)
    return parts, CalibrationSet(probes, probe_at, truth.result())


def calibrate(search: BudgetSearch, calibration: CalibrationSet, *, n_valid: int, nlist: int,
              settings: IvfSettings, max_scan: float | None) -> Calibration:
    """Smallest scan budget whose recall@k on library rows (itself left out) meets the
    target, and whether one does.

    Recall grows with the budget (each query probes a superset of lists), so bisect. With
    ``max_scan``, the largest allowed budget is checked first on a fifth of the probes: if
    even that misses, every row is the budget and the target is not reached.
    """
    probes, probe_at, truth = calibration
    k = settings.calibration_k
    base, steered = settings.rerank, settings.steered_rerank
    expected = [set(row[(row >= 0) & (row != me)][:k]) for row, me in zip(truth, probe_at)]

    def meets_target(budget: int, rerank: int, count: int | None = None) -> bool:
        found = search(probes[:count], k + 1, budget, rerank)
        wanted = expected[:count] if count is not None else expected
        hits = sum(len(e.intersection(row)) for e, row in zip(wanted, found))
        return hits >= settings.target_recall * sum(len(e) for e in wanted)

    budgets = sorted({min(n_valid, math.ceil(s * n_valid / nlist))
                      for s in settings.budget_steps} | {n_valid})
    if max_scan is not None:
        budgets = [budget for budget in budgets if budget <= max_scan * n_valid]
    if not budgets:
        return Calibration(n_valid, base, steered, False)
    # The codes' resolution limits recall even when every list is scanned: the more rows,
    # the more candidates the exact re-rank needs (200 at 100k rows, more at 1M).
    rerank = base
    for factor in (1, 2, 4, 8):
        if factor > 1 and base * factor > max(n_valid // 10, 4 * base):
            break  # re-ranking that many rows is a scan: out of reach
        rerank = base * factor
        if meets_target(budgets[-1], rerank, max(1, len(probes) // 5)):
            break
    else:
        factor = 0
    if factor == 0 or rerank != base * factor:
        return Calibration(n_valid, base, steered, False)
    lo, hi = 0, len(budgets) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if meets_target(budgets[mid], rerank):
            hi = mid
        else:
            lo = mid + 1
    return Calibration(budgets[lo], rerank, steered * factor, True)
