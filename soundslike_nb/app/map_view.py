"""The library map as a plotly FigureWidget, drawn from an :class:`AppState`.

Four traces: the library (names on hover, optionally coloured by duration, faint outside the
duration range), the current results (marked with their rank), the selected sound, and the
query. A click on any point selects that library sound; the view never searches by itself.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from ..errors import ParameterError
from .state import AppState, format_duration

__all__ = ["MapView"]

#: Above this many points the map draws with WebGL (SVG gets slow past a few thousand).
WEBGL_ABOVE = 5000
_LIBRARY, _RESULTS, _SELECTION, _QUERY = range(4)
_GREY = "#8a94a6"
_ACCENT = "#e4572e"
_QUERY_COLOUR = "#1f3b8f"


class MapView:
    """The plotly map bound to ``state``: redraws its highlights when the state changes.

    Example:
        >>> view = MapView(state)  # doctest: +SKIP
        >>> view.figure  # the FigureWidget to display  # doctest: +SKIP
    """

    def __init__(self, state: AppState, *, colour_by_duration: bool = False,
                 width: int = 540, height: int = 520) -> None:
        self.state = state
        atlas = state.atlas
        if atlas is None:
            raise ParameterError("the state has no map (AppState(atlas=None)): nothing to draw")
        rows = state.library.rows
        coordinates = atlas.coordinates
        self._durations_s = rows["duration"].to_numpy()
        hover = [f"{html.escape(str(name))}<br>{format_duration(seconds)}"
                 for name, seconds in zip(rows["name"], self._durations_s)]
        scatter = go.Scattergl if len(rows) > WEBGL_ABOVE else go.Scatter
        self.figure = go.FigureWidget(
            data=[
                scatter(x=coordinates[:, 0], y=coordinates[:, 1], mode="markers", name="library",
                        hovertext=hover, hoverinfo="text",
                        marker={"size": 8 if len(rows) <= 2000 else 4, "color": _GREY,
                                "line": {"width": 0}}),
                go.Scatter(x=[], y=[], mode="markers+text", name="results", hoverinfo="text",
                           textposition="top center", textfont={"size": 11, "color": _ACCENT},
                           marker={"size": 13, "color": _ACCENT,
                                   "line": {"width": 1, "color": "white"}}),
                go.Scatter(x=[], y=[], mode="markers", name="selected", hoverinfo="skip",
                           marker={"size": 22, "symbol": "circle-open", "color": "#111",
                                   "line": {"width": 2}}),
                go.Scatter(x=[], y=[], mode="markers", name="query", hoverinfo="text",
                           marker={"size": 20, "symbol": "star", "color": _QUERY_COLOUR,
                                   "line": {"width": 1, "color": "white"}}),
            ],
            layout={
                "width": width, "height": height, "margin": {"l": 10, "r": 10, "t": 36, "b": 10},
                "title": {"text": html.escape(atlas.note), "font": {"size": 12}, "x": 0.01},
                "showlegend": False, "hovermode": "closest", "dragmode": "pan",
                "xaxis": {"visible": False}, "yaxis": {"visible": False},
                "plot_bgcolor": "white", "clickmode": "event",
            },
        )
        self._result_positions = np.zeros(0, dtype=np.int64)
        self.figure.data[_LIBRARY].on_click(self._clicked_library)
        self.figure.data[_RESULTS].on_click(self._clicked_result)
        self.colour_by_duration = colour_by_duration
        state.observe(self.update)
        self.update(frozenset({"results", "duration", "selection", "query"}))

    # -- drawing -----------------------------------------------------------------------------

    @property
    def colour_by_duration(self) -> bool:
        """Colour the library points by duration (log scale) instead of one grey."""
        return self._colour_by_duration

    @colour_by_duration.setter
    def colour_by_duration(self, value: bool) -> None:
        self._colour_by_duration = bool(value)
        marker = self.figure.data[_LIBRARY].marker
        with self.figure.batch_update():
            if self._colour_by_duration:
                marker.color = np.log10(np.maximum(self._durations_s, 1e-3))
                marker.colorscale = "Viridis"
                marker.showscale = True
                marker.colorbar = _duration_colourbar(self._durations_s)
            else:
                marker.color = _GREY
                marker.showscale = False

    def update(self, changed: frozenset[str]) -> None:
        """Redraw what ``changed`` (the state's field names) affects."""
        figure, state = self.figure, self.state
        with figure.batch_update():
            if "duration" in changed:
                inside = state.in_range()
                figure.data[_LIBRARY].marker.opacity = (
                    0.85 if inside.all() else np.where(inside, 0.85, 0.12))
            if changed & {"results", "query"}:
                marks = state.highlights()
                self._result_positions = marks["position"].to_numpy()
                results = figure.data[_RESULTS]
                results.x, results.y = marks["x"].to_numpy(), marks["y"].to_numpy()
                results.text = [str(rank) for rank in marks["rank"]]
                results.hovertext = [f"#{rank} {html.escape(str(name))} ({similarity:.2f})"
                                     for rank, name, similarity in
                                     zip(marks["rank"], marks["name"], marks["similarity"])]
                query, point = figure.data[_QUERY], state.query and state.query.point
                query.x, query.y = ([point[0]], [point[1]]) if point else ([], [])
                query.hovertext = ([f"query: {html.escape(state.query.name)}"]
                                   if point else [])
            if "selection" in changed:
                selected = figure.data[_SELECTION]
                if state.selection is None:
                    selected.x, selected.y = [], []
                else:
                    x, y = state.atlas.coordinates[state.selection]
                    selected.x, selected.y = [float(x)], [float(y)]

    # -- clicks ------------------------------------------------------------------------------

    def _clicked_library(self, _trace, points, _selector) -> None:
        if points.point_inds:
            self.state.select(int(points.point_inds[0]))

    def _clicked_result(self, _trace, points, _selector) -> None:
        if points.point_inds and points.point_inds[0] < len(self._result_positions):
            self.state.select(int(self._result_positions[points.point_inds[0]]))


def _duration_colourbar(durations_s: np.ndarray) -> dict:
    """Colour bar ticks in seconds on the log10 scale the points are coloured with."""
    low = float(np.log10(max(durations_s.min(), 1e-3))) if len(durations_s) else 0.0
    high = float(np.log10(max(durations_s.max(), 1e-3))) if len(durations_s) else 1.0
    ticks = np.linspace(low, high, 4) if high > low else np.array([low])
    return {"title": {"text": "duration"}, "tickvals": ticks.tolist(),
            "ticktext": [format_duration(10 ** tick) for tick in ticks], "thickness": 12}
