"""The approximate backend: a faiss IVF index over float16 codes, its build, the calibration of
its scan budget, and its duration-filtered search.

Rows are added in the index's internal order (sorted by duration), so a duration range is one
id range: faiss gets an ``IDSelectorRange`` and each query probes its nearest lists until it has
scanned a calibrated number of rows *inside* the range. A selective filter probes more lists
(all of them when the range is small) instead of losing recall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ParameterError
from ._common import ROW_CHUNK, TopK, normalised

__all__ = ["IvfBackend", "IvfSettings"]

_QUERY_CHUNK = 1024


@dataclass(frozen=True)
class IvfSettings:
    """How an IVF index is built and calibrated (the measured defaults).

    Args:
        target_recall: recall@10 the scan budget is calibrated to, on the library itself.
        calibration_queries: library rows used to calibrate (fewer: the budget jumps between
            runs).
        train_points_per_list: k-means sample per list (32 trains 1000 lists in ~7 s on 2 cores).
        kmeans_iterations: k-means iterations.
        budget_steps: scan budgets tried, in average lists (~25 % apart); starting at 8 is cheap
            insurance for queries unlike any library row.
    """

    target_recall: float = 0.97
    calibration_queries: int = 500
    calibration_k: int = 10
    train_points_per_list: int = 32
    kmeans_iterations: int = 10
    budget_steps: tuple[int, ...] = (8, 10, 12, 16, 20, 24, 32, 40, 48, 56, 64, 80, 96, 128, 160,
                                     192, 256, 384, 512)


class IvfBackend:
    """A trained, filled and calibrated faiss ``IndexIVFScalarQuantizer`` (fp16 codes).

    Build with :meth:`build`; ``scan_budget`` is the number of in-range rows a query scans.
    """

    kind = "ivf"

    def __init__(self, faiss_index: Any, list_keys: np.ndarray, scan_budget: int,
                 n_valid: int) -> None:
        self.faiss_index = faiss_index
        self.list_keys = list_keys
        self.scan_budget = int(scan_budget)
        self.n_valid = int(n_valid)
        self._list_of_cache: np.ndarray | None = None

    def exact_limit(self, k: int) -> int:
        """Allowed rows up to which a masked search scans them exactly: fewer than the scan
        budget, and the IVF walk would visit every list anyway."""
        return max(self.scan_budget, 4 * k)

    def describe(self) -> str:
        lists = self.faiss_index.nlist
        return f", lists={lists}, scan={self.scan_budget * lists / max(self.n_valid, 1):.0f} lists"

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def build(cls, vectors: np.ndarray, norms: np.ndarray, order: np.ndarray, *,
              settings: IvfSettings = IvfSettings(), max_scan: float | None = None
              ) -> IvfBackend:
        """Train, fill and calibrate over rows ``order`` of ``vectors`` (internal order).

        With ``max_scan`` (a share of the rows), a library that needs a bigger budget is not
        calibrated further: its budget is every row, and the caller may prefer an exact index.
        """
        import faiss

        n_valid, dimension = len(order), vectors.shape[1]
        if n_valid == 0:
            raise ParameterError("kind='ivf' needs at least one row with a nonzero norm, got 0")
        nlist = max(1, round(math.sqrt(n_valid)))
        rng = np.random.default_rng(0)
        points = settings.train_points_per_list
        train_at = np.sort(rng.choice(n_valid, min(n_valid, nlist * points), False))
        # float16 codes: half the bytes of IVF-Flat and a SIMD scanner, 4x faster per query
        # here at the same recall; cosines move by ~1e-5. by_residual=False: codes are vectors.
        index = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dimension), dimension, nlist, faiss.ScalarQuantizer.QT_fp16,
            faiss.METRIC_INNER_PRODUCT, False,
        )  # fmt: skip
        index.cp.niter = settings.kmeans_iterations
        index.cp.min_points_per_centroid = 1  # small libraries: no "provide more points" warning
        index.cp.max_points_per_centroid = points
        index.train(normalised(vectors, norms, order[train_at]))
        probe_at = np.sort(rng.choice(n_valid, min(n_valid, settings.calibration_queries), False))
        probes = normalised(vectors, norms, order[probe_at])
        truth = TopK(probes, settings.calibration_k + 1, tie_ids=np.arange(n_valid))
        for start in range(0, n_valid, ROW_CHUNK):
            block = normalised(vectors, norms, order[start:start + ROW_CHUNK])
            index.add(block)  # ids are sequential, so each list's ids stay sorted
            truth.push(start, block)
        index.make_direct_map()
        list_of = faiss.vector_to_array(index.direct_map.array) >> 32
        backend = cls(index, np.sort(list_of * n_valid + np.arange(n_valid)), 0, n_valid)
        backend.scan_budget = backend._calibrate(probes, probe_at, truth.result()[0], settings,
                                                 max_scan)
        return backend

    def _calibrate(self, probes: np.ndarray, probe_at: np.ndarray, truth: np.ndarray,
                   settings: IvfSettings, max_scan: float | None) -> int:
        """Smallest scan budget whose recall@k on library rows (itself left out) meets the target.

        Recall only grows with the budget (each query probes a superset of lists), so bisect.
        With ``max_scan``, the middle budget is checked first (cheap); only if it misses, the
        largest allowed on a fifth of the probes: if even that misses, every row is the budget.
        """
        n_valid, nlist, k = self.n_valid, self.faiss_index.nlist, settings.calibration_k
        expected = [set(row[(row >= 0) & (row != me)][:k]) for row, me in zip(truth, probe_at)]

        def meets_target(budget: int, count: int | None = None) -> bool:
            found, _ = self.search(probes[:count], k + 1, 0, n_valid, budget=budget)
            wanted = expected[:count] if count is not None else expected
            hits = sum(len(e.intersection(row)) for e, row in zip(wanted, found))
            return hits >= settings.target_recall * sum(len(e) for e in wanted)

        budgets = sorted({min(n_valid, math.ceil(s * n_valid / nlist))
                          for s in settings.budget_steps})
        lo = 0
        if max_scan is not None:
            budgets = [budget for budget in budgets if budget <= max_scan * n_valid]
            if not budgets:
                return n_valid
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

    # -- searching ---------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int, start: int, stop: int, *,
               tie_ids: np.ndarray | None = None, exhaustive: bool = False,
               budget: int | None = None, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Probe each unit query's nearest lists until ``budget`` rows inside [start, stop) are
        seen (every row with ``exhaustive``); internal ids and similarities, best first.
        ``allowed`` (sorted internal ids inside the range) keeps only those rows, and the
        budget counts only them."""
        import faiss

        index, n_valid = self.faiss_index, self.n_valid
        if budget is None:
            budget = n_valid if exhaustive else self.scan_budget
        nlist = index.nlist
        if allowed is None:
            list_base = np.arange(nlist, dtype=np.int64) * n_valid
            counts = (np.searchsorted(self.list_keys, list_base + stop)
                      - np.searchsorted(self.list_keys, list_base + start))
            need = min(stop - start, max(budget, k))
            selector = (faiss.IDSelectorRange(start, stop, True) if stop - start < n_valid
                        else None)
        else:
            counts = np.bincount(self._list_of()[allowed], minlength=nlist)
            need = min(len(allowed), max(budget, k))
            bitmap = np.zeros(n_valid, bool)
            bitmap[allowed] = True
            bits = np.packbits(bitmap, bitorder="little")
            selector = faiss.IDSelectorBitmap(n_valid, faiss.swig_ptr(bits))
        # search_preassigned is single-threaded in faiss's default parallel_mode 0; mode 3
        # spreads a batch's queries over faiss's threads (one query runs on one either way).
        index.parallel_mode = 3
        ids = np.empty((len(queries), k), np.int64)
        sims = np.empty((len(queries), k), np.float32)
        for q0 in range(0, len(queries), _QUERY_CHUNK):
            chunk = np.ascontiguousarray(queries[q0:q0 + _QUERY_CHUNK])
            coarse_sims, coarse = index.quantizer.search(chunk, nlist)
            ordered_counts = counts[coarse]
            n_probe = (np.cumsum(ordered_counts, axis=1) < need).sum(axis=1) + 1
            width = int(min(nlist, n_probe.max()))
            assign = np.ascontiguousarray(coarse[:, :width])
            skip = (np.arange(width) >= n_probe[:, None]) | (ordered_counts[:, :width] == 0)
            assign[skip] = -1  # faiss skips lists numbered -1
            params = faiss.SearchParametersIVF(nprobe=width)
            if selector is not None:
                params.sel = selector
            part_ids, part_sims = ids[q0:q0 + len(chunk)], sims[q0:q0 + len(chunk)]
            index.search_preassigned_c(
                len(chunk), faiss.swig_ptr(chunk), k, faiss.swig_ptr(assign),
                faiss.swig_ptr(np.ascontiguousarray(coarse_sims[:, :width])),
                faiss.swig_ptr(part_sims), faiss.swig_ptr(part_ids), False, params,
            )  # fmt: skip
        np.clip(sims, -1.0, 1.0, out=sims)  # float16 codes can put a twin at 1.00004
        sims[ids < 0] = -np.inf
        return ids, sims

    def _list_of(self) -> np.ndarray:
        """The list of each internal id (from the sorted list keys, made once)."""
        if self._list_of_cache is None:
            list_of = np.empty(self.n_valid, np.int64)
            list_of[self.list_keys % self.n_valid] = self.list_keys // self.n_valid
            self._list_of_cache = list_of
        return self._list_of_cache

    def reconstruct(self, internal: np.ndarray) -> np.ndarray:
        """The stored (float16-rounded) unit rows of internal ids."""
        return self.faiss_index.reconstruct_batch(internal).reshape(len(internal), -1)

    # -- storage -----------------------------------------------------------------------------

    def to_stored(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Header fields and arrays; the faiss index comes first, so that it can be read
        memory-mapped straight from the file."""
        import faiss

        return ({"scan_budget": self.scan_budget},
                {"faiss": faiss.serialize_index(self.faiss_index), "list_keys": self.list_keys})

    @classmethod
    def from_stored(cls, header: dict[str, Any], arrays: dict[str, np.ndarray], *,
                    path: str, offsets: dict[str, int], n_valid: int, dimension: int,
                    mmap: bool) -> IvfBackend:
        import faiss

        try:
            if mmap and offsets.get("faiss") == 0:
                index = faiss.read_index(path, faiss.IO_FLAG_MMAP)
            else:
                index = faiss.deserialize_index(np.asarray(arrays["faiss"]))
        except RuntimeError as exc:
            raise ValueError(f"unreadable faiss index ({exc})") from None
        if index.ntotal != n_valid or index.d != dimension:
            raise ValueError(f"faiss index of {index.ntotal}x{index.d}, expected "
                             f"{n_valid}x{dimension}")
        return cls(index, np.asarray(arrays["list_keys"]), header["scan_budget"], n_valid)
