"""The search the app shows, as plain data: library, query, k, duration range, aspect weights,
label filter, results. No widgets in here; :class:`~.state.AppState` adds what the user browses.

Every change that affects the results re-runs the search at once, from the query's stored
features: the query sound is analysed once, when it is set (:mod:`.queries` makes it). Results
last about as long as the query by default (from a quarter to four times its length, within the
duration range), so that a one-second explosion does not bring back minutes of music.

Regions: a result may be a region of a long file (``start``/``end`` in
:attr:`SearchState.results`). The query may be a region of its sound too: a
:attr:`SearchState.span` selected on its waveform, then :meth:`SearchState.search_span`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from ..analysis_records import check_span
from ..errors import ParameterError, SoundslikeError
from ..library import Library
from ..projection import LibraryMap
from ..space import ASPECT_NAMES
from .formatting import DurationRange
from .queries import (
    analysis_progress,
    library_query,
    query_notice,
    region_query,
    span_features,
    upload_query,
    whole_query,
)
from .query_region import Span
from .state_values import (
    Query,
    checked_factor,
    checked_k,
    checked_per_file,
    checked_range,
    no_results,
    within,
)
from .uploads import UploadFolder, check_upload, safe_filename

__all__ = ["DEFAULT_RELATIVE_DURATION", "SearchState"]

#: Results last from the query's length divided by this to its length times this.
DEFAULT_RELATIVE_DURATION = 4.0
Listener = Callable[[frozenset[str]], None]


class SearchState:
    """The search as plain data; ``observe`` to hear which fields changed.

    ``results``: the search's table (rank, name, path, start, end, duration, similarity, one
    cosine per aspect; ``start``/``end`` NaN for a whole file) with each sound's library
    ``position`` and ``folder`` (``library.folders``).

    Args:
        library: the library searched.
        atlas: its map (``library.map()``), or ``None`` for no map.
        k: how many results (1 to :data:`~.state_values.K_MAX`).
        duration: permitted ``(min_s, max_s)``; ``None`` at either end means no limit.
        relative_duration: results last from the query's length divided by this to its length
            times this (within ``duration``); ``None`` lifts it.
        weights: aspect weights (``space.DEFAULT_WEIGHTS`` for those left out).
        uploads: where uploaded query files are saved (default: a new temporary folder).

    Example:
        >>> state = SearchState(lib, atlas=lib.map())  # doctest: +SKIP
        >>> state.set_query_row(3); state.k = 5  # doctest: +SKIP
        >>> list(state.results["rank"])  # doctest: +SKIP
        [1, 2, 3, 4, 5]
    """

    def __init__(self, library: Library, *, atlas: LibraryMap | None = None, k: int = 10,
                 duration: DurationRange | None = None,
                 relative_duration: float | None = DEFAULT_RELATIVE_DURATION,
                 weights: Mapping[str, float] | None = None,
                 uploads: UploadFolder | None = None) -> None:
        from ..space import check_weights

        self.library = library
        self.atlas = atlas
        self.uploads = uploads if uploads is not None else UploadFolder()
        self.query: Query | None = None
        self.results = no_results()
        #: The span selected on the query's waveform, ``(start_s, end_s)``; ``None``: none.
        self.span: Span | None = None
        self.error = ""
        #: What long work is under way (``"analysing door.wav…"``), ``""`` when none.
        self.busy = ""
        self.search_seconds = 0.0
        self._k = checked_k(k)
        self._duration: DurationRange = checked_range(duration)
        self._relative_duration = checked_factor(relative_duration)
        self._weights = check_weights(weights)
        self._label_filter: tuple[str, ...] = ()
        self._per_file: int | None = 1
        self._listeners: list[Listener] = []

    # -- observing ---------------------------------------------------------------------------

    def observe(self, listener: Listener) -> None:
        """Call ``listener(changed_field_names)`` after every change (``"duration"``: what
        :meth:`in_range` permits changed; ``"busy"``: long work started or ended)."""
        self._listeners.append(listener)

    def _changed(self, *names: str) -> None:
        changed = frozenset(names)
        for listener in list(self._listeners):
            listener(changed)

    # -- controls ----------------------------------------------------------------------------

    @property
    def k(self) -> int:
        """How many results to show; setting it re-runs the search (no re-embedding)."""
        return self._k

    @k.setter
    def k(self, value: int) -> None:
        value = checked_k(value)
        if value != self._k:
            self._k = value
            self._search("k")

    @property
    def per_file(self) -> int | None:
        """At most this many results from one file (it and its regions together; ``None``:
        any); setting it re-runs the search."""
        return self._per_file

    @per_file.setter
    def per_file(self, value: int | None) -> None:
        value = checked_per_file(value)
        if value != self._per_file:
            self._per_file = value
            self._search("per_file")

    @property
    def duration(self) -> DurationRange:
        """Permitted ``(min_s, max_s)`` of results; ``None`` ends are open."""
        return self._duration

    @duration.setter
    def duration(self, value: DurationRange | None) -> None:
        value = checked_range(value)
        if value != self._duration:
            self._duration = value
            self._search("duration")

    @property
    def relative_duration(self) -> float | None:
        """Results last from the query's length divided by this to its length times this;
        ``None``: any length."""
        return self._relative_duration

    @relative_duration.setter
    def relative_duration(self, value: float | None) -> None:
        value = checked_factor(value)
        if value != self._relative_duration:
            self._relative_duration = value
            self._search("relative_duration", "duration")

    @property
    def duration_window(self) -> DurationRange | None:
        """The query's similar-length window ``(length / r, length * r)``; ``None`` when it is
        lifted, or without a query of known length."""
        length = None if self.query is None else self.query.duration
        if self._relative_duration is None or length is None:
            return None
        return (length / self._relative_duration, length * self._relative_duration)

    @property
    def effective_duration(self) -> DurationRange:
        """The durations results may have: :attr:`duration` within :attr:`duration_window`.
        May be empty (minimum above maximum): then there are no results."""
        low, high = self._duration
        window = self.duration_window
        if window is not None:
            low = window[0] if low is None else max(low, window[0])
            high = window[1] if high is None else min(high, window[1])
        return (low, high)

    @property
    def label_filter(self) -> tuple[str, ...]:
        """Results carry at least one of these labels; ``()`` for any sound."""
        return self._label_filter

    @label_filter.setter
    def label_filter(self, labels: tuple[str, ...] | list[str]) -> None:
        labels = tuple(str(label) for label in labels)
        if labels != self._label_filter:
            self._label_filter = labels
            self._search("labels")

    @property
    def weights(self) -> dict[str, float]:
        """How much each aspect counts (``cnn``, ``timbre``, ``spectrum``, ``envelope``)."""
        return dict(self._weights)

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """Change some aspect weights and re-rank at once (nothing is analysed again).

        Invalid weights (all zero, negative, an unknown aspect) set :attr:`error` and keep the
        previous ones. A library without descriptors ranks by the CNN whatever the weights.
        """
        from ..space import check_weights

        try:
            value = check_weights(weights, defaults=self._weights)
        except ParameterError as exc:
            self.set_error(str(exc))
            return
        if value != self._weights:
            previous, self._weights = self._weights, value
            self._search("weights")
            if self.error:
                self._weights = previous

    @property
    def has_aspects(self) -> bool:
        """Whether the library has descriptors, so that timbre, spectrum and envelope weigh."""
        return self.library.descriptors is not None

    def in_range(self) -> np.ndarray:
        """Which library rows the duration range and the similar-length window permit (boolean,
        one per row): a file that lasts so long, or holds a region that does."""
        keep = within(self.library.rows["duration"].to_numpy(), self.effective_duration)
        regions = self.library.regions
        if len(regions):
            inside = within(regions["duration"].to_numpy(), self.effective_duration)
            keep[regions["file"].to_numpy()[inside]] = True
        return keep

    # -- the query ---------------------------------------------------------------------------

    def set_query_upload(self, name: str, content: bytes) -> bool:
        """Use an uploaded file as the query: checked, embedded, saved in the upload folder.

        A bad upload (empty, too large, not audio) sets :attr:`error` and keeps the previous
        query; returns whether the query changed. While it is analysed, :attr:`busy` says so
        (listeners hear ``"busy"`` before the analysis starts and after it ends, failed or not).
        """
        try:
            safe_name = check_upload(name, content, max_bytes=self.uploads.max_bytes)
        except SoundslikeError as exc:
            if self.busy:  # "receiving …" ends here
                self._set_busy("")
            self.set_error(str(exc))
            return False
        self._set_busy(f"analysing {safe_name}…")
        try:
            try:
                query = upload_query(
                    self.library, self.atlas, self.uploads, safe_name, content,
                    progress=analysis_progress(safe_name, self._set_busy))
            except SoundslikeError as exc:
                self.set_error(str(exc))
                return False
            self._set_query(query)
            return True
        finally:
            self._set_busy("")

    def set_query_row(self, position: int, *, region: Span | None = None) -> None:
        """Use library sound ``position`` as the query ("more like this"); it is left out of
        its own results. ``region``: only its ``(start_s, end_s)`` (a result row's region):
        then what overlaps that span of it is left out."""
        position = self._checked_position(position)
        self._set_query(library_query(self.library, self.atlas, position,
                                              region=region))

    def set_span(self, span: Span | None) -> None:
        """Select ``(start_s, end_s)`` of the query's sound to search with (:meth:`search_span`);
        ``None`` clears it. A span outside the sound or with start >= end is refused."""
        if span is not None:
            if self.query is None:
                raise ParameterError("there is no query to select a region of")
            span = check_span(span, self.query.length, name=self.query.name)
        if span != self.span:
            self.span = span
            self._changed("span")

    def search_span(self) -> bool:
        """Search with the selected :attr:`span` of the query's sound: that span is analysed
        (a library sound's stored region is reused) and the results follow; a span the model
        cannot analyse sets :attr:`error` and keeps the query. Returns whether it searched."""
        query = self.query
        if query is None or self.span is None:
            raise ParameterError("select a region of the query's waveform first")
        span = self.span
        self._set_busy(f"analysing {query.name} from {span[0]:.2f} to {span[1]:.2f} s…")
        try:
            try:
                features = span_features(self.library, query, span)
            except SoundslikeError as exc:
                self.set_error(str(exc))
                return False
            self._set_query(region_query(self.library, self.atlas, query, span,
                                                 features))
            return True
        finally:
            self._set_busy("")

    def search_whole(self) -> None:
        """Search with the query's whole sound again (after :meth:`search_span`)."""
        if self.query is not None and self.query.region is not None:
            self._set_query(whole_query(self.library, self.atlas, self.query))

    def set_receiving(self, name: str | None, share: float = 0.0) -> None:
        """Say that an upload is on its way to the kernel (``share`` of it arrived), which
        disables the controls as an analysis does; ``None`` says it stopped (refused or
        failed). The analysis that follows takes over :attr:`busy`."""
        if name is None:
            self._set_busy("")
            return
        share = min(max(float(share), 0.0), 1.0)
        self._set_busy(f"receiving {safe_filename(name)}… {math.floor(share * 100):d} %")

    def set_error(self, message: str) -> None:
        """Show a message for something that went wrong (``""`` clears it)."""
        self.error = str(message)
        self._changed("error")

    @property
    def notice(self) -> str:
        """Something to know about the query that is not an error (``""`` when nothing)."""
        return query_notice(self.query, self.library)

    # -- helpers -----------------------------------------------------------------------------

    def _set_query(self, query: Query) -> None:
        before = self.effective_duration
        # The selection on the waveform is the region searched, or stays while the sound does.
        same_sound = self.query is not None and query.path == self.query.path
        self.span = query.region or (self.span if same_sound else None)
        self.query = query
        # The similar-length window moves with the query: say so, so that the map re-greys.
        self._search("query", "span",
                     *(("duration",) if self.effective_duration != before else ()))

    def _set_busy(self, message: str) -> None:
        self.busy = message
        self._changed("busy")

    def _search(self, *cause: str) -> None:
        self.error = ""
        if self.query is None:
            self._changed(*cause, "error")
            return
        started = time.perf_counter()
        weights = (self._weights if self.has_aspects else
                   {aspect: float(aspect == "cnn") for aspect in ASPECT_NAMES})
        low, high = self.effective_duration
        if low is not None and high is not None and low > high:  # the two ranges do not meet
            changed = self._set_results(no_results())
            self.search_seconds = time.perf_counter() - started
            self._changed(*cause, "results", "error", *changed)
            return
        query = self.query
        try:
            # A library sound is left out of its results with its regions; a region of it,
            # only what overlaps that region (the rest of the take may hold more like it).
            hits = self.library.hits(query.features, k=self._k, duration=(low, high),
                                     weights=weights, exclude=query.position,
                                     exclude_span=None if query.position is None
                                     else query.region, per_file=self.per_file,
                                     tags=self._label_filter or None)
        except SoundslikeError as exc:  # any of ours is a message in the app, not a traceback
            self.error = str(exc)
            self._changed(*cause, "error")
            return
        found = hits.to_frame()
        found.insert(0, "position", hits.positions)
        found.insert(found.columns.get_loc("name") + 1, "folder",
                     self.library.folders.iloc[hits.positions].reset_index(drop=True))
        changed = self._set_results(found)
        self.search_seconds = time.perf_counter() - started
        self._changed(*cause, "results", "error", *changed)

    def _set_results(self, results: pd.DataFrame) -> tuple[str, ...]:
        """New results; returns the names of other fields that changed with them (none here;
        :class:`~.state.AppState` keeps its current row on its sound)."""
        self.results = results
        return ()

    def _checked_position(self, position: int) -> int:
        if isinstance(position, bool) or not isinstance(position, (int, np.integer)) or not (
                0 <= position < len(self.library)):
            raise ParameterError(f"{position!r} is not a row of the library "
                                 f"({len(self.library)} sounds)")
        return int(position)
