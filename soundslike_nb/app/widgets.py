"""The app: widgets bound to an :class:`AppState`. They write to the state and redraw from it.

Layout: the query (upload, or pick a library sound) with its player and its waveform, on which a
stretch can be selected and searched with ("search this region"); k, the duration range and
"similar length" (results from a quarter to four times the query's length); one slider per
aspect weight (overall character, timbre, spectrum, envelope) and, in a library with regions,
"per file" (at most that many results from one file); then the results (rank, name,
folder, where a region found starts, duration, similarity in %, waveform with the region
marked, player, download of the region or the file, "more like this") beside the map, whose
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
from ..space import ASPECT_NAMES, DEFAULT_WEIGHTS
from .audition import Audition
from .cut_media import RegionDownload
from .duplicates_view import DuplicatesView
from .exports_panel import ExportsPanel
from .formatting import ASPECT_LABELS, DurationScale, format_duration, library_title
from .keys import KeyGuard
from .labelling import Labelling
from .labels_panel import LabelsPanel
from .map_view import MapView
from .media import DownloadButton
from .query_region import Clip
from .region_view import RegionSelector
from .results_view import ResultsView
from .search_state import DEFAULT_RELATIVE_DURATION
from .state import QUERY, AppState
from .state_values import K_MAX
from .upload_button import SoundUpload
from .uploads import UploadFolder

__all__ = ["App"]

_log = logging.getLogger(__name__)
_MATCHES_SHOWN = 200
_MAP_WIDTH = 540
_STYLE = """<style>
.soundslike-app .soundslike-result { border-bottom: 1px solid #e3e6eb; align-items: center; }
.soundslike-app .soundslike-result > *, .soundslike-app .soundslike-header > * { flex-shrink: 0; }
.soundslike-app .soundslike-cell { display: inline-block; vertical-align: middle;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.soundslike-app .soundslike-folder { color: #5f6b7a; }
.soundslike-app .soundslike-at { text-align: right; padding-right: 8px; box-sizing: border-box; }
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
</style>"""


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
        # The factor the "similar length" checkbox sets when ticked.
        self._relative_factor = relative_duration or DEFAULT_RELATIVE_DURATION
        self._uploads_off = False
        self._build()
        self.state.observe(self._update)
        self._warm_up()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # -- layout ------------------------------------------------------------------------------

    def _build(self) -> None:
        state, library = self.state, self.state.library
        self.upload = SoundUpload()
        self.upload.on_upload(self._guarded(state.set_query_upload))
        self.upload.on_reject(self._rejected)
        self.upload.on_progress(self._guarded(self._receiving))
        self.upload.on_failure(self._upload_failed)
        self.find = widgets.Text(placeholder="find a library sound by name",
                                 layout=widgets.Layout(width="220px"))
        self.pick = widgets.Dropdown(options=self._matches(""), value=None,
                                     layout=widgets.Layout(width="260px"))
        self.find.observe(lambda change: self._refill_pick(change["new"]), "value")
        self.pick.observe(self._picked, "value")
        self.query_panel = widgets.HBox(layout=widgets.Layout(align_items="center",
                                                              min_height="40px"))
        self.k_slider = widgets.IntSlider(value=state.k, min=1, max=K_MAX, description="k",
                                          continuous_update=False,
                                          layout=widgets.Layout(width="340px"))
        self.k_slider.observe(self._guarded(lambda change: setattr(state, "k", change["new"])),
                              "value")
        # With regions, one long take could fill the list: at most this many results per file.
        self.per_file = widgets.BoundedIntText(
            value=state.per_file, min=1, max=K_MAX, description="per file",
            tooltip="at most this many results from one file (the file and its moments)",
            style={"description_width": "initial"}, layout=widgets.Layout(width="120px"))
        self.per_file.add_class("soundslike-per-file")
        self.per_file.observe(self._guarded(
            lambda change: setattr(state, "per_file", change["new"])), "value")
        has_regions = len(library.regions) > 0
        self.scale = DurationScale.of(library.rows["duration"])
        self.range_slider = widgets.FloatRangeSlider(
            value=self.scale.to_positions(state.duration), min=self.scale.low,
            max=self.scale.high, step=self.scale.step, readout=False, continuous_update=False,
            description="duration", layout=widgets.Layout(width="340px"))
        # Typed bounds: the slider's handles cannot be pulled apart when they are close.
        self.min_duration = widgets.Text(placeholder="min s", continuous_update=False,
                                         tooltip="shortest result in seconds (empty: no limit)",
                                         layout=widgets.Layout(width="64px"))
        self.max_duration = widgets.Text(placeholder="max s", continuous_update=False,
                                         tooltip="longest result in seconds (empty: no limit)",
                                         layout=widgets.Layout(width="64px"))
        for entry in (self.min_duration, self.max_duration):
            entry.add_class("soundslike-duration-entry")
            entry.observe(self._guarded(self._bound_typed), "value")
        self.range_label = widgets.HTML(layout=widgets.Layout(width="150px"))
        self.range_label.add_class("soundslike-label")
        self._syncing = False
        self.range_slider.observe(self._guarded(self._range_moved), "value")
        self.similar_length = widgets.Checkbox(value=state.relative_duration is not None,
                                               indent=False, layout=widgets.Layout(width="190px"))
        self.similar_length.observe(self._guarded(self._similar_length_ticked), "value")
        self.window_label = widgets.HTML(layout=widgets.Layout(width="130px"))
        self.window_label.add_class("soundslike-label")
        self.weight_sliders = {}
        for aspect in ASPECT_NAMES:
            label, tooltip = ASPECT_LABELS[aspect]
            slider = widgets.FloatSlider(
                value=state.weights[aspect], min=0.0, max=1.0, step=0.05, description=label,
                tooltip=tooltip, continuous_update=False, readout_format=".2f",
                disabled=aspect != "cnn" and not state.has_aspects,
                style={"description_width": "68px"}, layout=widgets.Layout(width="260px"))
            slider.observe(self._guarded(
                lambda change, aspect=aspect: state.set_weights({aspect: change["new"]})), "value")
            self.weight_sliders[aspect] = slider
        self.reset_weights = widgets.Button(description="default weights",
                                            tooltip=_default_weights_text(),
                                            layout=widgets.Layout(width="130px"))
        self.reset_weights.on_click(self._guarded(lambda _button: self._reset_weights()))
        self.error = widgets.HTML()
        self.status = widgets.HTML()
        self.results_view = ResultsView(
            more_like_this=self._guarded(self._more_like_this),
            thumbnails=library.thumbnails, thumbnail_seconds=_thumbnail_seconds(library),
            on_error=self._show_error, regions=has_regions)
        self.region_selector = RegionSelector(state, guarded=self._guarded)
        self.results = self.results_view.box
        self.audition = Audition(state, self.results_view, guarded=self._guarded)
        right = []
        self.map_view = None
        self.labelling = Labelling(library)
        if state.atlas is not None:
            self.map_view = MapView(state, labelling=self.labelling, width=_MAP_WIDTH)
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
            right = [widgets.VBox([colour, self.selected_panel, self.map_view.figure],
                                  layout=widgets.Layout(width=f"{_MAP_WIDTH + 10}px"))]
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
        self.widget = widgets.VBox([
            heading,
            widgets.HBox([self.upload, widgets.HTML("&nbsp;or&nbsp;"), self.find, self.pick],
                         layout=widgets.Layout(align_items="center")),
            self.query_panel,
            self.region_selector.box,
            widgets.HBox([self.k_slider, self.range_slider, self.min_duration,
                          widgets.HTML("&nbsp;&ndash;&nbsp;"), self.max_duration,
                          widgets.HTML("&nbsp;s&nbsp;"), self.range_label,
                          self.similar_length, self.window_label],
                         layout=widgets.Layout(align_items="center", flex_flow="row wrap")),
            widgets.HBox([*self.weight_sliders.values(), self.reset_weights,
                          *([self.per_file] if has_regions else [])],
                         layout=widgets.Layout(align_items="center", flex_flow="row wrap")),
            self.error,
            self.status,
            widgets.HBox([self.results, *right],  # the map wraps below the results when narrow
                         layout=widgets.Layout(align_items="flex-start", flex_flow="row wrap")),
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

    def _reset_weights(self) -> None:
        self.state.set_weights(DEFAULT_WEIGHTS)

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
            self._uploads_off = self.upload.disabled = True
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

    def _receiving(self, name: str, received: int, size: int) -> None:
        self.state.set_receiving(name, received / size if size else 1.0)

    def _upload_failed(self, name: str, reason: str) -> None:
        self.state.set_receiving(None)
        self._show_error(f"{name!r}: the browser could not send it ({reason})")

    def _rejected(self, name: str, size: int) -> None:
        self.state.set_receiving(None)
        limit = self.state.uploads.max_bytes
        self._show_error(f"{name!r}: {size / 2**20:.1f} MB is over the upload limit of "
                         f"{limit / 2**20:.1f} MB")

    def _range_moved(self, change) -> None:
        if not self._syncing:
            self.state.duration = self.scale.to_range(change["new"])

    def _bound_typed(self, _change) -> None:
        """A typed bound (seconds; empty for no limit) sets the duration range; a value that is
        not seconds is said, and the entries show the range again."""
        if self._syncing:
            return
        bounds = []
        for entry, end in ((self.min_duration, "minimum"), (self.max_duration, "maximum")):
            text = entry.value.strip().removesuffix("s").strip()
            try:
                bounds.append(float(text) if text else None)
            except ValueError:
                self._draw_duration()
                raise SoundslikeError(f"duration {end} must be seconds (e.g. 0.5) or empty for "
                                      f"no limit, got {entry.value!r}") from None
        try:
            self.state.duration = tuple(bounds)
        finally:
            self._draw_duration()

    def _similar_length_ticked(self, change) -> None:
        self.state.relative_duration = self._relative_factor if change["new"] else None

    def _matches(self, text: str) -> list[tuple[str, int]]:
        names = self.state.library.rows["name"]
        if text.strip():
            names = names[names.str.contains(text.strip(), case=False, regex=False)]
        shown = names.iloc[:_MATCHES_SHOWN]
        return [(f"{name}  ({format_duration(seconds)})", int(position)) for position, name, seconds
                in zip(shown.index, shown, self.state.library.rows["duration"].iloc[shown.index])]

    def _refill_pick(self, text: str) -> None:
        self.pick.unobserve(self._picked, "value")
        self.pick.options = self._matches(text)
        self.pick.value = None
        self.pick.observe(self._picked, "value")

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

    def _picked(self, change) -> None:
        if change["new"] is not None:
            self._guarded(self.state.set_query_row)(change["new"])

    # -- drawing from the state --------------------------------------------------------------

    def _update(self, changed: frozenset[str]) -> None:
        state = self.state
        if "error" in changed:
            self.error.value = (f"<div class='soundslike-error'>⚠ {html.escape(state.error)}</div>"
                                if state.error else "")
        if "duration" in changed:
            self._draw_duration()
        if changed & {"duration", "query", "relative_duration"}:
            self._draw_window()
        if changed & {"weights", "error"}:  # a refused weight springs back
            for aspect, slider in self.weight_sliders.items():
                slider.value = state.weights[aspect]
        if "query" in changed:
            self._draw_query()
            self._show_query_in_pick()
        if changed & {"results", "query"}:
            self._draw_results()
        if "busy" in changed:
            self._draw_busy()
        if "selection" in changed and self.map_view is not None:  # the map redraws itself
            self._draw_selection()
        self.region_selector.update(changed)
        self.audition.update(changed)

    def _draw_duration(self) -> None:
        """The slider, the typed bounds and the label, from the state's duration range."""
        low, high = self.state.duration
        durations_s = self.state.library.rows["duration"]
        shortest = durations_s.min() if low is None and len(durations_s) else low
        longest = durations_s.max() if high is None and len(durations_s) else high
        self.range_label.value = f"{format_duration(shortest)} to {format_duration(longest)}"
        self._syncing = True
        try:
            if self.scale.to_range(self.range_slider.value) != (low, high):
                self.range_slider.value = self.scale.to_positions((low, high))
            self.min_duration.value = "" if low is None else f"{low:g}"
            self.max_duration.value = "" if high is None else f"{high:g}"
        finally:
            self._syncing = False

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

    def _draw_window(self) -> None:
        state = self.state
        self._relative_factor = state.relative_duration or self._relative_factor
        factor = f"{self._relative_factor:g}"
        self.similar_length.description = (
            f"similar length (÷{factor} … \N{MULTIPLICATION SIGN}{factor})")
        self.similar_length.tooltip = (
            f"results last from the query's length ÷{factor} to \N{MULTIPLICATION SIGN}{factor},"
            " within the duration range; untick for any length")
        self.similar_length.value = state.relative_duration is not None
        window = state.duration_window
        if window is not None:
            text = f"{format_duration(window[0])} \N{EN DASH} {format_duration(window[1])}"
        elif state.relative_duration is not None and state.query is not None:
            text = "<small>(the query's length is unknown: any length)</small>"
        else:
            text = ""
        self.window_label.value = text

    def _draw_busy(self) -> None:
        """While an upload is analysed, say so and disable the controls that would search."""
        busy = bool(self.state.busy)
        self.upload.disabled = busy or self._uploads_off
        for control in (self.k_slider, self.range_slider, self.similar_length,
                        self.reset_weights, self.per_file):
            control.disabled = busy
        for aspect, slider in self.weight_sliders.items():
            slider.disabled = busy or (aspect != "cnn" and not self.state.has_aspects)
        self._draw_status()

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


def _default_weights_text() -> str:
    """``overall 1, timbre 0.1, ...`` from the defaults themselves (never copied by hand)."""
    values = ", ".join(f"{ASPECT_LABELS[aspect][0]} {DEFAULT_WEIGHTS[aspect]:g}"
                       for aspect in ASPECT_NAMES)
    return f"{values} (chosen by measurement)"
