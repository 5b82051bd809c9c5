"""The approximate part of :class:`~soundslike_nb.index.SoundIndex`: a faiss IVF index over
float16 codes, its build, the calibration of its scan budget, and its duration-filtered search.

These are functions of a ``SoundIndex`` (``owner``; they read and set its private fields);
``index.py`` keeps the public class, exact search and persistence.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ._index_helpers import ROW_CHUNK, TopK, normalised
from .errors import ParameterError

if TYPE_CHECKING:
    from .index import SoundIndex

_TARGET_RECALL = 0.97  # recall@10 the IVF scan budget is calibrated to, on the library itself
_CALIBRATION_QUERIES = 500  # library rows; with fewer the chosen budget jumps between runs
_CALIBRATION_K = 10
_TRAIN_POINTS_PER_LIST = 32  # k-means on 2 cores: 32 points/list trains 1000 lists in ~7 s
_KMEANS_ITERATIONS = 10
# Scan budgets tried, in average lists (~25 % apart). Starting at 8 is cheap insurance for queries
# unlike any library row (calibration only ever sees library rows).
_BUDGET_STEPS = (8, 10, 12, 16, 20, 24, 32, 40, 48, 56, 64, 80, 96, 128, 160, 192, 256, 384, 512)
_QUERY_CHUNK = 1024


def search(owner: SoundIndex, queries: np.ndarray, k: int, start: int, stop: int, budget: int):
    """Probe each query's nearest lists until ``budget`` rows inside [start, stop) are seen."""
    import faiss

    nlist, n_valid = owner._faiss.nlist, owner._n_valid
    list_base = np.arange(nlist, dtype=np.int64) * n_valid
    counts = np.searchsorted(owner._list_keys, list_base + stop) - np.searchsorted(
        owner._list_keys, list_base + start
    )
    need = min(stop - start, max(budget, k))
    # search_preassigned is single-threaded in faiss's default parallel_mode 0; mode 3
    # spreads a batch's queries over faiss's threads (one query runs on one either way).
    owner._faiss.parallel_mode = 3
    selector = faiss.IDSelectorRange(start, stop, True) if stop - start < n_valid else None
    ids = np.empty((len(queries), k), np.int64)
    sims = np.empty((len(queries), k), np.float32)
    for q0 in range(0, len(queries), _QUERY_CHUNK):
        chunk = np.ascontiguousarray(queries[q0 : q0 + _QUERY_CHUNK])
        coarse_sims, coarse = owner._faiss.quantizer.search(chunk, nlist)
        ordered_counts = counts[coarse]
        n_probe = (np.cumsum(ordered_counts, axis=1) < need).sum(axis=1) + 1
        width = int(min(nlist, n_probe.max()))
        assign = np.ascontiguousarray(coarse[:, :width])
        skip = (np.arange(width) >= n_probe[:, None]) | (ordered_counts[:, :width] == 0)
        assign[skip] = -1  # faiss skips lists numbered -1
        params = faiss.SearchParametersIVF(nprobe=width)
        if selector is not None:
            params.sel = selector
        part_ids, part_sims = ids[q0 : q0 + len(chunk)], sims[q0 : q0 + len(chunk)]
        owner._faiss.search_preassigned_c(
            len(chunk), faiss.swig_ptr(chunk), k, faiss.swig_ptr(assign),
            faiss.swig_ptr(np.ascontiguousarray(coarse_sims[:, :width])),
            faiss.swig_ptr(part_sims), faiss.swig_ptr(part_ids), False, params,
        )  # fmt: skip
    np.clip(sims, -1.0, 1.0, out=sims)  # float16 codes can put a twin at 1.00004
    sims[ids < 0] = -np.inf
    return ids, sims


