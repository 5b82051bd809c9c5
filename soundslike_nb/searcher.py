"""Ranking a library's sounds against a query: the fitted similarity space and the index over
it, made by one factory and kept in the library's sidecar store.

A :class:`Searcher` turns a query's :class:`~soundslike_nb.analysis.SoundFeatures` and aspect
weights into :class:`~soundslike_nb.search.Hits`: row positions, the weighted score and the
cosine of each aspect, recomputed exactly from the stored vectors of the hits. It also gives
the rows the map is fitted on (:meth:`Searcher.map_rows`) and a query's point on them
(:meth:`Searcher.map_vector`), so that the map and the search live in one space.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .analysis import SoundFeatures
from .errors import ParameterError
from .regions import Regions
from .search import Hits, IndexSettings, SoundIndex
from .search._common import one_blas_thread
from .search.index import INDEX_FORMAT
from .sidecar import SidecarStore, content_key, sidecar_key
from .space import ASPECT_NAMES, DEFAULT_WEIGHTS, SimilaritySpace, check_weights

__all__ = ["Searcher"]

DurationRange = tuple[float | None, float | None] | None


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
                 index: SoundIndex, *, regions: Regions | None = None,
                 region_index: SoundIndex | None = None) -> None:
        self.rows = rows
        self.embeddings = embeddings
        self.descriptors = descriptors
        self.space = space
        #: The index over the files (what the map, labels and duplicates search too).
        self.index = index
        #: The regions of the long files and the index over them (``None``: no regions).
        self.regions = regions if region_index is not None else None
        self.region_index = region_index

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
        ``regions``: the long files' regions, searched with the files (the space is fitted
        on the files alone; the regions get an index of their own)."""
        settings = settings if settings is not None else IndexSettings()
        space = None
        if descriptors is not None and len(rows):
            space = _space_for(embeddings, descriptors, store=store, content=content)
        durations = rows["duration"].to_numpy()
        options = {"space": None if space is None else space.options,
                   "weights": dict(DEFAULT_WEIGHTS), **settings.options()}
        key = sidecar_key("index", content, options, INDEX_FORMAT)
        index = store.load("index", key, SoundIndex.from_stored)
        if index is None:
            vectors = (embeddings if space is None
                       else space.index_rows(embeddings, descriptors))
            blocks = (None if space is None
                      else [columns.start for columns in space.slices.values()])
            index = SoundIndex(vectors, durations, settings=settings, blocks=blocks)
            store.save("index", key, *index.to_stored())
        region_index = None
        if regions is not None and len(regions) and len(rows):
            region_index = _region_index_for(regions, space, store=store, settings=settings,
                                             key_options={**options, "content": content})
        return cls(rows, embeddings, descriptors, space, index, regions=regions,
                   region_index=region_index)

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
        at most this many results from one file, itself and its regions (``None``: no limit);
        ``duration`` applies to what is returned (a region's length for a region).
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
        found = self.index.search(query, k=k, duration=duration,
                                  exclude=None if exclude is None else [exclude],
                                  allowed=allowed)
        files = found.indices[0][found.indices[0] >= 0]
        if self.region_index is None:
            return self._hits(files, np.zeros(0, np.int64), features, merged, transformed,
                              k=k, per_file=None)
        # The regions: enough candidates that ``per_file`` still leaves ``k`` files (a long
        # take's many similar windows count once), more asked for while it does not.
        mask = self._region_mask(allowed, exclude, exclude_span)
        available = len(self.regions) if mask is None else int(mask.sum())
        fetch = k if per_file is None else 4 * k * per_file + 16
        while True:
            asked = min(fetch, available)
            regions = np.zeros(0, np.int64)
            if asked:
                found = self.region_index.search(query, k=asked, duration=duration,
                                                 allowed=mask)
                regions = found.indices[0][found.indices[0] >= 0]
            hits = self._hits(files, regions, features, merged, transformed, k=k,
                              per_file=per_file)
            if len(hits) >= k or len(regions) < asked or asked >= available:
                return hits
            fetch *= 4

    def _region_mask(self, allowed: np.ndarray | None, exclude: int | None,
                     exclude_span: tuple[float, float] | None) -> np.ndarray | None:
        """The regions the search may return (``None``: all): those of allowed files, less the
        excluded file's (all of them, or those overlapping ``exclude_span``)."""
        owners = self.regions.owners
        mask = None if allowed is None else np.asarray(allowed, bool)[owners]
        if exclude is not None:
            first, last = np.searchsorted(owners, [exclude, exclude + 1])
            if last > first:
                mask = np.ones(len(owners), bool) if mask is None else mask
                gone = np.ones(last - first, bool)
                if exclude_span is not None:
                    spans = self.regions.spans_s[first:last]
                    gone = (spans[:, 0] < exclude_span[1]) & (spans[:, 1] > exclude_span[0])
                mask[first:last] &= ~gone
        return mask

    def _hits(self, files: np.ndarray, regions: np.ndarray, features: SoundFeatures,
              weights: dict[str, float], transformed: np.ndarray | None, *, k: int,
              per_file: int | None) -> Hits:
        """Hits scored exactly from the stored vectors (the index ranks by float16 rows), at
        most ``per_file`` from one file, the best ``k``."""
        if len(regions):
            owners = np.concatenate([files, self.regions.owners[regions]])
            spans = np.concatenate([np.full((len(files), 2), np.nan),
                                    self.regions.spans_s[regions]])
            embeddings = np.concatenate([self.embeddings[files],
                                         self.regions.embeddings[regions]])
            descriptors = (None if self.descriptors is None else np.concatenate(
                [self.descriptors[files], self.regions.descriptors[regions]]))
        else:
            owners, spans = files, None
            embeddings = self.embeddings[files]
            descriptors = None if self.descriptors is None else self.descriptors[files]
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
        order = np.argsort(-score, kind="stable")
        if per_file is not None and spans is not None:
            order = order[_first_per_owner(owners[order], per_file)]
        order = order[:k]
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


def _region_index_for(regions: Regions, space: SimilaritySpace | None, *, store: SidecarStore,
                      settings: IndexSettings, key_options: dict) -> SoundIndex:
    """The index over the regions (in the files' space; their lengths as durations), reloaded
    from ``store`` while the files and regions are the same."""
    content = content_key(regions.embeddings, regions.descriptors, regions.spans_s,
                          regions.owners)
    key = sidecar_key("region-index", content, key_options, INDEX_FORMAT)
    index = store.load("region-index", key, SoundIndex.from_stored)
    if index is None:
        vectors = (regions.embeddings if space is None
                   else space.index_rows(regions.embeddings, regions.descriptors))
        blocks = None if space is None else [columns.start for columns in space.slices.values()]
        index = SoundIndex(vectors, regions.spans_s[:, 1] - regions.spans_s[:, 0],
                           settings=settings, blocks=blocks)
        store.save("region-index", key, *index.to_stored())
    return index


def _first_per_owner(owners: np.ndarray, limit: int) -> np.ndarray:
    """Which items of ``owners`` (in rank order) are among the first ``limit`` of their owner.

    Example:
        >>> _first_per_owner(np.array([3, 3, 1, 3, 1]), 1).tolist()
        [True, False, True, False, False]
    """
    seen: dict[int, int] = {}
    keep = np.zeros(len(owners), bool)
    for position, owner in enumerate(owners.tolist()):
        count = seen.get(owner, 0)
        if count < limit:
            keep[position] = True
            seen[owner] = count + 1
    return keep


def _shares(weights: Mapping[str, float]) -> np.ndarray:
    """Each aspect's share of the total weight (what the ranking depends on)."""
    values = np.array([float(weights[aspect]) for aspect in ASPECT_NAMES])
    return values / values.sum()
