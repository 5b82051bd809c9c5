"""The query's waveform, to search with a stretch of it: drag across it (or type the seconds) to
select a span, hear it, then "search this region"; "whole sound" searches with all of it again.
Bound to an :class:`AppState` (:attr:`~.state.AppState.span`, :meth:`~.state.AppState.search_span`):
the selection and the region searched live there, this only draws them and writes to them.

The waveform is a small SVG drawn in the browser (:class:`WaveformSelect`), not a plotly figure:
the map stays the app's one plotly plot, and a drag needs no round trip to show its band.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import anywidget
import ipywidgets as widgets
import traitlets

from ..errors import ParameterError, SoundslikeError
from .cut_media import CutPlayer
from .query_region import outline
from .state import AppState

__all__ = ["RegionSelector", "WaveformSelect"]


class WaveformSelect(anywidget.AnyWidget):
    """A waveform outline (``peaks``, 0 to 1, evenly over ``length`` seconds) on which a drag
    selects a span: ``span`` (``[start_s, end_s]``, ``[]`` for none) is synced both ways;
    ``searched`` (kernel to browser) is outlined.

    Example:
        >>> WaveformSelect(peaks=[0.5, 1.0], length=2.0).span
        []
    """

    _esm = """
    const NS = "http://www.w3.org/2000/svg";
    const STEPS = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600];
    const label = (seconds) => seconds < 60 ? `${+seconds.toFixed(2)} s`
      : `${Math.floor(seconds / 60)}:${String(Math.round(seconds % 60)).padStart(2, "0")}`;
    const make = (tag, attributes) => {
      const node = document.createElementNS(NS, tag);
      for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
      return node;
    };
    function render({ model, el }) {
      const width = model.get("width"), height = model.get("height"), axis = 18;
      const middle = (height - axis) / 2;
      const svg = make("svg", { width, height, class: "soundslike-waveform" });
      svg.style.cssText = "cursor: crosshair; user-select: none; display: block;";
      const back = make("rect", { x: 0, y: 0, width, height: height - axis, fill: "#f6f7f9" });
      const wave = make("path", { fill: "#8a94a6", stroke: "none" });
      const ticks = make("g", { "font-size": 10, fill: "#5f6b7a" });
      const searched = make("rect", { y: 1, height: height - axis - 2, fill: "none",
        stroke: "#1f3b8f", "stroke-width": 2, class: "soundslike-searched-band" });
      const band = make("rect", { y: 0, height: height - axis, fill: "#e4572e",
        "fill-opacity": 0.28, stroke: "#e4572e", class: "soundslike-span-band" });
      svg.append(back, wave, ticks, searched, band);
      const x = (seconds) => seconds / (model.get("length") || 1) * width;
      const seconds = (pixels) => Math.min(Math.max(pixels, 0), width) / width
        * model.get("length");
      const show = (node, span) => {
        node.style.display = span.length == 2 ? "" : "none";
        if (span.length == 2) {
          node.setAttribute("x", x(span[0]));
          node.setAttribute("width", Math.max(x(span[1]) - x(span[0]), 1));
        }
      };
      const drawWave = () => {
        const peaks = model.get("peaks"), step = width / Math.max(peaks.length, 1);
        let top = "", bottom = "";
        peaks.forEach((peak, index) => {
          const high = middle - Math.max(peak, 0.01) * (middle - 2);
          top += `${index ? "L" : "M"}${(index + 0.5) * step} ${high}`;
          bottom = `L${(index + 0.5) * step} ${2 * middle - high}` + bottom;
        });
        wave.setAttribute("d", peaks.length ? top + bottom + "Z" : "");
        ticks.replaceChildren();
        const length = model.get("length");
        const every = STEPS.find((candidate) => length / candidate <= 8) || 3600;
        for (let at = every; at < length; at += every) {
          ticks.append(make("line", { x1: x(at), x2: x(at), y1: height - axis,
            y2: height - axis + 4, stroke: "#8a94a6" }));
          const text = make("text", { x: x(at), y: height - 4, "text-anchor": "middle" });
          text.textContent = label(at);
          ticks.append(text);
        }
      };
      const drawSpans = () => {
        show(band, model.get("span"));
        show(searched, model.get("searched"));
      };
      let from = null;
      const at = (event) => event.clientX - svg.getBoundingClientRect().left;
      svg.addEventListener("mousedown", (event) => {
        from = at(event);
        event.preventDefault();
      });
      const moved = (event) => {
        if (from === null) return;
        const to = at(event);
        show(band, [seconds(Math.min(from, to)), seconds(Math.max(from, to))]);
      };
      const released = (event) => {
        if (from === null) return;
        const to = at(event), start = from;
        from = null;
        if (Math.abs(to - start) < 3) { drawSpans(); return; }  // a click selects nothing
        model.set("span", [seconds(Math.min(start, to)), seconds(Math.max(start, to))]);
        model.save_changes();
      };
      window.addEventListener("mousemove", moved);
      window.addEventListener("mouseup", released);
      model.on("change:peaks", drawWave);
      model.on("change:length", () => { drawWave(); drawSpans(); });
      model.on("change:span", drawSpans);
      model.on("change:searched", drawSpans);
      drawWave();
      drawSpans();
      el.appendChild(svg);
      return () => {
        window.removeEventListener("mousemove", moved);
        window.removeEventListener("mouseup", released);
      };
    }
    export default { render };
    """
    peaks = traitlets.List(traitlets.Float()).tag(sync=True)
    length = traitlets.Float(0.0).tag(sync=True)
    span = traitlets.List(traitlets.Float()).tag(sync=True)
    searched = traitlets.List(traitlets.Float()).tag(sync=True)
    width = traitlets.Int(880).tag(sync=True)
    height = traitlets.Int(96).tag(sync=True)


class RegionSelector:
    """The query's waveform with a selectable span, its player and "search this region", in
    ``box`` (hidden while there is no query).

    Args:
        state: the app state it draws and writes to.
        guarded: wraps each callback from the browser (errors become messages).
        width: the waveform's width in pixels.

    Example:
        >>> selector = RegionSelector(state, guarded=app._guarded)  # doctest: +SKIP
        >>> state.set_span((1.0, 2.0)); selector.start.value  # doctest: +SKIP
        '1.00'
    """

    def __init__(self, state: AppState, *, guarded: Callable[[Callable], Callable],
                 width: int = 880) -> None:
        self.state = state
        self._path: str | None = None
        self._syncing = False
        self.waveform = WaveformSelect(width=width)
        self.waveform.observe(guarded(self._dragged), "span")
        self.start = widgets.Text(placeholder="start s", continuous_update=False,
                                  layout=widgets.Layout(width="72px"))
        self.end = widgets.Text(placeholder="end s", continuous_update=False,
                                layout=widgets.Layout(width="72px"))
        for entry in (self.start, self.end):
            entry.add_class("soundslike-span-entry")
            entry.observe(guarded(self._typed), "value")
        self.search = widgets.Button(description="search this region", button_style="primary",
                                     tooltip="find sounds like the selected stretch",
                                     layout=widgets.Layout(width="150px"))
        self.search.add_class("soundslike-search-region")
        self.search.on_click(guarded(lambda _button: self.state.search_span()))
        self.whole = widgets.Button(description="whole sound",
                                    tooltip="search with the whole query again",
                                    layout=widgets.Layout(width="110px"))
        self.whole.add_class("soundslike-search-whole")
        self.whole.on_click(guarded(lambda _button: self.state.search_whole()))
        self.player_slot = widgets.Box(layout=widgets.Layout(width="140px"))
        self.note = widgets.HTML()
        self.note.add_class("soundslike-region-note")
        self.box = widgets.VBox([
            self.waveform,
            widgets.HBox([widgets.HTML("region&nbsp;"), self.start,
                          widgets.HTML("&nbsp;&ndash;&nbsp;"), self.end,
                          widgets.HTML("&nbsp;s&nbsp;"), self.player_slot, self.search,
                          self.whole, self.note],
                         layout=widgets.Layout(align_items="center", flex_flow="row wrap")),
        ], layout=widgets.Layout(display="none"))
        self.box.add_class("soundslike-region")

    # -- from the state ----------------------------------------------------------------------

    def update(self, changed: frozenset[str]) -> None:
        """Redraw what ``changed`` (the state's field names) affects."""
        if "query" in changed:
            self._draw_outline()
        if changed & {"query", "span", "busy"}:
            self._draw_span()

    def _draw_outline(self) -> None:
        query = self.state.query
        if query is None:
            self.box.layout.display = "none"
            self._path = None
            return
        self.box.layout.display = ""
        if query.path == self._path:
            return
        try:
            _times, peaks, length = outline(query.path)
        except SoundslikeError as exc:
            self.box.layout.display = "none"
            self._path = None
            self.state.set_error(f"cannot draw the query's waveform: {exc}")
            return
        self._path = query.path
        with self.waveform.hold_sync():
            self.waveform.peaks = [round(float(peak), 3) for peak in peaks]
            self.waveform.length = float(length)

    def _draw_span(self) -> None:
        state, query = self.state, self.state.query
        span = state.span
        searched = None if query is None else query.region
        self._syncing = True
        try:
            with self.waveform.hold_sync():
                self.waveform.span = [] if span is None else list(span)
                self.waveform.searched = [] if searched is None else list(searched)
            self.start.value = "" if span is None else f"{span[0]:.2f}"
            self.end.value = "" if span is None else f"{span[1]:.2f}"
        finally:
            self._syncing = False
        busy = bool(state.busy)
        self.search.disabled = busy or span is None or span == searched
        self.whole.disabled = busy or searched is None
        self._draw_player(span)
        if query is None:
            self.note.value = ""
        elif searched is not None:
            self.note.value = (f"<small>searching <b>{searched[0]:.2f}&ndash;{searched[1]:.2f} "
                               f"s</b> of {html.escape(query.name)}</small>")
        else:
            self.note.value = ("<small>drag across the waveform to choose a stretch to "
                               "search with</small>")

    def _draw_player(self, span) -> None:
        old = list(self.player_slot.children)
        player = old[0] if old else None
        if span is None or self.state.query is None:
            self.player_slot.children = []
        elif player is None or (player.path, player.start, player.end) != (
                self.state.query.path, *span):
            self.player_slot.children = [CutPlayer(self.state.query.path, *span,
                                                   css_class="soundslike-span-player")]
        else:
            return
        for widget in old:
            widget.close()

    # -- from the browser --------------------------------------------------------------------

    def _dragged(self, change) -> None:
        if self._syncing or len(change["new"]) != 2:
            return
        try:
            # To the hundredth of a second, as the entries and a cut's name write it.
            self.state.set_span(tuple(round(value, 2) for value in change["new"]))
        except ParameterError:
            self._draw_span()  # the band springs back to the state's span
            raise

    def _typed(self, _change) -> None:
        if self._syncing:
            return
        texts = [entry.value.strip().removesuffix("s").strip()
                 for entry in (self.start, self.end)]
        if not all(texts):
            return
        try:
            span = (float(texts[0]), float(texts[1]))
        except ValueError:
            self._draw_span()
            raise ParameterError(f"a region's start and end are seconds (e.g. 1.5), got "
                                 f"{self.start.value!r} and {self.end.value!r}") from None
        try:
            self.state.set_span(span)
        finally:
            self._draw_span()