def build(owner: SoundIndex, vectors: np.ndarray, norms: np.ndarray, *,
          max_scan: float | None = None) -> None:
    """Train, fill and calibrate the IVF index of ``owner``. With ``max_scan`` (a share of the
    rows), a library that needs a bigger scan budget is not calibrated further: its budget is
    set to every row, and the caller may prefer an exact index."""
    import faiss

    n_valid, dimension = owner._n_valid, owner._dimension
    if n_valid == 0:
        raise ParameterError("kind='ivf' needs at least one row with a nonzero norm, got 0")
    nlist = max(1, round(math.sqrt(n_valid)))
    rng = np.random.default_rng(0)
    train_at = np.sort(rng.choice(n_valid, min(n_valid, nlist * _TRAIN_POINTS_PER_LIST), False))
    # float16 codes: half the bytes of IVF-Flat and a SIMD scanner, 4x faster per query here
    # at the same recall; cosines move by ~1e-5. by_residual=False: codes are the vectors.
    index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dimension), dimension, nlist, faiss.ScalarQuantizer.QT_fp16,
        faiss.METRIC_INNER_PRODUCT, False,
    )  # fmt: skip
    index.cp.niter = _KMEANS_ITERATIONS
    index.cp.min_points_per_centroid = 1  # small libraries: no "provide more points" warning
    index.cp.max_points_per_centroid = _TRAIN_POINTS_PER_LIST
    index.train(normalised(vectors, norms, owner._order[train_at]))
    probe_at = np.sort(rng.choice(n_valid, min(n_valid, _CALIBRATION_QUERIES), False))
    probes = normalised(vectors, norms, owner._order[probe_at])
    truth = TopK(probes, _CALIBRATION_K + 1, tie_ids=np.arange(n_valid))
    for start in range(0, n_valid, ROW_CHUNK):
        block = normalised(vectors, norms, owner._order[start : start + ROW_CHUNK])
        index.add(block)  # ids are sequential, so each list's ids stay sorted
        truth.push(start, block)
    index.make_direct_map()
    owner._faiss = index
    list_of = faiss.vector_to_array(index.direct_map.array) >> 32
    owner._list_keys = np.sort(list_of * n_valid + np.arange(n_valid))
    owner._scan_budget = _calibrate(owner, probes, probe_at, truth.result()[0], max_scan)

def _calibrate(
    owner: SoundIndex, probes: np.ndarray, probe_at: np.ndarray, truth: np.ndarray,
    max_scan: float | None = None,
) -> int:
    """Smallest scan budget whose recall@10 on library rows (itself left out) meets the target.

    Recall only grows with the budget (each query probes a superset of lists), so bisect. With
    ``max_scan``, the largest budget allowed is checked first on a fifth of the probes (cheap):
    if even it misses the target, every row is the budget.
    """
    n_valid, nlist = owner._n_valid, owner._faiss.nlist
    expected = [
        set(row[(row >= 0) & (row != me)][:_CALIBRATION_K]) for row, me in zip(truth, probe_at)
    ]

    def meets_target(budget: int, count: int | None = None) -> bool:
        found, _ = search(owner, probes[:count], _CALIBRATION_K + 1, 0, n_valid, budget)
        wanted = expected[:count] if count is not None else expected
        hits = sum(len(e.intersection(row)) for e, row in zip(wanted, found))
        return hits >= _TARGET_RECALL * sum(len(e) for e in wanted)

    budgets = sorted({min(n_valid, math.ceil(s * n_valid / nlist)) for s in _BUDGET_STEPS})
    lo = 0
    if max_scan is not None:
        budgets = [budget for budget in budgets if budget <= max_scan * n_valid]
        if not budgets:
            return n_valid
        # The middle budget first (cheap); only if it misses, the cap on a fifth of the probes.
        middle = (len(budgets) - 1) // 2
        if not meets_target(budgets[middle]):
            if not meets_target(budgets[-1], max(1, len(probes) // 5)):
                return n_valid
            lo = middle + 1
    budgets.append(n_valid)  # scanning every row is exact
    hi = len(budgets) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if meets_target(budgets[mid]):
            hi = mid
        else:
            lo = mid + 1
    return budgets[lo]
