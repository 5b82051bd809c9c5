"""Ranking a library's sounds against a query: the fitted similarity space and the index over
it, made by one factory and kept in the library's sidecar store.

A :class:`Searcher` turns a query's :class:`~soundslike_nb.analysis.SoundFeatures` and aspect
weights into :class:`~soundslike_nb.search.Hits`: row positions, the weighted score and the
cosine of each aspect, recomputed exactly from the stored vectors of the hits. It also gives
the rows the map is fitted on (:meth:`Searcher.map_rows`) and a query's point on them
(:meth:`Searcher.map_vector`), so that the map and the search live in one space.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .analysis_records import SoundFeatures
from .errors import ParameterError
from .regions import Regions
from .search import Hits, IndexSettings, SoundIndex
from .search._common import one_blas_thread
from .search.index import INDEX_FORMAT
from .sidecar import SidecarStore, content_key, sidecar_key
from .space import ASPECT_NAMES, DEFAULT_WEIGHTS, SimilaritySpace, check_weights

__all__ = ["Searcher", "distinct_moments"]

DurationRange = tuple[float | None, float | None] | None
#: Candidates kept past ``k`` for the exact re-scoring after collapsing per file (the index
#: ranks by float16 rows: the exact order can differ near the end of the list).
_SPARE = 8


class Searcher:
    """A library's similarity space (``None`` without descriptors) and its index.

    Build it with :meth:`for_library`; ``rows`` is the library's row table (for the hits).

    Example:
        >>> searcher = Searcher.for_library(rows, embeddings, descriptors,  # doctest: +SKIP
        ...                                 store=SidecarStore(None), content="...")
        >>> searcher.search(features, k=5).to_frame()  # doctest: +SKIP
    """

    def __init__(self, rows: pd.DataFrame, embeddings: np.ndarray,
                 descriptors: np.ndarray | None, space: SimilaritySpace | None,
                 index: SoundIndex, *, regions: Regions | None = None) -> None:
        self.rows = rows
        self.embeddings = embeddings
        self.descriptors = descriptors
        self.space = space
        #: The index: the files' rows (ids ``0 .. len(rows) - 1``), then the regions' (id
        #: ``len(rows) + r`` is region ``r``). Whoever wants files only asks with
        #: :meth:`file_mask`.
        self.index = index
        #: The regions of the long files (``None``: none).
        self.regions = regions if regions is not None and len(regions) else None
        self._files_only: np.ndarray | None = None

    def __repr__(self) -> str:
        space = "fitted space" if self.space is not None else "embedding only"
        regions = f" and {len(self.regions)} regions" if self.regions is not None else ""
        return f"<Searcher over {len(self.rows)} sounds{regions}, {space}, {self.index!r}>"

    @classmethod
    def for_library(cls, rows: pd.DataFrame, embeddings: np.ndarray,
                    descriptors: np.ndarray | None, *, store: SidecarStore, content: str,
                    settings: IndexSettings | None = None,
                    regions: Regions | None = None) -> Searcher:
        """The one factory: the space and the index reloaded from ``store`` when they were
        made from this ``content`` (:func:`~soundslike_nb.sidecar.content_key`) with these
        options, else fitted and built, and saved there (a failed save is only logged).
        ``regions``: the long files' regions, indexed after the files in the files' space
        (fitted on the files alone), their lengths as durations."""
        settings = settings if settings is not None else IndexSettings()
        space = None
        if descriptors is not None and len(rows):
            space = _space_for(embeddings, descriptors, store=store, content=content)
        regions = regions if regions is not None and len(regions) and len(rows) else None
        options = {"space": None if space is None else space.options,
                   "weights": dict(DEFAULT_WEIGHTS), **settings.options()}
        if regions is not None:
            options["regions"] = content_key(regions.embeddings, regions.descriptors,
                                             regions.spans_s, regions.owners)
        key = sidecar_key("index", content, options, INDEX_FORMAT)
        index = store.load("index", key, SoundIndex.from_stored)
        if index is None:
            index = _index_of(rows, embeddings, descriptors, regions, space, settings)
            store.save("index", key, *index.to_stored())
        return cls(rows, embeddings, descriptors, space, index, regions=regions)

    def file_mask(self, allowed: np.ndarray | None = None) -> np.ndarray | None:
        """An ``allowed`` mask for :attr:`index` that keeps the files (those of ``allowed``, a
        mask over the files, when given) and no region; ``None`` when nothing is left out.

        Example:
            >>> searcher.index.search(vector, k=5, allowed=searcher.file_mask())  # doctest: +SKIP
        """
        if self.regions is None:
            return allowed
        if allowed is None:
            if self._files_only is None:
                self._files_only = np.arange(len(self.rows) + len(self.regions)) < len(self.rows)
            return self._files_only
        return np.concatenate([np.asarray(allowed, bool), np.zeros(len(self.regions), bool)])

    # -- searching ---------------------------------------------------------------------------

    def search(self, features: SoundFeatures, *, k: int = 10, duration: DurationRange = None,
               weights: Mapping[str, float] | None = None, exclude: int | None = None,
               allowed: np.ndarray | None = None, per_file: int | None = 1,
               exclude_span: tuple[float, float] | None = None) -> Hits:
        """The ``k`` files and regions most similar to ``features``, most similar first.

        ``weights`` weigh the aspects (those left out keep :data:`DEFAULT_WEIGHTS`);
        ``exclude`` leaves out one file (the query itself, for "more like this") with its
        regions, or only those overlapping ``exclude_span`` (a query that is a span of it);
        ``allowed`` (a boolean mask over the library rows) keeps only the files marked True and
        their regions (tags, say), with no loss of recall however few they are; ``per_file``:
        at most this many results from one file, itself and its regions (``None``: no limit),
        each moment once (:func:`distinct_moments`); ``duration`` applies to what is returned
        (a region's length for a region).
        """
        if per_file is not None and (isinstance(per_file, bool) or not isinstance(
                per_file, (int, np.integer)) or per_file < 1):
            raise ParameterError(f"per_file must be a whole number >= 1 or None, got "
                                 f"{per_file!r}")
        with one_blas_thread():  # one query: small products, no BLAS threads to wake
            return self._search(features, k=k, duration=duration, weights=weights,
                                exclude=exclude, allowed=allowed, per_file=per_file,
                                exclude_span=exclude_span)

    def _search(self, features: SoundFeatures, *, k: int, duration: DurationRange,
                weights: Mapping[str, float] | None, exclude: int | None,
                allowed: np.ndarray | None, per_file: int | None,
                exclude_span: tuple[float, float] | None) -> Hits:
        merged = check_weights(weights)
        if self.space is None:
            if self.descriptors is None and any(
                    float((weights or {}).get(aspect, 0)) for aspect in ASPECT_NAMES[1:]):
                raise ParameterError(
                    "this library has no descriptors (written by an older soundslike_nb): "
                    "index it again to weight timbre, spectrum or envelope")
            query = np.asarray(features.embedding, dtype=np.float32)
            transformed = None
        else:
            if features.descriptors is None:
                raise ParameterError("the query has no descriptors; analyse it with "
                                     "Library.features_of")
            transformed = self.space.transform(features.embedding[None],
                                               features.descriptors[None])[0]
            # Any weighting is one index search: the index notices a query weighted unlike
            # its rows and answers it with the scans made for steered queries.
            query = self.space.weighted_query(transformed, merged)
        if self.regions is None:
            found = self.index.search(query, k=k, duration=duration,
                                      exclude=None if exclude is None else [exclude],
                                      allowed=allowed)
            return self._hits(found.indices[0], features, merged, transformed, k=k,
                              per_file=None)
        # Enough candidates that ``per_file`` still leaves ``k`` files (a long take's many
        # similar windows count once) and each moment is listed once, more asked for while
        # it does not.
        mask, single = self._mask(allowed, exclude, exclude_span)
        available = len(self.rows) + len(self.regions) if mask is None else int(mask.sum())
        fetch = 2 * k * (per_file or 1) + 8
        while True:
            asked = min(fetch, available)
            if not asked:
                return self._hits(np.zeros(0, np.int64), features, merged, transformed, k=k,
                                  per_file=per_file)
            found = self.index.search(query, k=asked, duration=duration, allowed=mask,
                                      exclude=single)
            ids = found.indices[0]
            hits = self._hits(ids, features, merged, transformed, k=k, per_file=per_file)
            if len(hits) >= k or (ids < 0).any() or asked >= available:
                return hits
            fetch *= 4

    def _mask(self, allowed: np.ndarray | None, exclude: int | None,
              exclude_span: tuple[float, float] | None
              ) -> tuple[np.ndarray | None, list[int] | None]:
        """What the index may return: a mask over its rows (``None``: all) and one row to
        leave out (``None``: none): the allowed files and their regions, less the excluded
        file and its regions (all of them, or those overlapping ``exclude_span``)."""
        owners = self.regions.owners
        count = len(self.rows)
        mask = None
        if allowed is not None:
            allowed = np.asarray(allowed, bool)
            mask = np.concatenate([allowed, allowed[owners]])
        if exclude is None:
            return mask, None
        first, last = np.searchsorted(owners, [exclude, exclude + 1])
        if last == first and exclude_span is None:
            return mask, [exclude]  # a file without regions: the index leaves it out
        mask = np.ones(count + len(owners), bool) if mask is None else mask
        mask[exclude] = False
        spans = self.regions.spans_s[first:last]
        gone = np.ones(last - first, bool) if exclude_span is None else (
            (spans[:, 0] < exclude_span[1]) & (spans[:, 1] > exclude_span[0]))
        mask[count + first:count + last] &= ~gone
        return mask, None

    def _hits(self, ids: np.ndarray, features: SoundFeatures,
              weights: dict[str, float], transformed: np.ndarray | None, *, k: int,
              per_file: int | None) -> Hits:
        """The index's ``ids`` (ranked by its float16 rows) as hits: at most ``per_file``
        from one file, the best ``k`` of them scored exactly from the stored vectors."""
        ids = ids[ids >= 0]
        count = len(self.rows)
        files = ids < count
        if self.regions is None or files.all():
            owners, spans = ids, None
            embeddings = self.embeddings[ids]
            descriptors = None if self.descriptors is None else self.descriptors[ids]
        else:
            regions = np.where(files, 0, ids - count)
            owners = np.where(files, ids, self.regions.owners[regions])
            spans = np.where(files[:, None], np.nan, self.regions.spans_s[regions])
            # collapsed on the index's ranking, a few spare kept for the exact scores
            kept = distinct_moments(owners, spans, per_file=per_file)
            kept[np.cumsum(kept) > k + _SPARE] = False
            ids, files, regions, owners = ids[kept], files[kept], regions[kept], owners[kept]
            spans = spans[kept]
            embeddings = np.where(files[:, None], self.embeddings[np.where(files, ids, 0)],
                                  self.regions.embeddings[regions])
            descriptors = None if self.descriptors is None else np.where(
                files[:, None], self.descriptors[np.where(files, ids, 0)],
                self.regions.descriptors[regions])
        cosines = np.full((len(owners), len(ASPECT_NAMES)), np.nan)
        if self.space is None:
            query = np.asarray(features.embedding, np.float64)
            rows = embeddings.astype(np.float64)
            norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(query)
            cosines[:, 0] = rows @ query / np.where(norms > 0, norms, 1.0)
            score = cosines[:, 0]
        else:
            rows = self.space.transform(embeddings, descriptors)
            cosines = self.space.aspect_cosines(transformed, rows).astype(np.float64)
            score = cosines @ _shares(weights)
        order = np.argsort(-score, kind="stable")[:k]
        return Hits(self.rows, owners[order], score[order], cosines[order], ASPECT_NAMES,
                    starts=None if spans is None else spans[order, 0],
                    ends=None if spans is None else spans[order, 1])

    # -- the map's space ---------------------------------------------------------------------

    def map_rows(self) -> np.ndarray:
        """The rows the search compares at the default weights (what the index holds): the
        map is fitted on these, so a query's neighbours sit near its star."""
        if self.space is None:
            return np.asarray(self.embeddings, dtype=np.float32)
        return self.space.index_rows(self.embeddings, self.descriptors)

    def map_vector(self, features: SoundFeatures) -> np.ndarray:
        """A query's row in :meth:`map_rows`' space (to place it on the map)."""
        if self.space is None or features.descriptors is None:
            return np.asarray(features.embedding, dtype=np.float32)
        return self.space.index_rows(features.embedding[None], features.descriptors[None])[0]


def _space_for(embeddings: np.ndarray, descriptors: np.ndarray, *, store: SidecarStore,
               content: str) -> SimilaritySpace:
    from .space import FORMAT_VERSION

    space = SimilaritySpace()
    key = sidecar_key("space", content, space.options, FORMAT_VERSION)
    stored = store.load("space", key, SimilaritySpace.from_stored, mmap=False)
    if stored is not None:
        return stored
    space.fit(embeddings, descriptors)
    store.save("space", key, *space.to_stored())
    return space


def _index_of(rows: pd.DataFrame, embeddings: np.ndarray, descriptors: np.ndarray | None,
              regions: Regions | None, space: SimilaritySpace | None,
              settings: IndexSettings) -> SoundIndex:
    """A new index over the files' rows, then the regions' (their lengths as durations)."""
    durations = rows["duration"].to_numpy(np.float64)
    if regions is not None:
        embeddings = np.concatenate([embeddings, regions.embeddings])
        descriptors = (None if descriptors is None
                       else np.concatenate([descriptors, regions.descriptors]))
        durations = np.concatenate([durations, regions.spans_s[:, 1] - regions.spans_s[:, 0]])
    vectors = embeddings if space is None else space.index_rows(embeddings, descriptors)
    blocks = None if space is None else [columns.start for columns in space.slices.values()]
    return SoundIndex(vectors, durations, settings=settings, blocks=blocks)


def distinct_moments(owners: np.ndarray, spans_s: np.ndarray, *, per_file: int | None
                     ) -> np.ndarray:
    """Which results (in rank order) a list shows: at most ``per_file`` of one file (``None``:
    no limit), and no region overlapping a better-ranked region of its file by half of the
    shorter of the two (the 0.1 s, 1 s and whole-event regions of one door slam, or two
    windows of one ambience a hop apart, are one moment). ``owners``: each result's file;
    ``spans_s``: ``(n, 2)`` start and end in seconds, NaN for a whole file (a file and a
    moment of it are two answers).

    Measured (benchmarks/regions.py, 12 beds a split, 0 dB SNR): planted-region recall@5 0.81
    -> 0.85 (chosen beds) and 0.81 -> 0.88 (held-out) when one moment is listed once.

    Example:
        >>> owners = np.array([3, 3, 3, 1])
        >>> spans = np.array([[2.0, 2.1], [2.0, 3.0], [9.0, 9.5], [np.nan, np.nan]])
        >>> distinct_moments(owners, spans, per_file=None).tolist()
        [True, False, True, True]
        >>> distinct_moments(owners, spans, per_file=1).tolist()
        [True, False, False, True]
    """
    keep = np.zeros(len(owners), bool)
    shown: dict[int, list[tuple[float, float]]] = {}
    for position, (owner, (start, end)) in enumerate(zip(owners.tolist(), spans_s.tolist())):
        mine = shown.setdefault(owner, [])
        if per_file is not None and len(mine) >= per_file:
            continue
        if not math.isnan(start) and any(  # a region; a whole file overlaps nothing
                min(end, other_end) - max(start, other_start)
                >= 0.5 * min(end - start, other_end - other_start)
                for other_start, other_end in mine if not math.isnan(other_start)):
            continue
        keep[position] = True
        mine.append((start, end))
    return keep


def _shares(weights: Mapping[str, float]) -> np.ndarray:
    """Each aspect's share of the total weight (what the ranking depends on)."""
    values = np.array([float(weights[aspect]) for aspect in ASPECT_NAMES])
    return values / values.sum()
