"""The embedding library: one row per sound, its vectors, and search over it.

A :class:`Library` is what ``build_library`` returns and ``load_library`` reads: row metadata
(``name``, ``path``, ``duration``, ...), the embedding and descriptor matrices, and provenance
(which model made the vectors). Searching analyses the query with the library's own model (it
refuses a query embedded by any other) and ranks by a weighted sum of per-aspect cosines in the
similarity space fitted on the library (``space.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .audio import AudioSource, load
from .descriptors import DESCRIPTOR_VERSION, FEATURE_NAMES
from .embedders import Embedder, get_embedder
from .errors import EmbedderError, ParameterError
from .libfile import LibraryTable, read_table
from .pipeline import DEFAULT_MAX_ANALYSIS_S

__all__ = ["Library", "SoundFeatures", "current_descriptors", "load_library"]

#: The aspects a search weights (as in ``space.ASPECT_NAMES``; kept here so that importing the
#: library does not import the space).
ASPECTS = ("cnn", "timbre", "spectrum", "envelope")
#: Columns of a search result: ``similarity`` is the weighted score, then one cosine per aspect.
RESULT_COLUMNS = ["rank", "name", "path", "duration", "similarity", *ASPECTS]


@dataclass(frozen=True)
class SoundFeatures:
    """What a search compares: a sound's embedding and its descriptors (``None`` when the
    library has none)."""

    embedding: np.ndarray
    descriptors: np.ndarray | None = None


def current_descriptors(table: LibraryTable) -> np.ndarray | None:
    """The table's descriptors if this version computes the same ones, else ``None`` (stale)."""
    stored = table.provenance.get("descriptors") or {}
    if (table.descriptors is None or stored.get("version") != DESCRIPTOR_VERSION
            or table.descriptors.shape[1] != len(FEATURE_NAMES)):
        return None
    return table.descriptors


