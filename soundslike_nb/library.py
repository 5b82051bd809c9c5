"""The library: a thin facade over its table, its analyzer and its searcher.

A :class:`Library` is what ``build_library`` returns and ``load_library`` reads: row metadata
(``name``, ``path``, ``duration``, ...), the embedding and descriptor matrices, and provenance.
A query is analysed by the library's :class:`~soundslike_nb.analysis.Analyzer` (its model and
its recorded analysis settings) and ranked by its :class:`~soundslike_nb.searcher.Searcher`;
what both derive from the file lives in its :class:`~soundslike_nb.sidecar.SidecarStore`.

The class is the facade; what it shows as tables is made in :mod:`~soundslike_nb._library_tables`,
its labels are kept by :mod:`~soundslike_nb._library_tags`, a query's analyzer is chosen in
:mod:`~soundslike_nb._library_queries`, and its map in :mod:`~soundslike_nb._library_map`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._library_map import library_map, map_point
from ._library_queries import query_analyzer, unchanged
from ._library_tables import (
    current_regions,
    embedding_frame,
    folders_of,
    region_features,
    regions_frame,
    row_features,
)
from ._library_tags import SoundLabels
from .analysis import AnalysisSettings, Analyzer, SoundFeatures, check_span
from .audio import AudioSource
from .embedders import Embedder
from .errors import ParameterError
from .libfile import LibraryTable, current_descriptors, read_table
from .model_choice import model_for_library
from .search import Hits, IndexSettings
from .sidecar import SidecarStore, content_key
from .space import ASPECT_NAMES

__all__ = ["RESULT_COLUMNS", "Library", "load_library"]

#: Columns of a search result: ``similarity`` is the weighted score, then one cosine per aspect.
#: ``start`` and ``end`` are a region's span in seconds (NaN for a whole file).
RESULT_COLUMNS = ["rank", "name", "path", "start", "end", "duration", "similarity",
                  *ASPECT_NAMES]
DurationRange = tuple[float | None, float | None] | None
#: Which sounds a tag call is about: a row position, a path, or a sequence of either, or a
#: boolean mask over the rows.
Sounds = int | str | os.PathLike | Sequence[int | str | os.PathLike] | np.ndarray


class Library:
    """Sounds, their vectors and provenance; search by sound file, features or row.

    Args:
        table: what the library file holds (``libfile.read_table``).
        path: the library file (its sidecar files live beside it); ``None`` in memory.
        embedder: the model to analyse queries with (a name, checkpoint or :class:`Embedder`);
            refused unless it is the library's. Default: the library's own, which loads
            unasked only if it is the shipped model.
        token: Hugging Face token for a gated hub model named in ``embedder``.
        device: where analysis runs (default: a GPU when there is one).
        index_settings: which search index (:class:`~soundslike_nb.search.IndexSettings`).

    Example:
        >>> lib = load_library("demo.parquet")  # doctest: +SKIP
        >>> lib.search("data/demo/kenney/coin1.wav", k=3)  # doctest: +SKIP
           rank    name                               path  duration  similarity ...
        0     1  coin 1  /.../data/demo/kenney/coin1.wav      0.41       1.000 ...
    """

    def __init__(self, table: LibraryTable, *, path: str | os.PathLike | None = None,
                 embedder: str | os.PathLike | Embedder | None = None,
                 analyzer: Analyzer | None = None, token: str | None = None,
                 device: str | None = None, index_settings: IndexSettings | None = None) -> None:
        self.rows = table.rows
        self.embeddings = table.embeddings
        #: (n, 86) classic descriptors (``descriptors.FEATURE_NAMES``); ``None`` for a library
        #: written before descriptors existed, or by a version that computed other ones.
        self.descriptors = current_descriptors(table)
        self.provenance = table.provenance
        #: (n, 64) uint8 waveform outlines (``analysis.waveform_thumbnail``), all zeros for a
        #: sound that has none; ``None`` for a library written before they existed.
        self.thumbnails = table.thumbnails
        #: The regions of the long files (:class:`~soundslike_nb.regions.Regions`; their
        #: descriptors ``None`` when the files' are); ``None`` in a library without regions.
        self.region_table = current_regions(table, self.descriptors)
        self.path = None if path is None else os.path.abspath(os.fspath(path))
        self._labels = SoundLabels(table.tags, self.rows["path"], self.path)
        self.store = SidecarStore(self.path)
        #: How this library's sounds were analysed; every query is analysed the same way.
        self.settings = AnalysisSettings.from_record(self.provenance.get("analysis"),
                                                     device=device)
        self.index_settings = index_settings if index_settings is not None else IndexSettings()
        self._token = token
        self._analyzer = query_analyzer(self.settings, self.embedder_info, analyzer=analyzer,
                                        embedder=embedder, token=token, device=device,
                                        where=self._where)
        self._searcher = None
        self._positions: dict[str, int] | None = None
        self._content_key: str | None = None
        self._frame: pd.DataFrame | None = None
        self._folders: pd.Series | None = None

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
    def read_in_part(self) -> dict[str, str]:
        """Files that failed part way through decoding: path → where and why. What was read
        before the fault is in the library (its duration is that part's)."""
        return dict(self.provenance.get("partial", {}))

    @property
    def content_key(self) -> str:
        """SHA-256 of every vector and duration: what the files beside the library are keyed
        by. Computed once (about 1 s at 1M sounds)."""
        if self._content_key is None:
            self._content_key = content_key(self.embeddings, self.descriptors,
                                            self.rows["duration"].to_numpy())
        return self._content_key

    @property
    def frame(self) -> pd.DataFrame:
        """The embedding dataframe: the row columns, ``tags`` (a tuple of labels per row),
        ``embedding`` and, when the library has them, ``descriptors`` and ``thumbnail`` (one
        vector each per row)."""
        if self._frame is None:
            self._frame = embedding_frame(self.rows, self._labels.tags, self.embeddings,
                                          self.descriptors, self.thumbnails)
        return self._frame

    @property
    def folders(self) -> pd.Series:
        """Each sound's folder relative to the library folder it was found in (``""`` for one
        at the top): what tells apart sounds of the same name (``"explosions/large"``).

        Example:
            >>> lib.folders[0]  # doctest: +SKIP
            'kenney'
        """
        if self._folders is None:
            self._folders = folders_of(self.rows["path"], self.provenance.get("roots", []))
        return self._folders

    @property
    def regions(self) -> pd.DataFrame:
        """One row per region of the long files: ``file`` (the file's row position),
        ``path``, ``start``, ``end`` and ``duration`` in seconds; no rows in a library without
        regions. A region's features: :meth:`region_features`.

        Example:
            >>> lib.regions[lib.regions["file"] == 12].head()  # doctest: +SKIP
               file                 path  start    end  duration
            40   12  /sfx/foley take.wav  3.020  3.510     0.490
        """
        return regions_frame(self.region_table, self.rows["path"])

    def region_features(self, region: int) -> SoundFeatures:
        """The stored features of region ``region`` (a row of :attr:`regions`)."""
        return region_features(self.region_table, region)

    def position_of(self, path: str | os.PathLike) -> int | None:
        """Row position of a file in the library, or ``None``."""
        if self._positions is None:
            self._positions = {path: i for i, path in enumerate(self.rows["path"])}
        return self._positions.get(os.path.abspath(os.fspath(path)))

    # -- tags ------------------------------------------------------------------------------

    @property
    def tags(self) -> pd.Series:
        """Each sound's labels, a sorted tuple (``()`` for none), as in ``frame["tags"]``.

        Example:
            >>> lib.tags[lib.tags.map(len) > 0].head()  # doctest: +SKIP
        """
        return pd.Series(self._labels.tags, index=self.rows.index, name="tags", dtype=object)

    def tag(self, sounds: Sounds, label: str) -> int:
        """Give ``label`` to ``sounds`` (row positions, paths, or a boolean mask) and store it
        in the library file (under its write lock; the vectors, and so the space, index and map
        beside the file, are untouched). A sound keeps its other labels.

        Returns:
            How many sounds got the label (those that had it already do not count).

        Example:
            >>> lib.tag(["/sfx/door slam.wav", 12], "impact")  # doctest: +SKIP
            2
        """
        from .tags import TagChange

        return self._change(TagChange(self._paths_of(sounds), label, add=True))

    def untag(self, sounds: Sounds, label: str | None = None) -> int:
        """Take ``label`` (every label when ``None``) off ``sounds``, in the file too; how many
        sounds changed.

        Example:
            >>> lib.untag(lib.carrying("impact"), "impact")  # doctest: +SKIP
            2
        """
        from .tags import TagChange

        return self._change(TagChange(self._paths_of(sounds), label, add=False))

    def label_counts(self) -> pd.Series:
        """Every label in the library with how many sounds carry it, most used first.

        Example:
            >>> lib.label_counts()  # doctest: +SKIP
            label
            impact    12
            whoosh     4
            Name: sounds, dtype: int64
        """
        from .tags import label_counts

        return label_counts(self._labels.tags)

    def carrying(self, labels: str | Iterable[str]) -> np.ndarray:
        """A boolean mask of the sounds that carry ANY of ``labels`` (each checked).

        Example:
            >>> lib.frame[lib.carrying(["impact", "hit"])]  # doctest: +SKIP
        """
        return self._labels.carrying(labels)

    def suggest_labels(self, *, labels: str | Iterable[str] | None = None,
                       min_confidence: float = 0.0, settings: Any = None,
                       progress: bool = False) -> pd.DataFrame:
        """Labels for untagged sounds from the tagged sounds near them: one row per sound given
        a suggestion, indexed by row position, most confident first: ``path``, ``name``,
        ``label``, ``confidence`` (0 to 1). ``labels``: spread only these; ``settings``: a
        :class:`~soundslike_nb.labels.SpreadSettings`; ``progress``: a bar while the neighbour
        graph is computed (once per library content). See :mod:`soundslike_nb.labels`.

        Example:
            >>> lib.suggest_labels(min_confidence=0.6).head()  # doctest: +SKIP
        """
        from .labels import suggest_labels

        return suggest_labels(self, labels=labels, min_confidence=min_confidence,
                              settings=settings, progress=progress)

    def accept_suggestions(self, suggestions: pd.DataFrame, *,
                           min_confidence: float | None = None) -> int:
        """Tag every sound of ``suggestions`` (:meth:`suggest_labels`) whose confidence is at
        least ``min_confidence`` (default ``labels.DEFAULT_MIN_CONFIDENCE``) with its label,
        in one write; how many sounds got a label.

        Example:
            >>> lib.accept_suggestions(lib.suggest_labels(), min_confidence=0.6)  # doctest: +SKIP
            40
        """
        from .labels import accepted_changes

        return self._change(*accepted_changes(suggestions, min_confidence=min_confidence))

    def _change(self, *changes: Any) -> int:
        """Apply tag changes (:meth:`SoundLabels.change`), and to :attr:`frame`."""
        changed = self._labels.change(changes)
        if changes and self._frame is not None:
            self._frame["tags"] = self._labels.tags
        return changed

    def _paths_of(self, sounds: Sounds) -> list[str]:
        return self._labels.paths_of(sounds, position_of=self.position_of)

    # -- analysis --------------------------------------------------------------------------

    @property
    def analyzer(self) -> Analyzer:
        """The library's model with its analysis settings, loaded on first use. Only the
        shipped model loads unasked; any other must be named (``load_library(embedder=...)``)."""
        if self._analyzer is None:
            model = model_for_library(self.embedder_info, token=self._token,
                                      device=self.settings.device, where=self._where)
            self._analyzer = Analyzer(model, self.settings)
        return self._analyzer

    @property
    def embedder(self) -> Embedder:
        """The model that analyses queries (:attr:`analyzer`'s)."""
        return self.analyzer.embedder

    def features_of(self, query: AudioSource | np.ndarray, *, name: str | None = None,
                    progress: Callable[[float], None] | None = None,
                    region: tuple[float, float] | None = None) -> SoundFeatures:
        """Analyse a query sound (path, file bytes, or mono waveform at the model rate) as the
        library's sounds were. A path that is an unchanged row of the library reuses its row.
        ``progress`` hears the share done (0 to 1) while a long sound is analysed.
        ``region``: ``(start, end)`` in seconds: only that span, analysed as a sound of its
        own; a span outside the sound, with start >= end, or shorter than the model's minimum
        is a :class:`~soundslike_nb.errors.ParameterError` naming the values.

        Example:
            >>> lib.features_of("door.wav").embedding.shape  # doctest: +SKIP
            (512,)
            >>> lib.features_of("foley take.wav", region=(12.0, 13.5))  # doctest: +SKIP
        """
        position = self.row_of(query) if region is None else None
        if position is not None:
            return self.row_features(position)
        return self.analyzer.analyse(query, name=name, progress=progress, span=region)

    def row_of(self, query: AudioSource | np.ndarray) -> int | None:
        """The library row a query is, if it is the path of an unchanged file of the library."""
        if not isinstance(query, (str, os.PathLike)):
            return None
        position = self.position_of(query)
        if position is None or not unchanged(self.rows.iloc[position]):
            return None
        return position

    def row_features(self, position: int) -> SoundFeatures:
        """The stored features of library row ``position``."""
        return row_features(self.embeddings, self.descriptors, position)

    # -- search ----------------------------------------------------------------------------

    @property
    def searcher(self):
        """The :class:`~soundslike_nb.searcher.Searcher`: the space fitted on this library and
        the index over it, reloaded from beside the file while its content is unchanged."""
        if self._searcher is None:
            from .searcher import Searcher

            self._searcher = Searcher.for_library(
                self.rows, self.embeddings, self.descriptors, store=self.store,
                content=self.content_key, settings=self.index_settings,
                regions=self.region_table)
        return self._searcher

    @property
    def space(self):
        """The fitted :class:`~soundslike_nb.space.SimilaritySpace` (``None`` without
        descriptors or sounds)."""
        return self.searcher.space

    @property
    def index(self):
        """The :class:`~soundslike_nb.search.SoundIndex` the searcher uses: the files' rows,
        then the regions' (``searcher.file_mask()`` keeps the files only)."""
        return self.searcher.index

    def hits(self, features: SoundFeatures, *, k: int = 10, duration: DurationRange = None,
             weights: Mapping[str, float] | None = None, exclude: int | None = None,
             tags: str | Iterable[str] | None = None, per_file: int | None = 1,
             exclude_span: tuple[float, float] | None = None) -> Hits:
        """The :class:`~soundslike_nb.search.Hits` of a query already analysed: row positions,
        region spans, scores and per-aspect cosines, most similar first (``.to_frame()`` for
        the table). ``tags`` and ``per_file`` as in :meth:`search`; ``exclude`` leaves out a
        file and its regions (only those overlapping ``exclude_span`` when given)."""
        allowed = None if tags is None else self.carrying(tags)
        return self.searcher.search(features, k=k, duration=duration, weights=weights,
                                    exclude=exclude, allowed=allowed, per_file=per_file,
                                    exclude_span=exclude_span)

    def search(self, query: AudioSource | np.ndarray, *, k: int = 10,
               duration: DurationRange = None, weights: Mapping[str, float] | None = None,
               name: str | None = None, tags: str | Iterable[str] | None = None,
               per_file: int | None = 1, region: tuple[float, float] | None = None
               ) -> pd.DataFrame:
        """The ``k`` sounds most similar to ``query``, most similar first: whole files and,
        in a library with regions, moments inside long files.

        Args:
            query: an audio file path, its bytes, or a mono waveform at the model's rate.
            k: how many results at most.
            duration: ``(min_s, max_s)``, inclusive; either end may be ``None``. It applies to
                what is returned: a region's own length for a region.
            weights: how much each aspect counts: ``cnn`` (overall character), ``timbre``,
                ``spectrum``, ``envelope``; an aspect left out keeps its default
                (``space.DEFAULT_WEIGHTS``). Descriptor weights 0 rank by the CNN alone.
            name: what to call the query in error messages.
            tags: only sounds carrying ANY of these labels (one label or a list; each checked
                like :meth:`tag`'s). The filter is applied inside the index, exactly when few
                sounds carry them, so no match is lost; a label nobody carries finds nothing.
            per_file: at most this many results from one file (the file itself and its
                regions together), so one long take does not fill the list; ``None``: no
                limit. Each moment is listed once (a region overlapping a better-ranked
                one of its file by half is left out).
            region: ``(start, end)`` in seconds: search by that span of ``query`` only (see
                :meth:`features_of`). On a file of this library, its own regions overlapping
                the span (and the whole file) are left out of the results.

        Returns:
            DataFrame with columns rank, name, path, start and end (a region's span in
            seconds, NaN for a whole file), duration, similarity (the weighted mean of the
            aspect cosines, 1.0 for the same sound), then the cosine of each aspect. A query
            that is an unchanged sound of this library is left out of its own results, with its
            regions (its stored vectors are used: nothing is analysed).

        Example:
            >>> lib.search("door.wav", k=5, weights={"envelope": 1})  # doctest: +SKIP
            >>> lib.search("foley take.wav", region=(12.0, 13.5), per_file=3)  # doctest: +SKIP
        """
        position = self.row_of(query)
        if region is not None:
            features = self.features_of(query, name=name, region=region)
            span = None if position is None else check_span(region, None, name=str(query))
            return self.hits(features, k=k, duration=duration, weights=weights, tags=tags,
                             per_file=per_file, exclude=position, exclude_span=span).to_frame()
        if position is not None:  # a sound of this library: "more like this", itself left out
            return self.similar_to(position, k=k, duration=duration, weights=weights,
                                   tags=tags, per_file=per_file)
        features = self.features_of(query, name=name)
        return self.search_features(features, k=k, duration=duration, weights=weights,
                                    tags=tags, per_file=per_file)

    def search_features(self, features: SoundFeatures, *, k: int = 10,
                        duration: DurationRange = None,
                        weights: Mapping[str, float] | None = None,
                        exclude: int | None = None,
                        tags: str | Iterable[str] | None = None,
                        per_file: int | None = 1) -> pd.DataFrame:
        """Like :meth:`search`, for a query already analysed (:meth:`features_of`,
        :meth:`row_features`, :meth:`region_features`). Changing ``weights`` re-ranks without
        analysing anything again."""
        return self.hits(features, k=k, duration=duration, weights=weights,
                         exclude=exclude, tags=tags, per_file=per_file).to_frame()

    def similar_to(self, row: int | str | os.PathLike, *, k: int = 10,
                   duration: DurationRange = None,
                   weights: Mapping[str, float] | None = None,
                   tags: str | Iterable[str] | None = None,
                   per_file: int | None = 1) -> pd.DataFrame:
        """"More like this": the sounds nearest a library row (position or path), minus itself
        and its regions (``tags``: only sounds carrying any of these labels)."""
        position = row if isinstance(row, (int, np.integer)) else self.position_of(row)
        if position is None or not 0 <= int(position) < len(self):
            raise ParameterError(f"{row!r} is not a row of this library ({len(self)} rows)")
        return self.search_features(self.row_features(int(position)), k=k, duration=duration,
                                    weights=weights, exclude=int(position), tags=tags,
                                    per_file=per_file)

    # -- the map ---------------------------------------------------------------------------

    def duplicates(self, *, threshold: float = 0.9, min_correlation: float = 0.92,
                   check_audio: bool = True, progress: bool = False) -> pd.DataFrame:
        """Groups of near-identical sounds, a suggested keeper each and why
        (:func:`~soundslike_nb.duplicates.find_duplicates`).

        Example:
            >>> lib.duplicates()[["group", "keep", "path", "reason"]]  # doctest: +SKIP
        """
        from .duplicates import find_duplicates

        return find_duplicates(self, threshold=threshold, min_correlation=min_correlation,
                               check_audio=check_audio, progress=progress)

    def map(self, *, progress: bool = True, refit: bool = False):
        """The library's :class:`~soundslike_nb.projection.LibraryMap`, fitted on the rows the
        search compares (so a query's results sit near its star), kept beside the file.

        Example:
            >>> atlas = load_library("data/demo.parquet").map()  # doctest: +SKIP
            >>> atlas.coordinates.shape  # doctest: +SKIP
            (56, 2)
        """
        return library_map(self, progress=progress, refit=refit)

    def map_point(self, features: SoundFeatures, atlas) -> tuple[float, float]:
        """Where a query lands on :meth:`map`'s map: placed through the same transform, among
        its nearest library rows as the index finds them (default weights)."""
        return map_point(self, features, atlas)

    @property
    def _where(self) -> str:
        return self.path or ""


def load_library(path: str | os.PathLike, *, embedder: str | os.PathLike | Embedder | None = None,
                 token: str | None = None, device: str | None = None) -> Library:
    """Read a library file written by ``build_library`` / ``soundslike index``.

    Args:
        path: the ``.parquet`` library file.
        embedder: the model to analyse queries with; refused unless it made the library.
            Needed for any model but the shipped one (a file never loads a model by itself).
        token: Hugging Face token for a gated hub model.
        device: where queries are analysed (default: a GPU when there is one).

    Example:
        >>> lib = load_library("demo.parquet")  # doctest: +SKIP
        >>> len(lib)  # doctest: +SKIP
        56
    """
    return Library(read_table(path), path=path, embedder=embedder, token=token, device=device)
