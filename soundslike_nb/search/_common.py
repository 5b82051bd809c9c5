"""Pieces shared by the index and its backends: the running top-k, row normalisation, removing
excluded rows, and the argument checks with their messages."""

from __future__ import annotations

import contextlib
import math
import mmap
import numbers
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import ParameterError

ROW_CHUNK = 8_192  # rows converted at once while normalising and adding (temporaries under
#                    glibc's 32 MiB mmap threshold are reused, not mapped and faulted anew)
FEW_QUERIES = 8  # batches up to this size run on one BLAS thread (see one_blas_thread)
_blas: list[Any] = []  # the threadpoolctl controller, made once
_MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22)  # Linux 5.14+


def map_in(array: Any) -> None:
    """Map a memory-mapped array's pages now (a no-op for other arrays): a search reads rows at
    random, and each first touch of a page is a fault (at 1M rows the first hundred steered
    queries took 6 ms instead of 2, measured here). Where the kernel cannot, pages stay mapped
    on first touch."""
    handle = getattr(array, "_mmap", None)  # np.memmap's mapping
    if handle is None:
        return
    with contextlib.suppress(OSError, ValueError):
        handle.madvise(_MADV_POPULATE_READ)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run numpy's BLAS and faiss's OpenMP on one thread inside the block (a single query's
    work is small: on a busy machine, waking a second thread costs more than it saves, 12 ms
    instead of 0.3 ms for 5,000 rows measured here). Without threadpoolctl (installed with
    scikit-learn), BLAS keeps its threads."""
    if not _blas:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - scikit-learn brings it
            _blas.append(None)
        else:
            _blas.append(ThreadpoolController())
    faiss = sys.modules.get("faiss")  # faiss's OpenMP likewise (never imported from here)
    threads = faiss.omp_get_max_threads() if faiss is not None else None
    if faiss is not None:
        faiss.omp_set_num_threads(1)
    try:
        if _blas[0] is None:
            yield
        else:
            with _blas[0].limit(limits=1, user_api="blas"):
                yield
    finally:
        if faiss is not None:
            faiss.omp_set_num_threads(threads)


class TopK:
    """Running top-k of ``queries @ rows.T`` over row blocks; a tie goes to the lower tie id."""

    def __init__(self, queries: np.ndarray, k: int, *, tie_ids: np.ndarray) -> None:
        self._queries, self._k, self._tie_ids = queries, k, tie_ids
        self._query_rows = np.empty(0, np.int64)
        self._ids = np.empty(0, np.int64)
        self._sims = np.empty(0, np.float32)

    def push(self, offset: int, rows: np.ndarray, ids: np.ndarray | None = None) -> None:
        """Score a block of rows: ids ``offset + i``, or ``ids[i]`` when given."""
        sims = self._queries @ np.asarray(rows).T
        if sims.shape[1] > self._k:
            kth = np.partition(sims, sims.shape[1] - self._k, axis=1)[:, -self._k]
            query_rows, cols = np.nonzero(sims >= kth[:, None])  # ties at the k-th all kept
        else:
            query_rows, cols = np.nonzero(np.ones(sims.shape, bool))
        self._query_rows = np.concatenate([self._query_rows, query_rows])
        self._ids = np.concatenate([self._ids, offset + cols if ids is None else ids[cols]])
        self._sims = np.concatenate([self._sims, sims[query_rows, cols]])
        order = np.lexsort((self._tie_ids[self._ids], -self._sims, self._query_rows))
        query_rows = self._query_rows[order]
        rank = np.arange(len(order)) - np.searchsorted(query_rows, query_rows)
        keep = order[rank < self._k]
        self._query_rows, self._ids, self._sims = (
            self._query_rows[keep], self._ids[keep], self._sims[keep]
        )

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        ids = np.full((len(self._queries), self._k), -1, np.int64)
        sims = np.full((len(self._queries), self._k), -np.inf, np.float32)
        rank = np.arange(len(self._ids)) - np.searchsorted(self._query_rows, self._query_rows)
        ids[self._query_rows, rank] = self._ids
        sims[self._query_rows, rank] = self._sims
        return ids, sims


class RoughTopK:
    """Running top-k ids of ``queries @ rows.T`` over row blocks, equal scores in any order:
    the reference of a calibration, ten times cheaper than :class:`TopK`'s ordered merge.

    Example:
        >>> top = RoughTopK(np.eye(2, dtype=np.float32), 1)
        >>> top.push(0, np.array([[1, 0], [0.5, 0.9], [0, 1]], np.float32))
        >>> top.result()
        array([[0],
               [2]])
    """

    def __init__(self, queries: np.ndarray, k: int) -> None:
        self._queries, self._k = queries, k
        self._ids = np.empty((len(queries), 0), np.int64)
        self._sims = np.empty((len(queries), 0), np.float32)

    def push(self, offset: int, rows: np.ndarray) -> None:
        """Score a block of rows with ids ``offset + i``."""
        sims = self._queries @ np.asarray(rows).T
        if self._sims.shape[1] == self._k:
            # Only scores above a query's current k-th can enter (after the first blocks, about
            # one a query): gather those into a small padded block instead of partitioning all.
            query_rows, cols = np.nonzero(sims > self._sims.min(axis=1)[:, None])
            rank = np.arange(len(query_rows)) - np.searchsorted(query_rows, query_rows)
            width = int(rank.max(initial=-1)) + 1
            block_sims = np.full((len(sims), width), -np.inf, np.float32)
            block_ids = np.zeros((len(sims), width), np.int64)
            block_sims[query_rows, rank] = sims[query_rows, cols]
            block_ids[query_rows, rank] = offset + cols
        else:
            block_sims, block_ids = sims, np.broadcast_to(
                np.arange(offset, offset + len(rows)), sims.shape)
        sims = np.concatenate([self._sims, block_sims], axis=1)
        ids = np.concatenate([self._ids, block_ids], axis=1)
        if sims.shape[1] > self._k:
            keep = np.argpartition(-sims, self._k - 1, axis=1)[:, :self._k]
            sims, ids = np.take_along_axis(sims, keep, 1), np.take_along_axis(ids, keep, 1)
        self._sims, self._ids = sims, ids

    def result(self) -> np.ndarray:
        """(queries, k) ids, most similar first."""
        order = np.argsort(-self._sims, axis=1, kind="stable")
        return np.take_along_axis(self._ids, order, 1)


def exact_over(queries: np.ndarray, k: int, candidates: np.ndarray, rows_of, *,
               tie_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of each query among the internal ids ``candidates`` (sorted), scored on
    ``rows_of(ids)``: the exact answer over a filtered subset, in blocks."""
    top = TopK(queries, k, tie_ids=tie_ids)
    step = max(k, (1 << 22) // max(len(queries), 1))
    for at in range(0, len(candidates), step):
        ids = candidates[at:at + step]
        top.push(0, rows_of(ids), ids)
    return top.result()


def normalised(vectors: np.ndarray, norms: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = np.empty((len(rows), vectors.shape[1]), np.float32)
    for start in range(0, len(rows), ROW_CHUNK):
        at = rows[start : start + ROW_CHUNK]
        block = out[start : start + len(at)]
        block[:] = vectors[at]  # float32 arithmetic: half the memory traffic of float64
        block /= norms[at, None].astype(np.float32)
    return out


def padded_columns(block: np.ndarray, width: int) -> np.ndarray:
    """``block`` as contiguous float32 with zero columns up to ``width`` (a fast-scan index's
    dimension, rounded up to whole codes)."""
    if block.shape[1] == width:
        return np.ascontiguousarray(block, dtype=np.float32)
    out = np.zeros((len(block), width), np.float32)
    out[:, :block.shape[1]] = block
    return out


def drop_excluded(ids: np.ndarray, sims: np.ndarray, excluded: np.ndarray, k: int):
    keep = ids != excluded[:, None]
    rank = np.cumsum(keep, axis=1) - 1
    rows, cols = np.nonzero(keep & (rank < k))
    out_ids = np.full((len(ids), k), -1, np.int64)
    out_sims = np.full((len(ids), k), -np.inf, np.float32)
    out_ids[rows, rank[rows, cols]] = ids[rows, cols]
    out_sims[rows, rank[rows, cols]] = sims[rows, cols]
    return out_ids, out_sims


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_k(k: Any) -> int:
    if not is_int(k) or k < 1:
        raise ParameterError(f"k must be an int >= 1, got {k!r}")
    return int(k)


def check_duration(duration: Any) -> tuple[float | None, float | None]:
    if duration is None:
        return None, None
    if not isinstance(duration, (tuple, list)) or len(duration) != 2:
        raise ParameterError(f"duration must be None or (min, max) in seconds, got {duration!r}")
    bounds = []
    for bound in duration:
        if bound is not None and (not isinstance(bound, numbers.Real) or math.isnan(bound)):
            raise ParameterError(f"duration bounds must be numbers or None, got {duration!r}")
        bounds.append(None if bound is None else float(bound))
    lo, hi = bounds
    if lo is not None and hi is not None and lo > hi:
        raise ParameterError(f"min duration {lo} s is greater than max duration {hi} s")
    return lo, hi


def check_embeddings(embeddings: Any) -> np.ndarray:
    array = embeddings if isinstance(embeddings, np.ndarray) else np.asarray(embeddings)
    if array.dtype.kind not in "fiu" or array.ndim != 2 or array.shape[1] < 1:
        raise ParameterError(
            f"embeddings must be a 2-D array of real numbers (rows, dimension), got shape "
            f"{array.shape} and dtype {array.dtype}"
        )
    return array


def check_allowed(allowed: Any, n_rows: int) -> np.ndarray | None:
    if allowed is None:
        return None
    array = np.asarray(allowed)
    if array.dtype != np.bool_ or array.shape != (n_rows,):
        raise ParameterError(f"allowed must be a boolean mask of shape ({n_rows},) over the "
                             f"library rows, got shape {array.shape} and dtype {array.dtype}")
    return array


def check_durations(durations: Any, n_rows: int) -> np.ndarray:
    try:
        array = np.asarray(durations, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"durations must be numbers in seconds ({exc})") from None
    if array.shape != (n_rows,):
        raise ParameterError(f"durations must have shape ({n_rows},), got {array.shape}")
    bad = np.flatnonzero(~(np.isfinite(array) & (array >= 0)))
    if bad.size:
        raise ParameterError(f"durations must be finite and >= 0, row {bad[0]} is {array[bad[0]]}")
    return array

