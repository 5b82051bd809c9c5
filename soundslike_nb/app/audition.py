"""Auditioning: which player plays, bound to :attr:`AppState.playing`, and the result keys and
clicks bound to :attr:`AppState.current`. No logic of its own: the state decides, the players
and rows follow it, and what the browser does (a player started, paused, ended) is told to it.
"""

from __future__ import annotations

from collections.abc import Callable

from .cut_media import CutPlayer
from .keys import ResultKeys
from .media import LazyPlayer
from .query_region import Clip
from .results_view import ResultsView
from .state import AppState

__all__ = ["Audition"]


class Audition:
    """Binds the players shown (the result rows', the query's, the selected sound's) and the
    result keys (:class:`ResultKeys`, to display in the app) to ``state``.

    Args:
        state: the app state.
        results_view: the result rows, whose players it binds.
        guarded: wraps each callback from the browser (errors become messages).

    Example:
        >>> audition = Audition(state, results_view, guarded=app._guarded)  # doctest: +SKIP
        >>> audition.keys  # the invisible widget that sends keys and clicks  # doctest: +SKIP
    """

    def __init__(self, state: AppState, results_view: ResultsView, *,
                 guarded: Callable[[Callable], Callable]) -> None:
        self.state = state
        self.results_view = results_view
        self._guarded = guarded
        results_view.played = guarded(self.player_says)
        self.keys = ResultKeys()
        self.keys.on_key(guarded(self.key_pressed))
        self.keys.on_row_click(guarded(self.row_clicked))
        #: The query's and the selected sound's players, with the sound each plays.
        self.panels: dict[str, tuple[int | str, LazyPlayer]] = {}
        self._reporter: LazyPlayer | None = None  # the player that said it started

    def player(self, panel: str, path: str, sound: int | Clip | str, **options) -> LazyPlayer:
        """A player for ``panel`` (``"query"``, ``"selected"``) that tells the state when it
        starts and stops (a :class:`Clip` plays only its region); it replaces that panel's
        former player."""
        player = (CutPlayer(path, sound.start, sound.end, **options) if isinstance(sound, Clip)
                  else LazyPlayer(path, **options))
        player.on_playing(self._guarded(
            lambda playing: self.player_says(sound, playing, player)))
        self.panels[panel] = (sound, player)
        return player

    def forget(self, panel: str) -> None:
        """``panel`` shows no player any more."""
        self.panels.pop(panel, None)

    # -- from the browser --------------------------------------------------------------------

    def key_pressed(self, key: str) -> None:
        """ArrowDown / ArrowUp move the current row, Space plays or stops it, Enter searches."""
        state = self.state
        if key in ("ArrowDown", "ArrowUp"):
            state.move_current(1 if key == "ArrowDown" else -1)
        elif key == "Space":
            state.play_current()
        elif key == "Enter":
            state.query_current()

    def row_clicked(self, index: int) -> None:
        """A click on result row ``index`` makes it current and plays it."""
        if index < len(self.state.results):
            self.state.set_current(index)
            self.state.play(self.state.current_position)

    def player_says(self, sound: int | Clip | str, playing: bool,
                    player: LazyPlayer | None = None) -> None:
        """A player started or stopped in the browser: the state follows (and the map)."""
        if playing:
            self._reporter = player
            try:
                self.state.play(sound)
            finally:
                self._reporter = None
        else:
            self.state.stopped(sound)

    # -- from the state ----------------------------------------------------------------------

    def update(self, changed: frozenset[str]) -> None:
        """Redraw what ``changed`` (the state's field names) affects."""
        state = self.state
        if changed & {"results", "query", "current", "playing"}:
            self.results_view.mark(current=state.current, playing=state.playing)
            self.keys.current = -1 if state.current is None else state.current
        if changed & {"playing", "results", "query", "selection"}:
            self._draw_playing()

    def _draw_playing(self) -> None:
        """The one player of the sound that plays plays (the one that said so, if it did);
        every other is stopped."""
        shown = [*zip(self.results_view.positions, self.results_view.players),
                 *self.panels.values()]
        chosen, playing = self._reporter, self.state.playing
        if chosen is None and playing is not None:
            chosen = next((player for sound, player in shown if sound == playing), None)
        for _sound, player in shown:
            player.set_playing(player is chosen)
