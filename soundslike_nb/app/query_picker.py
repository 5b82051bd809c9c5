"""Choosing the query, bound to an :class:`AppState`: upload a sound, or find a library sound by
name and pick it; below, the query with its player. An upload says how much has arrived, and one
over the size limit or one the browser could not send is a message, not a traceback.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as widgets

from .audition import Audition
from .formatting import format_duration
from .results_view import ResultsView
from .state import QUERY, AppState
from .upload_button import SoundUpload

__all__ = ["QueryPicker"]

#: At most this many library sounds in the list of names found.
MATCHES_SHOWN = 200


class QueryPicker:
    """The upload button, the name search and its list (``rows[0]``), and the query shown with
    its player (``rows[1]``, ``query_panel``), to lay out in the app.

    Args:
        state: the app state it writes the query to and draws it from.
        audition: makes the query's player (one sound plays at a time).
        results_view: closes the query panel's former widgets.
        guarded: wraps each callback from the browser (errors become messages).

    Example:
        >>> picker = QueryPicker(state, audition, view, guarded=app._guarded)  # doctest: +SKIP
        >>> picker.find.value = "door"; picker.pick.options[0]  # doctest: +SKIP
        ('door creak 03  (2.1 s)', 17)
    """

    def __init__(self, state: AppState, audition: Audition, results_view: ResultsView, *,
                 guarded: Callable[[Callable], Callable]) -> None:
        self.state = state
        self.audition = audition
        self.results_view = results_view
        self._guarded = guarded
        self._uploads_off = False
        self.upload = SoundUpload()
        self.upload.on_upload(guarded(state.set_query_upload))
        self.upload.on_reject(self._rejected)
        self.upload.on_progress(guarded(self._receiving))
        self.upload.on_failure(self._upload_failed)
        self.find = widgets.Text(placeholder="find a library sound by name",
                                 layout=widgets.Layout(width="220px"))
        self.pick = widgets.Dropdown(options=self._matches(""), value=None,
                                     layout=widgets.Layout(width="260px"))
        self.find.observe(lambda change: self._refill_pick(change["new"]), "value")
        self.pick.observe(self._picked, "value")
        self.query_panel = widgets.HBox(layout=widgets.Layout(align_items="center",
                                                              min_height="40px"))
        self.rows = [
            widgets.HBox([self.upload, widgets.HTML("&nbsp;or&nbsp;"), self.find, self.pick],
                         layout=widgets.Layout(align_items="center")),
            self.query_panel,
        ]

    def disable_uploads(self) -> None:
        """Uploads stay off (the model cannot load); picking library sounds still works."""
        self._uploads_off = self.upload.disabled = True

    # -- from the state ----------------------------------------------------------------------

    def update(self, changed: frozenset[str]) -> None:
        """Redraw what ``changed`` (the state's field names) affects."""
        if "query" in changed:
            self._draw_query()
            self._show_query_in_pick()
        if "busy" in changed:  # no second upload while one is analysed
            self.upload.disabled = bool(self.state.busy) or self._uploads_off

    def _draw_query(self) -> None:
        query = self.state.query
        if query is None:
            self.query_panel.children = [widgets.HTML("<i>Upload a sound or pick one from the "
                                                      "library to find what sounds like it.</i>")]
            return
        where = "uploaded" if query.source == "upload" else "from the library"
        if query.region is not None:
            where += f", {query.region[0]:.2f}&ndash;{query.region[1]:.2f} s"
        self.results_view.discard(self.query_panel.children)
        sound = QUERY if query.position is None else query.position
        self.query_panel.children = [
            widgets.HTML(f"Query: <b>{html.escape(query.name)}</b> <small>({where})</small>"
                         "&nbsp;"),
            self.audition.player("query", query.path, sound, css_class="soundslike-query-player"),
        ]

    def _show_query_in_pick(self) -> None:
        """The name list shows the query when it is a library sound in the list, else nothing:
        never a former query, which picking again would not search with."""
        query = self.state.query
        shown = None if query is None else query.position
        if shown is not None and shown not in {value for _label, value in self.pick.options}:
            shown = None
        if self.pick.value != shown:
            self.pick.unobserve(self._picked, "value")
            self.pick.value = shown
            self.pick.observe(self._picked, "value")

    # -- from the browser --------------------------------------------------------------------

    def _matches(self, text: str) -> list[tuple[str, int]]:
        names = self.state.library.rows["name"]
        if text.strip():
            names = names[names.str.contains(text.strip(), case=False, regex=False)]
        shown = names.iloc[:MATCHES_SHOWN]
        return [(f"{name}  ({format_duration(seconds)})", int(position)) for position, name, seconds
                in zip(shown.index, shown, self.state.library.rows["duration"].iloc[shown.index])]

    def _refill_pick(self, text: str) -> None:
        self.pick.unobserve(self._picked, "value")
        self.pick.options = self._matches(text)
        self.pick.value = None
        self.pick.observe(self._picked, "value")

    def _picked(self, change) -> None:
        if change["new"] is not None:
            self._guarded(self.state.set_query_row)(change["new"])

    def _receiving(self, name: str, received: int, size: int) -> None:
        self.state.set_receiving(name, received / size if size else 1.0)

    def _upload_failed(self, name: str, reason: str) -> None:
        self.state.set_receiving(None)
        self.state.set_error(f"{name!r}: the browser could not send it ({reason})")

    def _rejected(self, name: str, size: int) -> None:
        self.state.set_receiving(None)
        limit = self.state.uploads.max_bytes
        self.state.set_error(f"{name!r}: {size / 2**20:.1f} MB is over the upload limit of "
                             f"{limit / 2**20:.1f} MB")
