"""The app: widgets bound to an :class:`AppState`. They write to the state and redraw from it.
This module lays the panels out and draws the status and the selected sound; each panel is its
own module (:mod:`.query_picker`, :mod:`.region_view`, :mod:`.search_controls`,
:mod:`.results_view`, :mod:`.map_view`, :mod:`.labels_panel`, :mod:`.exports_panel`,
:mod:`.duplicates_view`).

Layout: the query (upload, or pick a library sound) with its player and its waveform, on which a
stretch can be selected and searched with ("search this region"); k, the duration range and
"similar length" (results from a quarter to four times the query's length); one slider per
aspect weight (overall character, timbre, spectrum, envelope) and, in a library with regions,
"per file" (at most that many results from one file); then the results (rank, name,
folder, where a region found starts, duration, similarity in %, waveform with the region
marked, player, download of the region or the file, "more like this") beside the map (in the
width left there, from 400 px; with less, the map goes below them at full width), whose
clicked point plays in the "selected" panel and can become the query. Below, three tabs to
organise the library: labels (lasso on the map, suggestions, a label filter), export (results,
chosen sounds, sessions) and duplicates.

Auditioning: a click on a result row plays it; in the results ArrowDown / ArrowUp move the
current row, Space plays or stops it, Enter searches with it. One sound plays at a time, and
the map rings it while it plays.

Keys pressed inside the app stay in the app: the notebook's command-mode shortcuts (``x`` cuts
the cell, ``d d`` deletes it, arrows move between cells) do not act on the app's cell.
"""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np

from ..errors import SoundslikeError
from ..library import Library
from ..projection import LibraryMap
from .audition import Audition
from .cut_media import RegionDownload
from .duplicates_view import DuplicatesView
from .exports_panel import ExportsPanel
from .formatting import format_duration, library_title
from .keys import KeyGuard
from .labelling import Labelling
from .labels_panel import LabelsPanel
from .map_fit import GAP, MIN_BESIDE, map_column, map_size
from .map_view import MapView
from .media import DownloadButton
from .query_picker import QueryPicker
from .query_region import Clip
from .region_view import RegionSelector
from .results_view import ResultsView
from .search_controls import SearchControls
from .search_state import DEFAULT_RELATIVE_DURATION
from .state import AppState
from .uploads import UploadFolder

__all__ = ["App"]

_log = logging.getLogger(__name__)
_STYLE = """<style>
.soundslike-app .soundslike-result { border-bottom: 1px solid #e3e6eb; align-items: center; }
.soundslike-app .soundslike-result > *, .soundslike-app .soundslike-header > * { flex-shrink: 0; }
.soundslike-app .soundslike-cell { display: inline-block; vertical-align: middle;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.soundslike-app .soundslike-folder { color: #5f6b7a; }
.soundslike-app .soundslike-at { text-align: right; padding-right: 6px; box-sizing: border-box; }
.soundslike-app .soundslike-name, .soundslike-app .soundslike-folder {
  padding-right: 6px; box-sizing: border-box; }
.soundslike-app .soundslike-more { padding: 0 4px; }
.soundslike-app .soundslike-result .soundslike-download { width: 100%; }
.soundslike-app .soundslike-busy { color: #1f3b8f; }
.soundslike-app .soundslike-result .widget-html-content,
.soundslike-app .soundslike-header .widget-html-content {
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.soundslike-app .soundslike-error { color: #b00020; }
.soundslike-app .soundslike-rank { font-weight: 600; color: #e4572e; }
.soundslike-app .soundslike-title { font-size: 15px; }
.soundslike-app .soundslike-label .widget-html-content {
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.soundslike-app .soundslike-results:focus { outline: none; }
.soundslike-app .soundslike-result { cursor: pointer; }
.soundslike-app .soundslike-result.soundslike-playing { background: #fdebe5; }
.soundslike-app .soundslike-result.soundslike-current {
  outline: 2px solid #1f3b8f; outline-offset: -2px; }
.soundslike-app .soundslike-panels { column-gap: %GAP%px; }
</style>""".replace("%GAP%", str(GAP))


