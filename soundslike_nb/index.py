"""Nearest-neighbour search over a library's embeddings: exact or faiss IVF behind one signature.

Rows are L2-normalised, so similarity is cosine, and stored sorted by duration: a duration range is
a contiguous block of internal ids. Exact search scans that block with numpy; the IVF index hands
faiss an ``IDSelectorRange`` and probes the nearest lists until it has scanned a calibrated number
of rows *inside* the range, so a selective filter probes more lists (all of them, an exhaustive
search, when the range is small) instead of losing recall. Zero-norm rows never match.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_path
from ._index_helpers import (
    ROW_CHUNK,
    TopK,
    check_duration,
    check_durations,
    check_embeddings,
    check_k,
    drop_excluded,
    is_int,
    normalised,
)
from .errors import LibraryError, ParameterError

__all__ = ["AUTO_EXACT_MAX_ROWS", "KINDS", "SearchResult", "SoundIndex", "content_key"]

#: ``kind="auto"`` searches exactly up to this many rows and builds an IVF index above it.
#: Measured by benchmarks/search.py (512-d, 2 cores): one exact query takes 0.75 ms at 10k rows,
#: 4-9 ms at 50k and 9.4 ms at 100k (linear in n; 90 ms at 1M); IVF takes 1.4 ms at 100k and
#: 4 ms at 1M at recall@10 ~0.975, after a 2.5 s (100k) or ~25 s (1M) build. Up to 50k exact
#: stays interactive with perfect recall and nothing to build; past it IVF wins.
AUTO_EXACT_MAX_ROWS = 50_000
#: ``kind="auto"`` keeps an IVF index only if its calibrated scan stays under this share of the
#: rows; past it a flat scan is as fast (IVF pays per list) and exact. Vectors whose neighbours
#: spread over most lists (e.g. near-isotropic centred spaces) end up exact.
AUTO_IVF_MAX_SCAN = 0.25

#: The values ``kind`` accepts.
KINDS = ("auto", "exact", "ivf")

DurationRange = tuple[float | None, float | None] | None

_BLOCK_FLOATS = 1 << 24  # similarities exact search holds at once (64 MiB)
_QUERY_CHUNK = 1024
_HASH_BLOCK_BYTES = 1 << 26


@dataclass(frozen=True)
class SearchResult:
    """Neighbours of each query, most similar first: always 2-D, one row per query.

    ``indices`` (int64) are row positions in the embeddings the index was built from, ``-1``
    where fewer than ``k`` rows match; ``similarities`` (float32) are cosines, ``-inf`` there.
    The exact kind breaks ties by row id, so its results are deterministic.

    Example:
        >>> index = SoundIndex(np.eye(3), [1.0, 2.0, 3.0])
        >>> index.search([1.0, 0.0, 0.0], k=2).indices
        array([[0, 1]])
    """

    indices: np.ndarray
    similarities: np.ndarray


def content_key(embeddings: Any, durations: Any) -> str:
    """A SHA-256 hex key of the library's vectors (as float32) and durations, shapes included.

    Every byte is hashed (blocks in parallel threads, then a hash of their digests), so any
    changed row changes the key; a strided sample would miss a single edited sound. 1M x 512
    takes ~1 s on one core with SHA-NI.

    Example:
        >>> content_key(np.ones((2, 4)), [1.0, 2.0])[:12]
        '9d911407dc9c'
    """
    vectors = check_embeddings(embeddings)
    durations_s = check_durations(durations, len(vectors))
    rows_per_block = max(1, _HASH_BLOCK_BYTES // (4 * vectors.shape[1]))

    def block_digest(start: int) -> bytes:
        block = np.ascontiguousarray(vectors[start : start + rows_per_block], dtype=np.float32)
        return hashlib.sha256(memoryview(block).cast("B")).digest()

    with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        digests = b"".join(pool.map(block_digest, range(0, len(vectors), rows_per_block)))
    digest = hashlib.sha256(f"soundslike-index {vectors.shape[0]}x{vectors.shape[1]};".encode())
    digest.update(digests)
    digest.update(memoryview(np.ascontiguousarray(durations_s)).cast("B"))
    return digest.hexdigest()


class SoundIndex:
    """k-nearest-neighbour search by cosine similarity, with an inclusive duration filter.

    ``kind`` is ``"exact"`` (numpy), ``"ivf"`` (faiss IVF over float16 codes, recall calibrated
    at build time) or ``"auto"``: exact up to :data:`AUTO_EXACT_MAX_ROWS` rows with nonzero norm
    (or when IVF would scan more than :data:`AUTO_IVF_MAX_SCAN` of them),
    else ivf.
    ``key`` is :func:`content_key` of the arrays it was built from; :meth:`save` stores it.
    A caller that already computed it (a library does, once) passes it in to save a hash of
    every vector (about 1 s at 1M rows).

    Example:
        >>> index = SoundIndex([[1, 0], [1, 1], [0, 1]], [0.5, 2.0, 9.0])
        >>> index.search([1, 0.1], k=2, duration=(None, 5.0)).indices
        array([[0, 1]])
    """

    def __init__(self, embeddings: Any, durations: Any, *, kind: str = "auto",
                 key: str | None = None) -> None:
        if kind not in KINDS:
            raise ParameterError(f"kind must be one of {KINDS}, got {kind!r}")
        vectors = check_embeddings(embeddings)
        self.key = key if key is not None else content_key(vectors, durations)
        durations_s = check_durations(durations, len(vectors))
        norms = np.empty(len(vectors))
        for start in range(0, len(vectors), ROW_CHUNK):
            block = np.asarray(vectors[start : start + ROW_CHUNK], dtype=np.float64)
            if not np.isfinite(block).all():
                bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
                raise ParameterError(f"embeddings row {bad} contains NaN or infinity")
            norms[start : start + len(block)] = np.sqrt(np.einsum("ij,ij->i", block, block))
        valid = np.flatnonzero(norms > 0)
        self._order = valid[np.argsort(durations_s[valid], kind="stable")]
        self._durations = np.ascontiguousarray(durations_s[self._order])
        self._n_rows, self._dimension = vectors.shape
        requested = kind
        if kind == "auto":
            kind = "exact" if len(valid) <= AUTO_EXACT_MAX_ROWS else "ivf"
        self._kind = kind
        self._vectors: np.ndarray | None = None
        self._faiss: Any = None
        self._list_keys = np.empty(0, np.int64)
        self._scan_budget = 0
        self._positions_cache: np.ndarray | None = None
        if kind == "ivf":
            cap = AUTO_IVF_MAX_SCAN if requested == "auto" else None
            self._build_ivf(vectors, norms, cap)
            if cap is not None and self._scan_budget > cap * self._n_valid:
                # Neighbours spread over most lists: a flat scan is faster than IVF there.
                self._kind, self._faiss, self._scan_budget = "exact", None, 0
                self._list_keys = np.empty(0, np.int64)
        if self._kind == "exact":
            self._vectors = normalised(vectors, norms, self._order)

    @property
    def kind(self) -> str:
        """``"exact"`` or ``"ivf"``: the kind actually built."""
        return self._kind

    @property
    def dimension(self) -> int:
        """Length of each embedding vector."""
        return self._dimension

    def __len__(self) -> int:
        return self._n_rows

    def __repr__(self) -> str:
        text = f"SoundIndex(kind={self._kind!r}, rows={self._n_rows}, dimension={self._dimension}"
        if self._kind == "ivf":
            lists = self._faiss.nlist
            text += f", lists={lists}, scan={self._scan_budget * lists / self._n_valid:.0f} lists"
        return text + ")"

    @property
    def _n_valid(self) -> int:
        return len(self._order)

    def search(
        self,
        queries: Any,
        *,
        k: int = 10,
        duration: DurationRange = None,
        exclude: int | Sequence[int | None] | None = None,
        exact: bool = False,
    ) -> SearchResult:
        """The ``k`` rows most similar to each query: one vector ``(d,)`` or a batch ``(q, d)``.

        ``duration=(lo, hi)`` keeps rows with ``lo <= duration <= hi`` (seconds; either bound may
        be None). ``exclude`` leaves out a row id: one int for every query, or one per query.
        ``exact`` scans every row in the range even in an IVF index (for queries unlike the
        rows its scan budget was calibrated on); an exact index always does.

        Example:
            >>> index = SoundIndex(np.eye(4), [1.0, 2.0, 3.0, 4.0])
            >>> index.search(np.eye(4)[:2], k=1, duration=(2.0, 4.0)).indices
            array([[1],
                   [1]])
        """
        unit_queries = self._check_queries(queries)
        excluded = self._check_exclude(exclude, len(unit_queries))
        return self._search(unit_queries, check_k(k), self._range(duration), excluded,
                            exact=exact)

    def similar_to_rows(
        self, rows: int | Sequence[int], *, k: int = 10, duration: DurationRange = None
    ) -> SearchResult:
        """Neighbours of library rows by position ("more like this"), each row left out.

        Example:
            >>> index = SoundIndex([[1, 0], [1, 0.1], [0, 1]], [1.0, 1.0, 1.0])
            >>> index.similar_to_rows([0, 2], k=1).indices
            array([[1],
                   [1]])
        """
        row_ids = np.atleast_1d(np.asarray(rows))
        if row_ids.ndim != 1 or (row_ids.size and row_ids.dtype.kind not in "iu"):
            raise ParameterError(f"rows must be an int or a sequence of ints, got {rows!r}")
        row_ids = row_ids.astype(np.int64)
        self._check_row_ids(row_ids, "rows")
        positions = self._positions()[row_ids]
        if (positions < 0).any():
            bad = int(row_ids[np.flatnonzero(positions < 0)[0]])
            raise ParameterError(f"row {bad} has a zero-norm embedding and cannot be a query")
        if self._kind == "exact":
            vectors = np.asarray(self._vectors[positions], dtype=np.float32)
        else:
            vectors = self._faiss.reconstruct_batch(positions).reshape(-1, self._dimension)
        return self._search(vectors, check_k(k), self._range(duration), row_ids)

    # -- persistence -----------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to one file (atomically replaced), keyed by :attr:`key`.

        Example:
            >>> SoundIndex(np.eye(2), [1.0, 2.0]).save(tmp_path / "lib.index")  # doctest: +SKIP
        """
        path = Path(path)
        try:
            from ._index_file import write

            with atomic_path(path, suffix=".index") as tmp:
                write(self, tmp)
        except OSError as exc:
            raise LibraryError(f"{str(path)!r}: cannot write index ({exc})") from exc

    @classmethod
    def load(cls, path: str | os.PathLike, *, key: str, mmap: bool = True) -> SoundIndex | None:
        """Read an index saved by :meth:`save`; None when absent or built from other content.

        ``key`` is :func:`content_key` of the library now: a different stored key (or an older
        file format) returns None, so the caller rebuilds. With ``mmap`` the vectors are mapped
        from the file (loads 1M rows in milliseconds; pages are read as searches touch them).
        A file that is not an index raises :class:`LibraryError`.

        Example:
            >>> SoundIndex.load("lib.index", key=content_key(vectors, durations))  # doctest: +SKIP
        """
        from ._index_file import read

        return read(cls, Path(path), key=key, mmap=mmap)

    @classmethod
    def load_or_build(
        cls, path: str | os.PathLike, embeddings: Any, durations: Any, *, kind: str = "auto",
        key: str | None = None,
    ) -> SoundIndex:
        """Reuse the index saved at ``path`` if it was built from this content, else build and save.

        An unreadable file there is only a stale cache: it is rebuilt and replaced.

        Example:
            >>> index = SoundIndex.load_or_build("lib.index", vectors, durations)  # doctest: +SKIP
        """
        key = key if key is not None else content_key(embeddings, durations)
        try:
            index = cls.load(path, key=key)
        except LibraryError:
            index = None
        if index is None or kind not in ("auto", index.kind):
            index = cls(embeddings, durations, kind=kind, key=key)
            index.save(path)
        return index

    # -- internals -------------------------------------------------------------------------

    def _search(
        self, queries: np.ndarray, k: int, span: tuple[int, int], excluded: np.ndarray,
        *, exact: bool = False,
    ) -> SearchResult:
        fetch = k + 1 if (excluded >= 0).any() else k
        start, stop = span
        if stop <= start:
            internal = np.full((len(queries), fetch), -1, np.int64)
            sims = np.full((len(queries), fetch), -np.inf, np.float32)
        elif self._kind == "exact":
            internal, sims = self._exact_search(queries, fetch, start, stop)
        else:
            budget = self._n_valid if exact else self._scan_budget
            internal, sims = self._ivf_search(queries, fetch, start, stop, budget)
        ids = np.full(internal.shape, -1, np.int64)
        ids[internal >= 0] = self._order[internal[internal >= 0]]
        if fetch > k:
            ids, sims = drop_excluded(ids, sims, excluded, k)
        return SearchResult(indices=ids, similarities=sims)

    def _exact_search(self, queries: np.ndarray, k: int, start: int, stop: int):
        ids = np.full((len(queries), k), -1, np.int64)
        sims = np.full((len(queries), k), -np.inf, np.float32)
        for q0 in range(0, len(queries), _QUERY_CHUNK):
            chunk = queries[q0 : q0 + _QUERY_CHUNK]
            top = TopK(chunk, k, tie_ids=self._order)
            step = max(k, _BLOCK_FLOATS // len(chunk))
            for offset in range(start, stop, step):
                top.push(offset, self._vectors[offset : min(stop, offset + step)])
            ids[q0 : q0 + len(chunk)], sims[q0 : q0 + len(chunk)] = top.result()
        return ids, sims

    def _ivf_search(self, queries: np.ndarray, k: int, start: int, stop: int, budget: int):
        from . import _ivf

        return _ivf.search(self, queries, k, start, stop, budget)

    def _build_ivf(self, vectors: np.ndarray, norms: np.ndarray, cap: float | None) -> None:
        from . import _ivf

        _ivf.build(self, vectors, norms, max_scan=cap)

    def _range(self, duration: DurationRange) -> tuple[int, int]:
        lo, hi = check_duration(duration)
        start = 0 if lo is None else int(np.searchsorted(self._durations, lo, "left"))
        stop = self._n_valid if hi is None else int(np.searchsorted(self._durations, hi, "right"))
        return start, stop

    def _positions(self) -> np.ndarray:
        if self._positions_cache is None:
            positions = np.full(self._n_rows, -1, np.int64)
            positions[self._order] = np.arange(self._n_valid)
            self._positions_cache = positions
        return self._positions_cache

    def _check_queries(self, queries: Any) -> np.ndarray:
        array = np.asarray(queries)
        if array.dtype.kind not in "fiu":
            raise ParameterError(f"queries must be real numbers, got dtype {array.dtype}")
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != self._dimension:
            raise ParameterError(
                f"queries must have shape ({self._dimension},) or (n, {self._dimension}), "
                f"got {np.shape(queries)}"
            )
        array = array.astype(np.float64)
        finite = np.isfinite(array).all(axis=1)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise ParameterError(f"query {bad} contains NaN or infinity")
        norms = np.linalg.norm(array, axis=1)
        if (norms == 0).any():
            raise ParameterError(f"query {int(np.flatnonzero(norms == 0)[0])} has zero norm")
        return np.ascontiguousarray(array / norms[:, None], dtype=np.float32)

    def _check_exclude(self, exclude: Any, n_queries: int) -> np.ndarray:
        if exclude is None:
            return np.full(n_queries, -1, np.int64)
        if is_int(exclude):
            values = [exclude] * n_queries
        elif isinstance(exclude, (Sequence, np.ndarray)) and len(exclude) == n_queries:
            values = list(exclude)
        else:
            raise ParameterError(f"exclude must be an int or {n_queries} row ids, got {exclude!r}")
        if not all(value is None or is_int(value) for value in values):
            raise ParameterError(f"exclude must hold ints or None, got {exclude!r}")
        row_ids = np.array([-1 if value is None else value for value in values], np.int64)
        self._check_row_ids(row_ids[row_ids != -1], "exclude")
        return row_ids

    def _check_row_ids(self, row_ids: np.ndarray, name: str) -> None:
        bad = row_ids[(row_ids < 0) | (row_ids >= self._n_rows)]
        if bad.size:
            raise ParameterError(f"{name}: row {bad[0]} is out of range for {self._n_rows} rows")