class Library:
    """Sounds, their embeddings and provenance; search by sound file or by vector.

    Example:
        >>> lib = load_library("demo.parquet")  # doctest: +SKIP
        >>> lib.search("data/demo/kenney/coin1.wav", k=3)  # doctest: +SKIP
           rank    name                               path  duration  similarity
        0     1  coin 1  /.../data/demo/kenney/coin1.wav  0.41       1.000
    """

    def __init__(self, table: LibraryTable, *, path: str | os.PathLike | None = None,
                 embedder: Embedder | None = None) -> None:
        self.rows = table.rows
        self.embeddings = table.embeddings
        #: (n, 86) classic descriptors (``descriptors.FEATURE_NAMES``); ``None`` for a library
        #: written before descriptors existed, or by a version that computed other ones.
        self.descriptors = current_descriptors(table)
        self.provenance = table.provenance
        self.path = None if path is None else os.path.abspath(os.fspath(path))
        self._embedder = embedder
        self._index = None
        self._space = None
        self._frame: pd.DataFrame | None = None
        self._positions: dict[str, int] | None = None
        self._content_key: str | None = None
        if embedder is not None:
            self.check_embedder(embedder)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        where = f" from {self.path!r}" if self.path else ""
        return f"<Library of {len(self)} sounds, {self.embedder_id}{where}>"

    # -- what the library holds ------------------------------------------------------------

    @property
    def embedder_info(self) -> dict[str, Any]:
        """Provenance of the model that embedded this library (id, dimension, weights...)."""
        return dict(self.provenance.get("embedder", {}))

    @property
    def embedder_id(self) -> str:
        """Id of the model that embedded this library, e.g. ``"aisfx-ismir2022"``."""
        return str(self.embedder_info.get("id", "unknown"))

    @property
    def failures(self) -> dict[str, str]:
        """Files that could not be indexed: path → reason."""
        return {path: record["reason"]
                for path, record in self.provenance.get("failures", {}).items()}

    @property
    def content_key(self) -> str:
        """SHA-256 of every vector and duration: what the index and map beside the library
        file are keyed by. Computed once (about 1 s at 1M sounds)."""
        if self._content_key is None:
            from .index import content_key

            self._content_key = content_key(self.embeddings, self.rows["duration"].to_numpy())
        return self._content_key

    @property
    def frame(self) -> pd.DataFrame:
        """The embedding dataframe: the row columns plus ``embedding`` and, when the library
        has them, ``descriptors`` (one vector each per row)."""
        if self._frame is None:
            frame = self.rows.copy()
            frame["embedding"] = list(self.embeddings)
            if self.descriptors is not None:
                frame["descriptors"] = list(self.descriptors)
            self._frame = frame
        return self._frame

    def position_of(self, path: str | os.PathLike) -> int | None:
        """Row position of a file in the library, or ``None``."""
        if self._positions is None:
            self._positions = {path: i for i, path in enumerate(self.rows["path"])}
        return self._positions.get(os.path.abspath(os.fspath(path)))

    # -- the model -------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        """The model that embedded this library, loaded on first use."""
        if self._embedder is None:
            source = self.embedder_info.get("source") or self.embedder_id
            self._embedder = get_embedder(source)
            self.check_embedder(self._embedder)
        return self._embedder

    def check_embedder(self, embedder: Embedder) -> None:
        """Refuse a model other than the library's own, naming both."""
        info = self.embedder_info
        theirs = embedder.provenance
        same = (theirs.get("id") == info.get("id")
                and theirs.get("weights_sha256") == info.get("weights_sha256")
                and theirs.get("frontend") == info.get("frontend")
                and int(theirs.get("dimension", -1)) == int(info.get("dimension", -2)))
        if not same:
            raise EmbedderError(
                f"the library {self.path or ''!s} was embedded by {_describe(info)}, the query "
                f"by {_describe(theirs)}: their similarities mean nothing; rebuild the library "
                "with the query's model (a new output file) or search with the library's"
            )

    # -- search ----------------------------------------------------------------------------

    @property
    def space(self):
        """The :class:`~soundslike_nb.space.SimilaritySpace` fitted on this library (kept
        beside the file), or ``None`` for a library without descriptors or without sounds."""
        if self._space is None and self.descriptors is not None and len(self):
            from .index_cache import space_for

            self._space = space_for(self)
        return self._space

    @property
    def index(self):
        """The :class:`~soundslike_nb.index.SoundIndex` over this library (built on first use)."""
        if self._index is None:
            from .index_cache import index_for

            self._index = index_for(self)
        return self._index

    def features_of(self, query: AudioSource | np.ndarray, *, name: str | None = None,
                    embedder: Embedder | None = None) -> SoundFeatures:
        """Analyse a query sound (path, file bytes, or mono waveform at the model rate) as the
        library's sounds were. A path that is an unchanged row of the library reuses its row.

        Example:
            >>> lib.features_of("door.wav").embedding.shape  # doctest: +SKIP
            (512,)
        """
        if embedder is not None:
            self.check_embedder(embedder)
        else:
            if isinstance(query, (str, os.PathLike)):
                position = self.position_of(query)
                if position is not None and _unchanged(self.rows.iloc[position]):
                    return self.row_features(position)
            embedder = self.embedder
        if isinstance(query, np.ndarray):
            from .audio import validate_waveform

            waveform = validate_waveform(query, name=name or "<query waveform>")
        else:
            # as when the library was built: long sounds count by their first minutes
            waveform, _ = load(query, sample_rate=embedder.sample_rate, name=name,
                               max_duration=DEFAULT_MAX_ANALYSIS_S)
        embedding = np.asarray(embedder.embed([waveform]), dtype=np.float32)[0]
        descriptors = None
        if self.descriptors is not None:
            from .descriptors import describe

            descriptors = describe([waveform], embedder.sample_rate)[0]
        return SoundFeatures(embedding, descriptors)

    def embed_query(self, query: AudioSource | np.ndarray, *, name: str | None = None,
                    embedder: Embedder | None = None) -> np.ndarray:
        """Only the embedding of :meth:`features_of` (what the map places a query by)."""
        return self.features_of(query, name=name, embedder=embedder).embedding

    def row_features(self, position: int) -> SoundFeatures:
        """The stored features of library row ``position``."""
        return SoundFeatures(self.embeddings[position],
                             None if self.descriptors is None else self.descriptors[position])

    def search(self, query: AudioSource | np.ndarray, *, k: int = 10,
               duration: tuple[float | None, float | None] | None = None,
               weights: Mapping[str, float] | None = None,
               embedder: Embedder | None = None, name: str | None = None) -> pd.DataFrame:
        """The ``k`` sounds most similar to ``query``, most similar first.

        Args:
            query: an audio file path, its bytes, or a mono waveform at the model's rate.
            k: how many results at most.
            duration: ``(min_s, max_s)``, inclusive; either end may be ``None``.
            weights: how much each aspect counts: ``cnn`` (overall character), ``timbre``,
                ``spectrum``, ``envelope``; an aspect left out keeps its default
                (``space.DEFAULT_WEIGHTS``). Descriptor weights 0 rank by the CNN alone.
            embedder: the model that should embed the query; refused unless it is the
                library's own (the default).
            name: what to call the query in error messages.

        Returns:
            DataFrame with columns rank, name, path, duration, similarity (the weighted mean
            of the aspect cosines, 1.0 for the query itself), then the cosine of each aspect.

        Example:
            >>> lib.search("door.wav", k=5, weights={"envelope": 1})  # doctest: +SKIP
        """
        features = self.features_of(query, name=name, embedder=embedder)
        return self.search_features(features, k=k, duration=duration, weights=weights)

    def search_features(self, features: SoundFeatures, *, k: int = 10,
                        duration: tuple[float | None, float | None] | None = None,
                        weights: Mapping[str, float] | None = None,
                        exclude: int | None = None) -> pd.DataFrame:
        """Like :meth:`search`, for a query already analysed (:meth:`features_of`,
        :meth:`row_features`). Changing ``weights`` re-ranks without analysing anything again."""
        from .space import DEFAULT_WEIGHTS, check_weights

        space = self.space
        merged = check_weights(weights)
        if space is None:
            if self.descriptors is None and any(
                    float((weights or {}).get(aspect, 0)) for aspect in ASPECTS[1:]):
                raise ParameterError(
                    f"the library {self.path or ''!s} has no descriptors (written by an older "
                    "soundslike_nb): index it again to weight timbre, spectrum or envelope")
            query = np.asarray(features.embedding, dtype=np.float32)
        else:
            if features.descriptors is None:
                raise ParameterError("the query has no descriptors; analyse it with "
                                     "Library.features_of")
            query = space.query_row(features.embedding, features.descriptors, merged)
        # Weights other than the defaults scan every row: an approximate index is calibrated
        # for the default weighting only, and a search must not lose a true neighbour.
        exact = space is not None and not np.allclose(
            _shares(merged), _shares(DEFAULT_WEIGHTS), rtol=0, atol=1e-9)
        result = self.index.search(query, k=k, duration=duration, exact=exact,
                                   exclude=None if exclude is None else [exclude])
        return self._results(result.indices[0], features, merged)

    def similar_to(self, row: int | str | os.PathLike, *, k: int = 10,
                   duration: tuple[float | None, float | None] | None = None,
                   weights: Mapping[str, float] | None = None) -> pd.DataFrame:
        """"More like this": the sounds nearest a library row (position or path), minus itself."""
        position = row if isinstance(row, (int, np.integer)) else self.position_of(row)
        if position is None or not 0 <= int(position) < len(self):
            raise ParameterError(f"{row!r} is not a row of this library ({len(self)} rows)")
        return self.search_features(self.row_features(int(position)), k=k, duration=duration,
                                    weights=weights, exclude=int(position))

    def _results(self, indices: np.ndarray, features: SoundFeatures,
                 weights: dict[str, float]) -> pd.DataFrame:
        """The result table, scored exactly from the stored vectors of the hits."""
        positions = indices[indices >= 0]
        cosines = np.full((len(positions), len(ASPECTS)), np.nan)
        space = self.space
        if space is None:
            query = np.asarray(features.embedding, np.float64)
            rows = self.embeddings[positions].astype(np.float64)
            norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(query)
            cosines[:, 0] = rows @ query / np.where(norms > 0, norms, 1.0)
            score = cosines[:, 0]
        else:
            query = space.transform(features.embedding[None], features.descriptors[None])[0]
            rows = space.transform(self.embeddings[positions], self.descriptors[positions])
            cosines = space.aspect_cosines(query, rows).astype(np.float64)
            score = cosines @ _shares(weights)
        order = np.argsort(-score, kind="stable")  # the index ranks by float16 codes
        table = self.rows.iloc[positions[order]][["name", "path", "duration"]]
        table = table.reset_index(drop=True)
        table.insert(0, "rank", np.arange(1, len(positions) + 1))
        table["similarity"] = score[order]
        for column, aspect in enumerate(ASPECTS):
            table[aspect] = cosines[order, column]
        return table[RESULT_COLUMNS]


def _shares(weights: Mapping[str, float]) -> np.ndarray:
    """Each aspect's share of the total weight (what the ranking depends on)."""
    values = np.array([float(weights[aspect]) for aspect in ASPECTS])
    return values / values.sum()


def _describe(model: dict[str, Any]) -> str:
    frontend = f", front end {model['frontend']}" if model.get("frontend") else ""
    return (f"{model.get('id')!r} ({model.get('dimension')}-d, weights "
            f"{str(model.get('weights_sha256'))[:12]}{frontend})")


def _unchanged(row: pd.Series) -> bool:
    try:
        stat = os.stat(row["path"])
    except OSError:
        return False
    return stat.st_size == row["size"] and stat.st_mtime == row["mtime"]


def load_library(path: str | os.PathLike, *, embedder: Embedder | None = None) -> Library:
    """Read a library file written by ``build_library`` / ``soundslike index``.

    Args:
        path: the ``.parquet`` library file.
        embedder: the model you will query with; refused unless it made the library.

    Example:
        >>> lib = load_library("demo.parquet")  # doctest: +SKIP
        >>> len(lib)  # doctest: +SKIP
        56
    """
    return Library(read_table(path), path=path, embedder=embedder)