class App:
    """The soundslike notebook app for a library: display it (it is the last value of a cell).

    Args:
        library: the library to search (``open_library(...)``).
        show_map: draw the UMAP map (computed once and stored beside the library).
        k: initial number of results.
        relative_duration: results last from the query's length divided by this to its length
            times this (a checkbox lifts it); ``None`` starts with it lifted.
        upload_folder: where uploaded queries are saved (default: a new temporary folder).
        progress: show progress while the map is computed.

    Example:
        >>> app = App(open_library("data/demo.parquet"))  # doctest: +SKIP
        >>> app.state.set_query_row(0); len(app.state.results)  # doctest: +SKIP
        10
    """

    def __init__(self, library: Library, *, show_map: bool = True, k: int = 10,
                 relative_duration: float | None = DEFAULT_RELATIVE_DURATION,
                 upload_folder: str | None = None, progress: bool = True,
                 atlas: LibraryMap | None = None) -> None:
        if show_map and atlas is None and len(library):
            atlas = library.map(progress=progress)
        self.state = AppState(library, atlas=atlas if show_map else None, k=k,
                              relative_duration=relative_duration,
                              uploads=UploadFolder(upload_folder))
        self._build()
        self.state.observe(self._update)
        self._warm_up()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # -- layout ------------------------------------------------------------------------------

    def _build(self) -> None:
        state, library = self.state, self.state.library
        self.error = widgets.HTML()
        self.status = widgets.HTML()
        self.results_view = ResultsView(
            more_like_this=self._guarded(self._more_like_this),
            thumbnails=library.thumbnails, thumbnail_seconds=_thumbnail_seconds(library),
            on_error=self._show_error, regions=len(library.regions) > 0)
        self.results = self.results_view.box
        self.audition = Audition(state, self.results_view, guarded=self._guarded)
        self.query_picker = QueryPicker(state, self.audition, self.results_view,
                                        guarded=self._guarded)
        self.region_selector = RegionSelector(state, guarded=self._guarded)
        self.controls = SearchControls(state, guarded=self._guarded)
        # The pickers' and controls' widgets by the names the app has always had.
        picker, controls = self.query_picker, self.controls
        self.upload, self.find, self.pick = picker.upload, picker.find, picker.pick
        self.query_panel = picker.query_panel
        self.k_slider, self.per_file, self.scale = (controls.k_slider, controls.per_file,
                                                    controls.scale)
        self.range_slider, self.range_label = controls.range_slider, controls.range_label
        self.min_duration, self.max_duration = controls.min_duration, controls.max_duration
        self.similar_length, self.window_label = controls.similar_length, controls.window_label
        self.weight_sliders, self.reset_weights = (controls.weight_sliders,
                                                   controls.reset_weights)
        right = []
        self.map_view = None
        self.labelling = Labelling(library)
        if state.atlas is not None:
            width, height = map_size(MIN_BESIDE)  # until the browser says how wide it can be
            self.map_view = MapView(state, labelling=self.labelling, width=width, height=height)
            colour = widgets.Dropdown(
                options=[("one colour", "none"), ("duration", "duration"),
                         ("top-level folder", "folder"), ("label", "label")],
                value=self.map_view.colour_by,
                description="colour by", style={"description_width": "initial"},
                layout=widgets.Layout(width="240px"))
            colour.observe(lambda change: setattr(self.map_view, "colour_by", change["new"]),
                           "value")
            self.colour_by = colour
            # Above the map, with its height kept, so that a click never moves the map.
            self.selected_panel = widgets.VBox(layout=widgets.Layout(min_height="68px"))
            # Beside the results in the width left there, or below them at full width.
            column, self.map_width = map_column(
                [colour, self.selected_panel, self.map_view.figure], fit=self.map_view.resize)
            right = [column]
        self.labels_panel = LabelsPanel(state, self.labelling, self.map_view,
                                        guarded=self._guarded)
        self.exports_panel = ExportsPanel(state, self.labelling, guarded=self._guarded)
        self.duplicates_view = DuplicatesView(library, guarded=self._guarded)
        # Organising the library, below the search: one tab each, labels first.
        self.organise = widgets.Tab(
            children=[self.labels_panel.box, self.exports_panel.box, self.duplicates_view.box],
            titles=["labels", "export", "duplicates"])
        self.organise.add_class("soundslike-organise")
        heading = widgets.HTML(f"{_STYLE}<div class='soundslike-title'><b>soundslike</b> · "
                               f"{html.escape(library_title(library))}</div>")
        # The map wraps below the results when less than MIN_BESIDE px is left beside them.
        panels = widgets.HBox([self.results, *right],
                              layout=widgets.Layout(align_items="flex-start", flex_flow="row wrap"))
        panels.add_class("soundslike-panels")
        self.widget = widgets.VBox([
            heading,
            *picker.rows,
            self.region_selector.box,
            *controls.rows,
            self.error,
            self.status,
            panels,
            self.organise,
            KeyGuard(root_class="soundslike-app"),
            self.audition.keys,
        ])
        self.widget.add_class("soundslike-app")
        self._update(frozenset({"query", "results", "error", "duration", "selection",
                                "weights", "relative_duration", "current", "playing", "span"}))

    def _more_like_this(self, sound: int | Clip) -> None:
        if isinstance(sound, Clip):
            self.state.set_query_row(sound.position, region=(sound.start, sound.end))
        else:
            self.state.set_query_row(sound)

    def _warm_up(self) -> None:
        """Load the model now, so that the first upload is answered as fast as the next ones;
        a model that cannot load is said at once, and the upload that needs it is disabled."""
        library = self.state.library
        if len(library) == 0:
            return
        try:
            embedder = library.embedder
            embedder.embed([np.zeros(embedder.sample_rate // 10, np.float32)])
        except SoundslikeError as exc:
            self.query_picker.disable_uploads()
            self._show_error(f"uploads are off: {exc}")

    # -- writing to the state ----------------------------------------------------------------

    def _guarded(self, action: Callable) -> Callable:
        """Run a widget callback; a failure becomes a message in the app, never a traceback."""

        @functools.wraps(action)
        def run(*args):
            try:
                return action(*args)
            except SoundslikeError as exc:
                self._show_error(str(exc))
            except Exception as exc:  # the UI boundary: say what happened, keep the app alive
                _log.exception("soundslike app callback failed")
                self._show_error(f"unexpected error: {type(exc).__name__}: {exc}")
            return None

        return run

    def _show_error(self, message: str) -> None:
        self.state.set_error(message)

    # -- drawing from the state --------------------------------------------------------------

    def _update(self, changed: frozenset[str]) -> None:
        state = self.state
        if "error" in changed:
            self.error.value = (f"<div class='soundslike-error'>⚠ {html.escape(state.error)}</div>"
                                if state.error else "")
        self.controls.update(changed)
        self.query_picker.update(changed)
        if changed & {"results", "query"}:
            self._draw_results()
        if "busy" in changed:
            self._draw_status()
        if "selection" in changed and self.map_view is not None:  # the map redraws itself
            self._draw_selection()
        self.region_selector.update(changed)
        self.audition.update(changed)

    def _draw_status(self) -> None:
        state, count = self.state, len(self.state.results)
        if state.busy:
            self.status.value = f"<i class='soundslike-busy'>{html.escape(state.busy)}</i>"
        elif state.query is None:
            self.status.value = ""
        elif count:
            notice = (f" <b class='soundslike-notice'>⚠ {html.escape(state.notice)}</b>"
                      if state.notice else "")
            self.status.value = (f"{count} result{'s' if count != 1 else ''}, most similar "
                                 f"first <small>(search {state.search_seconds * 1000:.0f} ms)"
                                 f"</small>{notice}")
        elif state.effective_duration == (None, None):
            self.status.value = "No other sound in the library."
        else:
            low, high = state.effective_duration
            self.status.value = (
                f"No sound in the library lasts from {format_duration(low or 0)} to "
                f"{format_duration(high)}: widen the duration range"
                + (" or untick <i>similar length</i>." if state.duration_window else "."))

    def _draw_results(self) -> None:
        self._draw_status()
        self.results_view.draw(self.state.results if self.state.query is not None else None)

    def _draw_selection(self) -> None:
        position = self.state.selection
        self.results_view.discard(self.selected_panel.children)
        if position is None:
            self.audition.forget("selected")
            self.selected_panel.children = [widgets.HTML(
                "<i>Click a point on the map to hear it.</i>")]
            return
        row = self.state.library.rows.iloc[position]
        region, path = self.state.selected_region, str(row["path"])
        sound = position if region is None else Clip(position, *region)
        player = self.audition.player("selected", path, sound, autoplay=True)
        use = widgets.Button(description="search with this", button_style="primary")
        use.add_class("soundslike-use-selected")
        use.on_click(self._guarded(lambda _button: self.state.query_selection()))
        where = (f"({format_duration(float(row['duration']))})" if region is None else
                 f"from {region[0]:.2f} to {region[1]:.2f} s")
        download = (DownloadButton(path) if region is None else
                    RegionDownload(path, *region, on_error=self._show_error))
        self.selected_panel.children = [
            widgets.HTML(f"Selected: <b>{html.escape(str(row['name']))}</b> {where}"),
            widgets.HBox([player, use, download]),
        ]


def _thumbnail_seconds(library: Library) -> np.ndarray:
    """How many seconds of each sound its thumbnail shows: all of it, or the part analysed."""
    durations_s = library.rows["duration"].to_numpy(dtype=np.float64)
    limit = library.settings.max_duration_s
    return durations_s if limit is None else np.minimum(durations_s, limit)
