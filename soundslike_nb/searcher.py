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
from .search import Hits, IndexSettings, SoundIndex
from .search._common import one_blas_thread
from .search.index import INDEX_FORMAT
from .sidecar import SidecarStore, sidecar_key
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
                 index: SoundIndex) -> None:
        self.rows = rows
        self.embeddings = embeddings
        self.descriptors = descriptors
        self.space = space
        self.index = index

    def __repr__(self) -> str:
        space = "fitted space" if self.space is not None else "embedding only"
        return f"<Searcher over {len(self.rows)} sounds, {space}, {self.index!r}>"

    @classmethod
    def for_library(cls, rows: pd.DataFrame, embeddings: np.ndarray,
                    descriptors: np.ndarray | None, *, store: SidecarStore, content: str,
                    settings: IndexSettings | None = None) -> Searcher:
        """The one factory: the space and the index reloaded from ``store`` when they were
        made from this ``content`` (:func:`~soundslike_nb.sidecar.content_key`) with these
        options, else fitted and built, and saved there (a failed save is only logged)."""
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
        return cls(rows, embeddings, descriptors, space, index)

    # -- searching ---------------------------------------------------------------------------

    def search(self, features: SoundFeatures, *, k: int = 10, duration: DurationRange = None,
               weights: Mapping[str, float] | None = None, exclude: int | None = None,
               allowed: np.ndarray | None = None) -> Hits:
        """The ``k`` rows most similar to ``features``, most similar first.

        ``weights`` weigh the aspects (those left out keep :data:`DEFAULT_WEIGHTS`);
        ``exclude`` leaves out one row (the query itself, for "more like this"); ``allowed``
        (a boolean mask over the library rows) keeps only the rows marked True (tags, say),
        with no loss of recall however few they are.
        """
        with one_blas_thread():  # one query: small products, no BLAS threads to wake
            return self._search(features, k=k, duration=duration, weights=weights,
                                exclude=exclude, allowed=allowed)

    def _search(self, features: SoundFeatures, *, k: int, duration: DurationRange,
                weights: Mapping[str, float] | None, exclude: int | None,
                allowed: np.ndarray | None) -> Hits:
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
        return self._hits(found.indices[0], features, merged, transformed)

    def _hits(self, indices: np.ndarray, features: SoundFeatures,
              weights: dict[str, float], transformed: np.ndarray | None) -> Hits:
        """Hits scored exactly from the stored vectors (the index ranks by float16 rows)."""
        positions = indices[indices >= 0]
        cosines = np.full((len(positions), len(ASPECT_NAMES)), np.nan)
        if self.space is None:
            query = np.asarray(features.embedding, np.float64)
            rows = self.embeddings[positions].astype(np.float64)
            norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(query)
            cosines[:, 0] = rows @ query / np.where(norms > 0, norms, 1.0)
            score = cosines[:, 0]
        else:
            rows = self.space.transform(self.embeddings[positions], self.descriptors[positions])
            cosines = self.space.aspect_cosines(transformed, rows).astype(np.float64)
            score = cosines @ _shares(weights)
        order = np.argsort(-score, kind="stable")
        return Hits(self.rows, positions[order], score[order], cosines[order], ASPECT_NAMES)

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


def _shares(weights: Mapping[str, float]) -> np.ndarray:
    """Each aspect's share of the total weight (what the ranking depends on)."""
    values = np.array([float(weights[aspect]) for aspect in ASPECT_NAMES])
    return values / values.sum()
