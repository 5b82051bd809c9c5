"""Nearest-neighbour search over vectors by cosine, with an inclusive duration filter.

:class:`SoundIndex` owns what every backend shares: argument checks, normalisation, the
duration order (rows are kept sorted by duration, so a range is a block of internal ids),
excluded rows and the mapping of internal ids back to row positions. Its backend (exact numpy
scan, or faiss IVF) owns its own state and storage; :func:`make_backend` is the one place that
decides which (``kind="auto"``). Zero-norm rows never match.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ParameterError
from ._common import (
    FEW_QUERIES,
    ROW_CHUNK,
    check_allowed,
    check_duration,
    check_durations,
    check_embeddings,
    check_k,
    drop_excluded,
    exact_over,
    is_int,
    map_in,
    normalised,
    one_blas_thread,
)
from .exact import ExactBackend
from .ivf import IvfBackend, IvfSettings

__all__ = ["KINDS", "IndexSettings", "SearchResult", "SoundIndex", "make_backend"]

#: The values ``kind`` accepts.
KINDS = ("auto", "exact", "ivf")
#: Bumped when the stored index changes in a way older readers cannot follow.
INDEX_FORMAT = 4
DurationRange = tuple[float | None, float | None] | None
_BACKENDS = {"exact": ExactBackend, "ivf": IvfBackend}


@dataclass(frozen=True)
class IndexSettings:
    """Which backend an index uses, with the measured defaults.

    Args:
        kind: ``"exact"``, ``"ivf"`` or ``"auto"`` (exact up to ``exact_max_rows`` rows, or
            where an IVF index cannot reach its target recall scanning at most
            ``ivf_max_scan`` of the rows; else IVF).
        exact_max_rows: measured by benchmarks/search.py on libraries shaped like real
            sounds (2 cores): below it an exact scan answers any weighting within a few
            milliseconds with perfect recall and nothing to build.
        ivf_max_scan: the largest share of the rows a calibrated IVF query may scan before
            an exact index is preferred (1.0: only when even a scan of every list's codes
            misses the target, as on isotropic noise).
        ivf: how an IVF index is built and calibrated.

    Example:
        >>> IndexSettings(exact_max_rows=100).options()["exact_max_rows"]
        100
    """

    kind: str = "auto"
    exact_max_rows: int = 20_000
    ivf_max_scan: float = 1.0
    ivf: IvfSettings = field(default_factory=IvfSettings)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not is_int(self.exact_max_rows) or self.exact_max_rows < 0:
            raise ParameterError(f"exact_max_rows must be an int >= 0, got "
                                 f"{self.exact_max_rows!r}")
        if not 0 < float(self.ivf_max_scan) <= 1:
            raise ParameterError(f"ivf_max_scan must be in (0, 1], got {self.ivf_max_scan!r}")

    def options(self) -> dict[str, Any]:
        """What decides a built index (part of its sidecar key)."""
        return {"kind": self.kind, "exact_max_rows": self.exact_max_rows,
                "ivf_max_scan": self.ivf_max_scan, "ivf": vars(self.ivf)}


@dataclass(frozen=True)
class SearchResult:
    """Neighbours of each query, most similar first: always 2-D, one row per query.

    ``indices`` (int64) are row positions in the vectors the index was built from, ``-1``
    where fewer than ``k`` rows match; ``similarities`` (float32) are cosines, ``-inf`` there.
    The exact kind breaks ties by row position, so its results are deterministic.

    Example:
        >>> index = SoundIndex(np.eye(3), [1.0, 2.0, 3.0])
        >>> index.search([1.0, 0.0, 0.0], k=2).indices
        array([[0, 1]])
    """

    indices: np.ndarray
    similarities: np.ndarray


def make_backend(vectors: np.ndarray, norms: np.ndarray, order: np.ndarray,
                 settings: IndexSettings, *, blocks: np.ndarray | None = None
                 ) -> ExactBackend | IvfBackend:
    """The backend ``settings`` asks for over rows ``order`` of ``vectors`` (internal order):
    the one place ``kind="auto"`` is decided. ``blocks``: see :class:`SoundIndex`.

    Example:
        >>> vectors = np.eye(2, dtype=np.float32)
        >>> make_backend(vectors, np.ones(2), np.arange(2), IndexSettings()).kind
        'exact'
    """
    kind = settings.kind
    if kind == "auto" and len(order) <= settings.exact_max_rows:
        kind = "exact"
    if kind != "exact":
        cap = settings.ivf_max_scan if kind == "auto" else None
        backend = IvfBackend.build(vectors, norms, order, settings=settings.ivf, max_scan=cap,
                                   blocks=blocks)
        if cap is None or backend.reaches_target:
            return backend
        # The codes cannot tell the neighbours apart (noise-like vectors): exact is safe.
    return ExactBackend(normalised(vectors, norms, order))


def _check_blocks(blocks: Sequence[int] | None, dimension: int) -> np.ndarray | None:
    if blocks is None:
        return None
    starts = np.asarray(blocks)
    if (starts.ndim != 1 or not len(starts) or starts.dtype.kind not in "iu" or starts[0] != 0
            or np.any(np.diff(starts) <= 0) or starts[-1] >= dimension):
        raise ParameterError(f"blocks must be increasing column starts from 0 below "
                             f"{dimension}, got {blocks!r}")
    return starts.astype(np.int64)


class SoundIndex:
    """k-nearest-neighbour search by cosine similarity, with an inclusive duration filter.

    Args:
        embeddings: (n, d) vectors, one per row.
        durations: (n,) seconds.
        kind: shorthand for ``settings=IndexSettings(kind=...)``.
        settings: which backend (see :class:`IndexSettings`).
        blocks: the first column of each block of columns that a query may weight on its
            own (a :class:`~soundslike_nb.space.SimilaritySpace`'s aspects); an IVF index
            then serves queries weighted unlike its rows by scans made for them.

    Example:
        >>> index = SoundIndex([[1, 0], [1, 1], [0, 1]], [0.5, 2.0, 9.0])
        >>> index.search([1, 0.1], k=2, duration=(None, 5.0)).indices
        array([[0, 1]])
    """

    def __init__(self, embeddings: Any, durations: Any, *, kind: str | None = None,
                 settings: IndexSettings | None = None,
                 blocks: Sequence[int] | None = None) -> None:
        if settings is None:
            settings = IndexSettings(kind=kind or "auto")
        elif kind is not None and kind != settings.kind:
            raise ParameterError(f"kind={kind!r} contradicts settings.kind={settings.kind!r}")
        vectors = check_embeddings(embeddings)
        durations_s = check_durations(durations, len(vectors))
        norms = np.empty(len(vectors))
        for start in range(0, len(vectors), ROW_CHUNK):
            block = np.asarray(vectors[start:start + ROW_CHUNK], dtype=np.float64)
            if not np.isfinite(block).all():
                bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
                raise ParameterError(f"embeddings row {bad} contains NaN or infinity")
            norms[start:start + len(block)] = np.sqrt(np.einsum("ij,ij->i", block, block))
        valid = np.flatnonzero(norms > 0)
        order = valid[np.argsort(durations_s[valid], kind="stable")]
        backend = make_backend(vectors, norms, order, settings,
                               blocks=_check_blocks(blocks, vectors.shape[1]))
        self._init(order, durations_s[order], len(vectors), vectors.shape[1], backend)

    def _init(self, order: np.ndarray, sorted_durations: np.ndarray, n_rows: int,
              dimension: int, backend: ExactBackend | IvfBackend) -> None:
        self._order = np.asarray(order, np.int64)
        self._durations = np.ascontiguousarray(sorted_durations, dtype=np.float64)
        self._n_rows, self._dimension = int(n_rows), int(dimension)
        self._backend = backend
        self._positions_cache: np.ndarray | None = None

    @property
    def kind(self) -> str:
        """``"exact"`` or ``"ivf"``: the kind actually built."""
        return self._backend.kind

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        return self._dimension

    def __len__(self) -> int:
        return self._n_rows

    def __repr__(self) -> str:
        return (f"SoundIndex(kind={self.kind!r}, rows={self._n_rows}, "
                f"dimension={self._dimension}{self._backend.describe()})")

    def search(self, queries: Any, *, k: int = 10, duration: DurationRange = None,
               exclude: int | Sequence[int | None] | None = None,
               exact: bool = False, allowed: np.ndarray | None = None) -> SearchResult:
        """The ``k`` rows most similar to each query: one vector ``(d,)`` or a batch ``(q, d)``.

        ``duration=(lo, hi)`` keeps rows with ``lo <= duration <= hi`` (seconds; either bound may
        be None). ``exclude`` leaves out a row: one int for every query, or one per query.
        ``allowed`` (a boolean mask over the rows) keeps only the rows marked True, together
        with the duration range; when few remain they are scanned exactly, so a selective mask
        loses no recall. ``exact`` scans every row in the range even in an IVF index (for
        queries unlike the rows its scan budget was calibrated on); an exact index always does.

        Example:
            >>> index = SoundIndex(np.eye(4), [1.0, 2.0, 3.0, 4.0])
            >>> index.search(np.eye(4)[:2], k=1, duration=(2.0, 4.0)).indices
            array([[1],
                   [1]])
            >>> index.search(np.eye(4)[0], k=2, allowed=np.array([False, True, False, True])
            ...              ).indices
            array([[1, 3]])
        """
        unit_queries = self._check_queries(queries)
        excluded = self._check_exclude(exclude, len(unit_queries))
        mask = check_allowed(allowed, self._n_rows)
        with (one_blas_thread() if len(unit_queries) <= FEW_QUERIES
              else contextlib.nullcontext()):
            return self._search(unit_queries, check_k(k), self._range(duration), excluded,
                                exact=exact, allowed=None if mask is None else mask[self._order])

    def similar_to_rows(self, rows: int | Sequence[int], *, k: int = 10,
                        duration: DurationRange = None) -> SearchResult:
        """Neighbours of rows by position ("more like this"), each row left out.

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
        internal = self._positions()[row_ids]
        if (internal < 0).any():
            bad = int(row_ids[np.flatnonzero(internal < 0)[0]])
            raise ParameterError(f"row {bad} has a zero-norm embedding and cannot be a query")
        vectors = self._backend.reconstruct(internal)
        return self._search(vectors, check_k(k), self._range(duration), row_ids)

    # -- storage -----------------------------------------------------------------------------

    def to_stored(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Header fields and arrays for :func:`~soundslike_nb.sidecar.write_stored` (the
        backend's arrays first)."""
        backend_header, backend_arrays = self._backend.to_stored()
        header = {"format": INDEX_FORMAT, "backend": self.kind, "rows": self._n_rows,
                  "dimension": self._dimension, "backend_header": backend_header}
        return header, {**backend_arrays, "order": self._order, "durations": self._durations}

    @classmethod
    def from_stored(cls, stored, *, mmap: bool = True) -> SoundIndex:
        """The index held by a :class:`~soundslike_nb.sidecar.StoredFile`; ``ValueError`` when
        it is not one this version reads."""
        header, arrays = stored.header, stored.arrays
        if header.get("format") != INDEX_FORMAT or header.get("backend") not in _BACKENDS:
            raise ValueError(f"index format {header.get('format')!r} / backend "
                             f"{header.get('backend')!r}")
        for name in ("order", "durations"):
            map_in(arrays[name])
        order = np.asarray(arrays["order"], np.int64)
        backend = _BACKENDS[header["backend"]].from_stored(
            header["backend_header"], arrays, path=stored.path, offsets=stored.offsets,
            n_valid=len(order), dimension=header["dimension"], mmap=mmap)
        index = cls.__new__(cls)
        index._init(order, np.asarray(arrays["durations"]), header["rows"],
                    header["dimension"], backend)
        return index

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to one file, atomically (readers see the old one or the new one).

        Example:
            >>> SoundIndex(np.eye(2), [1.0, 2.0]).save(tmp_path / "x.index")  # doctest: +SKIP
        """
        from ..sidecar import save_file

        save_file(path, "index", self.to_stored())

    @classmethod
    def load(cls, path: str | os.PathLike, *, mmap: bool = True) -> SoundIndex:
        """Read an index written by :meth:`save` (vectors memory-mapped with ``mmap``).

        Example:
            >>> SoundIndex.load(tmp_path / "x.index")  # doctest: +SKIP
        """
        from ..sidecar import load_file

        return load_file(path, "index", lambda stored: cls.from_stored(stored, mmap=mmap),
                         mmap=mmap)

    # -- internals ---------------------------------------------------------------------------

    def _search(self, queries: np.ndarray, k: int, span: tuple[int, int], excluded: np.ndarray,
                *, exact: bool = False, allowed: np.ndarray | None = None) -> SearchResult:
        """``allowed``: a boolean mask in internal order, or None."""
        fetch = k + 1 if (excluded >= 0).any() else k
        start, stop = span
        candidates = None
        if allowed is not None and stop > start:
            candidates = start + np.flatnonzero(allowed[start:stop])
            if len(candidates) == stop - start:
                allowed = candidates = None  # the mask keeps the whole range
        inside = (stop - start) if candidates is None else len(candidates)
        if stop <= start or inside == 0:
            internal = np.full((len(queries), fetch), -1, np.int64)
            sims = np.full((len(queries), fetch), -np.inf, np.float32)
        elif self._backend.kind != "exact" and inside <= self._backend.exact_limit(fetch):
            # few rows left: scoring them all is faster than the index, and loses nothing
            rows = np.arange(start, stop) if candidates is None else candidates
            if exact:
                internal, sims = exact_over(queries, fetch, rows, self._backend.reconstruct,
                                            tie_ids=self._order)
            else:
                internal, sims = self._backend.score_all(queries, fetch, rows, self._order)
        else:
            internal, sims = self._backend.search(queries, fetch, start, stop,
                                                  tie_ids=self._order, exhaustive=exact,
                                                  allowed=candidates)
        np.clip(sims, -1.0, 1.0, out=sims)  # float16 rows can put a twin at 1.00004
        sims[internal < 0] = -np.inf
        ids = np.full(internal.shape, -1, np.int64)
        ids[internal >= 0] = self._order[internal[internal >= 0]]
        if fetch > k:
            ids, sims = drop_excluded(ids, sims, excluded, k)
        return SearchResult(indices=ids, similarities=sims)

    def _range(self, duration: DurationRange) -> tuple[int, int]:
        lo, hi = check_duration(duration)
        start = 0 if lo is None else int(np.searchsorted(self._durations, lo, "left"))
        stop = (len(self._order) if hi is None
                else int(np.searchsorted(self._durations, hi, "right")))
        return start, stop

    def _positions(self) -> np.ndarray:
        if self._positions_cache is None:
            positions = np.full(self._n_rows, -1, np.int64)
            positions[self._order] = np.arange(len(self._order))
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
                f"got {np.shape(queries)}")
        array = array.astype(np.float64)
        finite = np.isfinite(array).all(axis=1)
        if not finite.all():
            raise ParameterError(f"query {int(np.flatnonzero(~finite)[0])} contains NaN or "
                                 "infinity")
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
