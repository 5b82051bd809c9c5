"""The app's state: library, query, k, duration range, aspect weights, results, selection.
No widgets in here.

Widgets (``app/widgets.py``) write to an :class:`AppState` and re-draw when it tells them what
changed; tests drive it directly. Every change that affects the results re-runs the search at
once, from the query's stored features: the query sound is analysed once, when it is set.

Auditioning is state too: the :attr:`AppState.current` result row (moved with the arrow keys)
and the sound :attr:`AppState.playing` (one at a time), so that a script or a test can play
through the results without a browser.

Results last about as long as the query by default (from a quarter to four times its length,
within the duration range), so that a one-second explosion does not bring back minutes of music.

Regions: a result may be a region of a long file (``start``/``end`` in :attr:`AppState.results`);
it plays as a :class:`~.query_region.Clip`. The query may be a region of its sound too: a
:attr:`AppState.span` selected on its waveform, then :meth:`AppState.search_span`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from ..analysis import SoundFeatures, check_span
from ..audio import info
from ..errors import ParameterError, SoundslikeError
from ..library import Library
from ..projection import LibraryMap
from ..space import ASPECT_NAMES
from .formatting import DurationRange, format_duration
from .query_region import Clip, Span, region_features, sound_of
from .state_values import (
    K_MAX,
    Query,
    checked_factor,
    checked_k,
    checked_range,
    no_results,
    positive_seconds,
    within,
)
from .uploads import UploadFolder, check_upload, safe_filename

__all__ = ["DEFAULT_RELATIVE_DURATION", "K_MAX", "QUERY", "AppState", "Query"]

#: Results last from the query's length divided by this to its length times this.
DEFAULT_RELATIVE_DURATION = 4.0
#: :attr:`AppState.playing` while an uploaded query (not a library sound) plays.
QUERY = "query"
#: Seconds between two progress messages while an upload is analysed.
PROGRESS_EVERY_S = 0.25
Listener = Callable[[frozenset[str]], None]


class AppState:
    """What the app shows, as plain data; ``observe`` to hear which fields changed.

    ``results``: the search's table (rank, name, path, start, end, duration, similarity, one
    cosine per aspect; ``start``/``end`` NaN for a whole file) with each sound's library
    ``position`` and ``folder`` (``library.folders``).

    Args:
        library: the library searched.
        atlas: its map (``library.map()``), or ``None`` for no map.
        k: how many results (1 to :data:`K_MAX`).
        duration: permitted ``(min_s, max_s)``; ``None`` at either end means no limit.
        relative_duration: results last from the query's length divided by this to its length
            times this (within ``duration``); ``None`` lifts it.
        weights: aspect weights (``space.DEFAULT_WEIGHTS`` for those left out).
        uploads: where uploaded query files are saved (default: a new temporary folder).

    Example:
        >>> state = AppState(lib, atlas=lib.map())  # doctest: +SKIP
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
        self.selection: int | None = None
        #: The selected sound's region ``(start_s, end_s)`` when a region was clicked.
        self.selected_region: Span | None = None
        #: The current result row (an index into :attr:`results`), ``None`` when none.
        self.current: int | None = None
        #: What plays: a library position, a :class:`Clip` (a region of one), :data:`QUERY`
        #: (an uploaded query), or ``None``.
        self.playing: int | Clip | str | None = None
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
        if value is not None and (isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < 1):
            raise ParameterError(f"per_file must be an integer >= 1 or None, got {value!r}")
        value = None if value is None else int(value)
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
                features = self.library.features_of(bytes(content), name=safe_name,
                                                    progress=self._progress_of(safe_name))
                length = positive_seconds(info(bytes(content), name=safe_name).duration)
                path = self.uploads.save(safe_name, content)
            except SoundslikeError as exc:
                self.set_error(str(exc))
                return False
            point = None if self.atlas is None else self.library.map_point(features, self.atlas)
            self._set_query(Query(name=safe_name, features=features, source="upload", path=path,
                                  point=point, duration=length, length=length))
            return True
        finally:
            self._set_busy("")

    def set_query_row(self, position: int, *, region: Span | None = None) -> None:
        """Use library sound ``position`` as the query ("more like this"); it is left out of
        its own results. ``region``: only its ``(start_s, end_s)`` (a result row's region):
        then what overlaps that span of it is left out."""
        position = self._checked_position(position)
        row = self.library.rows.iloc[position]
        length = positive_seconds(row["duration"])
        whole = self.library.row_features(position)
        point = None
        if self.atlas is not None:
            x, y = self.atlas.coordinates[position]
            point = (float(x), float(y))
        query = Query(name=str(row["name"]), features=whole, source="library",
                      path=str(row["path"]), position=position, point=point, duration=length,
                      length=length)
        if region is not None:
            span = check_span(region, length, name=query.name)
            query = self._region_query(query, span,
                                       region_features(self.library, position, span))
        self._set_query(query)

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
        whole = query.whole if query.whole is not None else query.features
        self._set_busy(f"analysing {query.name} from {span[0]:.2f} to {span[1]:.2f} s…")
        try:
            try:
                if query.position is not None:
                    features = region_features(self.library, query.position, span)
                else:
                    features = self.library.features_of(query.path, region=span)
            except SoundslikeError as exc:
                self.set_error(str(exc))
                return False
            self._set_query(self._region_query(replace(query, features=whole), span, features))
            return True
        finally:
            self._set_busy("")

    def search_whole(self) -> None:
        """Search with the query's whole sound again (after :meth:`search_span`)."""
        query = self.query
        if query is None or query.region is None:
            return
        point = query.point
        if query.position is not None and self.atlas is not None:
            x, y = self.atlas.coordinates[query.position]
            point = (float(x), float(y))
        elif self.atlas is not None:
            point = self.library.map_point(query.whole, self.atlas)
        self._set_query(replace(query, features=query.whole, region=None, whole=None,
                                duration=query.length, point=point))

    def _region_query(self, query: Query, span: Span, features: SoundFeatures) -> Query:
        """``query`` searching with ``features`` of its ``span``, placed on the map by them."""
        point = (None if self.atlas is None
                 else self.library.map_point(features, self.atlas))
        return replace(query, features=features, region=span, whole=query.features,
                       duration=span[1] - span[0], point=point)

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

    # -- the map -----------------------------------------------------------------------------

    def select(self, position: int | None, *, region: Span | None = None) -> None:
        """Select a library sound (a click on the map); ``None`` clears it. ``region``: one of
        its regions, ``(start_s, end_s)`` (a click on a region's point). Selecting the selected
        sound again is still a change (a second click plays it again)."""
        self.selection = None if position is None else self._checked_position(position)
        self.selected_region = None
        if region is not None and self.selection is not None:
            name = str(self.library.rows["name"].iloc[self.selection])
            self.selected_region = check_span(region, None, name=name, shortest_s=0.0)
        self._changed("selection")

    def query_selection(self) -> None:
        """Make the selected sound (its region, when one is selected) the query."""
        if self.selection is None:
            raise ParameterError("nothing is selected")
        self.set_query_row(self.selection, region=self.selected_region)

    def highlights(self) -> pd.DataFrame:
        """The current results on the map: position, rank, name, x, y (empty without a map)."""
        table = self.results[["position", "rank", "name", "similarity"]].copy()
        if self.atlas is None or not len(table):
            return table.assign(x=pd.Series(dtype=float), y=pd.Series(dtype=float)).iloc[:0]
        points = self.atlas.coordinates[table["position"].to_numpy()]
        return table.assign(x=points[:, 0], y=points[:, 1])

    # -- auditioning ------------------------------------------------------------------------

    @property
    def current_position(self) -> int | None:
        """The library position of the :attr:`current` result row (``None`` when none)."""
        if self.current is None:
            return None
        return int(self.results["position"].iloc[self.current])

    @property
    def current_sound(self) -> int | Clip | None:
        """What the :attr:`current` result row plays: its position, or the :class:`Clip` of
        the region it found (``None``: no current row)."""
        if self.current is None:
            return None
        return self.sound_at(self.current)

    def sound_at(self, index: int) -> int | Clip:
        """What result row ``index`` plays: its library position, or its region's
        :class:`Clip`."""
        row = self.results.iloc[index]
        return sound_of(int(row["position"]), float(row["start"]), float(row["end"]))

    def set_current(self, index: int | None) -> None:
        """Make result row ``index`` (0 is the most similar) current; ``None``: no row."""
        if index is not None and (isinstance(index, bool) or not isinstance(
                index, (int, np.integer)) or not 0 <= index < len(self.results)):
            raise ParameterError(f"{index!r} is not a result row ({len(self.results)} shown)")
        self.current = None if index is None else int(index)
        self._changed("current")

    def move_current(self, step: int) -> None:
        """Move the current row ``step`` rows down (up when negative), stopping at the ends;
        from no row, down starts at the first and up at the last. If a sound is playing, the
        new current row plays instead (listen, move on)."""
        count = len(self.results)
        if not count:
            return
        if self.current is None:
            index = 0 if step > 0 else count - 1
        else:
            index = min(max(self.current + int(step), 0), count - 1)
        follow = self.playing is not None and index != self.current
        self.set_current(index)
        if follow:
            self.play(self.current_sound)

    def play(self, sound: int | Clip | str | None) -> None:
        """Play ``sound`` (a library position, a :class:`Clip` of one, or :data:`QUERY` for an
        uploaded query): the one playing stops. ``None`` stops playback."""
        if isinstance(sound, tuple):
            position = self._checked_position(sound[0])
            name = str(self.library.rows["name"].iloc[position])
            sound = Clip(position, *check_span(sound[1:], None, name=name, shortest_s=0.0))
        elif sound is not None and sound != QUERY:
            sound = self._checked_position(sound)
        if sound != self.playing:
            self.playing = sound
            self._changed("playing")

    def stopped(self, sound: int | Clip | str) -> None:
        """``sound`` stopped or ended by itself (its player says so): nothing plays now,
        unless another sound has started meanwhile."""
        if sound == self.playing:
            self.play(None)

    def play_current(self) -> None:
        """Play the current row's sound, or stop it if it plays (the space bar); with no
        current row, the first row becomes current."""
        if self.current is None:
            if not len(self.results):
                return
            self.set_current(0)
        sound = self.current_sound
        self.play(None if self.playing == sound else sound)

    def query_current(self) -> None:
        """Make the current row's sound (its region, for a region) the query ("more like
        this", the Enter key)."""
        sound = self.current_sound
        if isinstance(sound, Clip):
            self.set_query_row(sound.position, region=(sound.start, sound.end))
        elif sound is not None:
            self.set_query_row(sound)

    def playing_point(self) -> tuple[float, float] | None:
        """Where the sound that plays is on the map (``None``: nothing plays, or no map)."""
        if self.playing is None or self.atlas is None:
            return None
        if self.playing == QUERY:
            return self.query.point if self.query is not None else None
        position = self.playing.position if isinstance(self.playing, Clip) else self.playing
        x, y = self.atlas.coordinates[position]
        return (float(x), float(y))

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

    @property
    def notice(self) -> str:
        """Something to know about the query that is not an error (``""`` when nothing)."""
        if self.query is None:
            return ""
        if self.query.features.silent:
            return (f"{self.query.name} is silent (peak below -60 dBFS): its results say "
                    "nothing about how it sounds")
        limit = self.library.settings.max_duration_s
        if self.query.source == "upload" and limit and (self.query.duration or 0) > limit:
            return (f"only the first {format_duration(limit)} of {self.query.name} are "
                    f"analysed, as for every sound of this library")
        return ""

    def _set_busy(self, message: str) -> None:
        self.busy = message
        self._changed("busy")

    def _progress_of(self, name: str) -> Callable[[float], None]:
        """A progress callback that keeps :attr:`busy` at "analysing NAME… 42 % (about 9 s
        left)", said again at most every :data:`PROGRESS_EVERY_S` (each says costs a redraw)."""
        started = time.perf_counter()
        said = [started]

        def progress(share: float) -> None:
            now = time.perf_counter()
            if now - said[0] < PROGRESS_EVERY_S or not 0 < share < 1:
                return
            said[0] = now
            message = f"analysing {name}… {math.floor(share * 100):d} %"
            if share >= 0.1:  # the first tenth includes decoding: too early to extrapolate
                left = (now - started) * (1 - share) / share
                message += f" (about {format_duration(max(left, 1.0))} left)"
            self._set_busy(message)

        return progress

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
            self._set_results(no_results())
            self.search_seconds = time.perf_counter() - started
            self._changed(*cause, "results", "error", "current")
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
        self._set_results(found)
        self.search_seconds = time.perf_counter() - started
        self._changed(*cause, "results", "error", "current")

    def _set_results(self, results: pd.DataFrame) -> None:
        """New results; the current row stays on its sound while that sound is still shown."""
        sound = self.current_sound
        self.results = results
        rows = [index for index in range(len(results)) if self.sound_at(index) == sound]
        self.current = rows[0] if sound is not None and rows else None

    def _checked_position(self, position: int) -> int:
        if isinstance(position, bool) or not isinstance(position, (int, np.integer)) or not (
                0 <= position < len(self.library)):
            raise ParameterError(f"{position!r} is not a row of the library "
                                 f"({len(self.library)} sounds)")
        return int(position)
