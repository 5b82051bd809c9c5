"""The app's state: the search (:class:`~.search_state.SearchState`) and what the user browses,
the selection on the map and the result auditioned. No widgets in here.

Widgets (``app/widgets.py``) write to an :class:`AppState` and re-draw when it tells them what
changed; tests drive it directly.

Auditioning is state too: the :attr:`AppState.current` result row (moved with the arrow keys)
and the sound :attr:`AppState.playing` (one at a time), so that a script or a test can play
through the results without a browser. A result that is a region of a long file plays as a
:class:`~.query_region.Clip`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis_records import check_span
from ..errors import ParameterError
from ..library import Library
from .query_region import Clip, Span, sound_of
from .search_state import SearchState

__all__ = ["QUERY", "AppState"]

#: :attr:`AppState.playing` while an uploaded query (not a library sound) plays.
QUERY = "query"


class AppState(SearchState):
    """What the app shows, as plain data; ``observe`` to hear which fields changed.

    The search (library, query, k, duration range, weights, results, ...) is
    :class:`~.search_state.SearchState`'s, and so are the options (``atlas``, ``k``,
    ``duration``, ``relative_duration``, ``weights``, ``uploads``); on top, the sound
    :attr:`selection` on the map, the :attr:`current` result row and the sound :attr:`playing`.

    Example:
        >>> state = AppState(lib, atlas=lib.map())  # doctest: +SKIP
        >>> state.set_query_row(3); state.k = 5  # doctest: +SKIP
        >>> list(state.results["rank"])  # doctest: +SKIP
        [1, 2, 3, 4, 5]
        >>> state.move_current(1); state.play_current(); state.playing  # doctest: +SKIP
        12
    """

    def __init__(self, library: Library, **options) -> None:
        #: The selected library sound (a click on the map), ``None`` when none.
        self.selection: int | None = None
        #: The selected sound's region ``(start_s, end_s)`` when a region was clicked.
        self.selected_region: Span | None = None
        #: The current result row (an index into :attr:`results`), ``None`` when none.
        self.current: int | None = None
        #: What plays: a library position, a :class:`Clip` (a region of one), :data:`QUERY`
        #: (an uploaded query), or ``None``.
        self.playing: int | Clip | str | None = None
        super().__init__(library, **options)

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

    def _set_results(self, results: pd.DataFrame) -> tuple[str, ...]:
        """New results; the current row stays on its sound while that sound is still shown."""
        sound = self.current_sound
        super()._set_results(results)
        rows = [index for index in range(len(results)) if self.sound_at(index) == sound]
        self.current = rows[0] if sound is not None and rows else None
        return ("current",)
