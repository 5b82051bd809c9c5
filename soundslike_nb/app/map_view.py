"""The library map as a plotly FigureWidget, drawn from an :class:`AppState`.

Five traces: the library (name, folder, duration and labels on hover; coloured by nothing,
duration, top-level folder or label as :mod:`.map_colouring` colours them; faint outside the
duration range), the current results (marked with their rank), the selected sound, the query,
and a ring on the sound that plays; in a library with regions, a sixth: the regions of the
selected file as small points, each placed where its own features land (a click on one selects
that region). A click on any point selects that library sound; with a
:class:`~.labelling.Labelling`, a box or lasso chooses sounds to label. The view never searches
by itself.

How the map talks to plotly's front end (plotly 7) matters here. The widget's front-end model
keeps its own copy of the figure and applies each update message to it as sent, including the
``"_undefined_"`` placeholder that ``batch_update`` puts in for a trace that did not set a
property another trace in the same batch did: one batch touching the library trace and the
results wrote ``"_undefined_"`` over the library's names (and, with the duration narrowed, its
x and y) in that copy. Every view drawn from it then lacked them, and each update's report back
(the "trace deltas") carried the library's points to the kernel, where plotly failed on them
(``ValueError: The truth value of an array ... is ambiguous``). So every message sent here
gives a value for every trace it names: the library's style alone, the four small highlight
traces together, or the selection alone, or the ring of the sound that plays alone.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from ..errors import ParameterError
from .formatting import format_duration
from .labelling import Labelling
from .map_colouring import (
    GREY,
    checked_colour_by,
    folder_groups,
    folder_label,
    group_colours,
    hover_label,
    marker_colours,
    opacity,
)
from .state import AppState

__all__ = ["DRAGMODES", "MapView"]

#: Above this many points the map draws with WebGL (SVG gets slow past a few thousand).
WEBGL_ABOVE = 5000
#: What a drag on the map can do: move it, or choose sounds with a lasso or a box.
DRAGMODES = ("pan", "lasso", "select")
_LIBRARY, _RESULTS, _SELECTION, _QUERY, _PLAYING, _REGIONS = range(6)
_ACCENT = "#e4572e"
_QUERY_COLOUR = "#1f3b8f"
_PLAYING_COLOUR = "#12a4b6"
_REGION_COLOUR = "#7a3fb0"
_LABELLED_RANKS = 10  # results whose rank is written beside their point
_UNSELECTED = 0.45
_FOLDER_LINE = '<span style="color:#5f6878;font-size:11px">{}</span>'
# Name, folder (small, grey), duration: the per-point parts travel once, as hovertext and
# customdata, and the markup once, in the template.
_LIBRARY_HOVER = ("%{hovertext}<br>" + _FOLDER_LINE.format("%{customdata[0]}")
                  + "<br>%{customdata[1]}%{customdata[2]}<extra></extra>")


class MapView:
    """The plotly map bound to ``state``: redraws its highlights when the state changes.

    Args:
        state: the app state drawn (it must have a map, ``AppState(atlas=...)``).
        labelling: where a box or lasso on the map puts the sounds it chooses (and whose
            suggestions the label colouring shows); ``None``: the map only selects by click.
        colour_by: ``"none"`` (one grey), ``"duration"`` (log scale), ``"folder"`` (the
            top-level folder of each sound within its library folder) or ``"label"`` (each
            sound's first label; a suggested label faded).
        width, height: the figure's size in pixels at first (:meth:`resize` changes it).

    Example:
        >>> view = MapView(state, colour_by="folder")  # doctest: +SKIP
        >>> view.figure  # the FigureWidget to display  # doctest: +SKIP
    """

    def __init__(self, state: AppState, *, labelling: Labelling | None = None,
                 colour_by: str = "none", width: int = 540, height: int = 520) -> None:
        self.state = state
        self.labelling = labelling
        atlas = state.atlas
        if atlas is None:
            raise ParameterError("the state has no map (AppState(atlas=None)): nothing to draw")
        self._colour_by = checked_colour_by(colour_by)
        rows, library = state.library.rows, state.library
        coordinates = atlas.coordinates
        self._durations_s = rows["duration"].to_numpy(dtype=np.float64)
        self._folder_labels = [folder_label(folder) for folder in library.folders]
        self._inside = state.in_range()
        scatter = go.Scattergl if len(rows) > WEBGL_ABOVE else go.Scatter
        library_trace = scatter(
            x=coordinates[:, 0], y=coordinates[:, 1], mode="markers", name="library",
            hovertext=[html.escape(str(name)) for name in rows["name"]],
            customdata=self._customdata(),
            hovertemplate=_LIBRARY_HOVER, hoverlabel=hover_label(GREY),
            # Outside a lasso, points stay half visible (plotly's default, a fifth of their
            # opacity, hid the faded suggestions round the sounds just labelled).
            unselected={"marker": {"opacity": _UNSELECTED}},
            marker={"size": 8 if len(rows) <= 2000 else 4, "line": {"width": 0},
                    **self._colouring(self._colour_by)})
        regions = state.library.regions
        #: Each file's regions (rows of ``library.regions``) by file position; ``None``: the
        #: library has none (and the map no regions trace).
        self._regions = (None if not len(regions) else
                         {int(file): part for file, part in regions.groupby("file")})
        self._region_points: dict[int, dict] = {}
        self._shown_regions: int | None = None  # whose regions the trace shows
        highlights = self._highlights()
        region_trace = [] if self._regions is None else [
            go.Scatter(mode="markers", name="regions", hoverinfo="text",
                       hoverlabel=hover_label(_REGION_COLOUR),
                       marker={"size": 6, "color": _REGION_COLOUR, "symbol": "diamond",
                               "line": {"width": 0.5, "color": "white"}},
                       **highlights[_REGIONS])]
        self.figure = go.FigureWidget(
            data=[
                library_trace,
                go.Scatter(mode="markers+text", name="results", hoverinfo="text",
                           hoverlabel=hover_label(_ACCENT),
                           textposition="top center", textfont={"size": 11, "color": _ACCENT},
                           marker={"size": 13, "color": _ACCENT,
                                   "line": {"width": 1, "color": "white"}},
                           **highlights[_RESULTS]),
                go.Scatter(mode="markers", name="selected", hoverinfo="skip",
                           marker={"size": 22, "symbol": "circle-open", "color": "#111",
                                   "line": {"width": 2}},
                           **highlights[_SELECTION]),
                go.Scatter(mode="markers", name="query", hoverinfo="text",
                           marker={"size": 20, "symbol": "star", "color": _QUERY_COLOUR,
                                   "line": {"width": 1, "color": "white"}},
                           **highlights[_QUERY]),
                # Hover and clicks go through the ring to the point under it.
                go.Scatter(mode="markers", name="playing", hoverinfo="skip",
                           marker={"size": 30, "symbol": "circle-open", "color": _PLAYING_COLOUR,
                                   "line": {"width": 3}},
                           **highlights[_PLAYING]),
                *region_trace,
            ],
            layout={
                "width": width, "height": height, "margin": {"l": 10, "r": 10, "t": 36, "b": 10},
                "title": {"text": html.escape(atlas.note), "font": {"size": 12}, "x": 0.01},
                "showlegend": False, "hovermode": "closest", "dragmode": "pan",
                "xaxis": {"visible": False}, "yaxis": {"visible": False},
                "plot_bgcolor": "white", "clickmode": "event",
            },
        )
        self.figure.data[_LIBRARY].on_click(self._clicked_library)
        self.figure.data[_RESULTS].on_click(self._clicked_result)
        if self._regions is not None:
            self.figure.data[_REGIONS].on_click(self._clicked_region)
        state.observe(self.update)
        if labelling is not None:
            self.figure.data[_LIBRARY].on_selection(self._chosen)
            self.figure.data[_LIBRARY].on_deselect(self._unchosen)
            labelling.observe(self._labels_changed)

    # -- drawing -----------------------------------------------------------------------------

    @property
    def dragmode(self) -> str:
        """What a drag on the map does: ``"pan"``, ``"lasso"`` or ``"select"`` (a box)."""
        return self.figure.layout.dragmode

    @dragmode.setter
    def dragmode(self, value: str) -> None:
        if value not in DRAGMODES:
            raise ParameterError(f"dragmode must be one of {', '.join(DRAGMODES)}; "
                                 f"got {value!r}")
        self.figure.layout.dragmode = value

    @property
    def colour_by(self) -> str:
        """What colours the library points: one of :data:`~.map_colouring.COLOUR_BY`."""
        return self._colour_by

    @colour_by.setter
    def colour_by(self, value: str) -> None:
        value = checked_colour_by(value)
        if value != self._colour_by:
            self._colour_by = value
            self._style_library(self._colouring(value))

    @property
    def colour_by_duration(self) -> bool:
        """Whether the library points are coloured by duration (a shortcut for
        :attr:`colour_by`; ``False`` turns duration colouring off, nothing else)."""
        return self._colour_by == "duration"

    @colour_by_duration.setter
    def colour_by_duration(self, value: bool) -> None:
        if value:
            self.colour_by = "duration"
        elif self._colour_by == "duration":
            self.colour_by = "none"

    @property
    def folder_colours(self) -> dict[str, str]:
        """The colour of each top-level folder when colouring by folder (``"(top)"`` for
        sounds directly in a library folder, ``"other"`` for the folders past the
        :data:`~.map_colouring.MAX_FOLDER_COLOURS` largest)."""
        _codes, labels = folder_groups(self._folder_labels)
        return dict(zip(labels, group_colours(labels)))

    def resize(self, width: int, height: int) -> None:
        """Draw the map ``width`` x ``height`` pixels (one layout message; no trace is sent)."""
        layout = self.figure.layout
        if (layout.width, layout.height) != (width, height):
            self.figure.plotly_relayout({"width": width, "height": height})

    def update(self, changed: frozenset[str]) -> None:
        """Redraw what ``changed`` (the state's field names) affects.

        The library's per-point data travels only when its opacity changes (the duration range
        or the query's similar-length window moved); new results or a new query are one message
        for the four small highlight traces, a click one for the selection, a sound that starts
        or stops one for the ring.
        """
        if changed & {"duration", "query"}:
            inside = self.state.in_range()
            if not np.array_equal(inside, self._inside):
                self._inside = inside
                self._style_library({"opacity": opacity(inside, self._faded)})
        if changed & {"results", "query"}:
            self._restyle(self._highlights())
        elif "selection" in changed:
            self._restyle({_SELECTION: self._selection(), **self._selected_regions()})
        if "playing" in changed and not changed & {"results", "query"}:
            self._restyle({_PLAYING: self._playing()})

    def _style_library(self, marker: dict) -> None:
        # One trace per batch, so the update message names no other trace; a colour bar is
        # replaced whole, not merged with the previous one.
        with self.figure.batch_update():
            self.figure.data[_LIBRARY].marker.update(marker, overwrite=True)

    def _restyle(self, values: dict[int, dict]) -> None:
        """One message for these traces' new ``values``, each key with a value for every trace
        it names (``[]`` where a trace has none): no placeholders (see the module docstring)."""
        traces = sorted(values)
        keys = sorted({key for trace_values in values.values() for key in trace_values})
        self.figure.plotly_update(
            restyle_data={key: [values[trace].get(key, []) for trace in traces] for key in keys},
            trace_indexes=traces)

    def _colouring(self, colour_by: str) -> dict:
        """The library marker's colour properties for ``colour_by``, with its opacity (a
        suggested label is fainter than a given one)."""
        colours, self._faded = marker_colours(
            colour_by, library=self.state.library, labelling=self.labelling,
            durations_s=self._durations_s, folder_labels=self._folder_labels)
        return {**colours, "opacity": opacity(self._inside, self._faded)}

    # -- labels ------------------------------------------------------------------------------

    def _labels(self) -> list[tuple[str, ...]]:
        return list(self.state.library.tags)

    def _customdata(self) -> np.ndarray:
        """Per point: folder, duration, and its labels as a hover line (``""`` for none)."""
        labels = self._labels()
        return np.array(
            [[html.escape(folder), format_duration(seconds),
              ("<br>" + html.escape(", ".join(tags))) if tags else ""]
             for folder, seconds, tags in zip(self._folder_labels, self._durations_s.tolist(),
                                              labels)],
            dtype=object).reshape(len(labels), 3)

    def _labels_changed(self, changed: frozenset[str]) -> None:
        """Labels or suggestions changed: new hovers (labels) and, coloured by label, colours."""
        if not changed & {"tags", "suggestions"}:
            return
        marker = self._colouring(self._colour_by) if self._colour_by == "label" else None
        with self.figure.batch_update():
            library = self.figure.data[_LIBRARY]
            if "tags" in changed:
                library.customdata = self._customdata()
            if marker is not None:
                library.marker.update(marker, overwrite=True)

    def _chosen(self, _trace, points, _selector) -> None:
        self.labelling.choose(points.point_inds)

    def _unchosen(self, _trace, _points) -> None:
        self.labelling.choose([])

    def _highlights(self) -> dict[int, dict]:
        """x, y, text and hovertext of the results, selection, query and playing traces (small
        lists)."""
        state = self.state
        marks = state.highlights()
        self._result_positions = marks["position"].to_numpy()
        results = {
            "x": [float(x) for x in marks["x"]], "y": [float(y) for y in marks["y"]],
            # Rank labels for the first ten only: a hundred overlap into blobs (hover says all).
            "text": [str(rank) if rank <= _LABELLED_RANKS else "" for rank in marks["rank"]],
            "hovertext": [
                f"#{rank} {html.escape(str(name))} ({similarity:.2f})<br>"
                + _FOLDER_LINE.format(html.escape(self._folder_labels[position]))
                + f"<br>{format_duration(float(self._durations_s[position]))}"
                for rank, name, similarity, position in
                zip(marks["rank"], marks["name"], marks["similarity"], marks["position"])]}
        point = state.query and state.query.point
        query = {"x": [], "y": [], "hovertext": []}
        if point:
            query = {"x": [float(point[0])], "y": [float(point[1])],
                     "hovertext": [f"query: {html.escape(state.query.name)}"]}
        return {_RESULTS: results, _SELECTION: self._selection(), _QUERY: query,
                _PLAYING: self._playing(), **self._selected_regions()}

    def _selected_regions(self) -> dict[int, dict]:
        """The regions trace's points: the selected file's regions (none without regions)."""
        if self._regions is None:
            return {}
        position = self.state.selection
        self._shown_regions = position
        if position is None or position not in self._regions:
            return {_REGIONS: {"x": [], "y": [], "hovertext": []}}
        if position not in self._region_points:
            self._region_points[position] = self._place_regions(position)
        return {_REGIONS: self._region_points[position]}

    def _place_regions(self, position: int) -> dict:
        """Where file ``position``'s regions land on the map (each placed by its features)."""
        library, atlas = self.state.library, self.state.atlas
        part = self._regions[position]
        name = html.escape(str(library.rows["name"].iloc[position]))
        points = [library.map_point(library.region_features(int(index)), atlas)
                  for index in part.index]
        return {"x": [x for x, _y in points], "y": [y for _x, y in points],
                "hovertext": [f"{name}<br>{start:.2f}&ndash;{end:.2f} s"
                              for start, end in zip(part["start"], part["end"])]}

    def _playing(self) -> dict:
        point = self.state.playing_point()
        return {"x": [], "y": []} if point is None else {"x": [point[0]], "y": [point[1]]}

    def _selection(self) -> dict:
        """The ring on the selected sound, or on its selected region's point."""
        position, region = self.state.selection, self.state.selected_region
        if position is None:
            return {"x": [], "y": []}
        if region is not None and self._regions is not None and position in self._regions:
            part = self._regions[position]
            index = np.flatnonzero(np.isclose(part["start"], region[0])
                                   & np.isclose(part["end"], region[1]))
            if len(index):
                points = self._selected_regions()[_REGIONS]
                return {"x": [points["x"][index[0]]], "y": [points["y"][index[0]]]}
        x, y = self.state.atlas.coordinates[position]
        return {"x": [float(x)], "y": [float(y)]}

    # -- clicks ------------------------------------------------------------------------------

    def _clicked_library(self, _trace, points, _selector) -> None:
        if points.point_inds:
            self.state.select(int(points.point_inds[0]))

    def _clicked_region(self, _trace, points, _selector) -> None:
        """A click on a region's point selects that region of its file (to hear it)."""
        position = self._shown_regions
        if points.point_inds and position in (self._regions or {}):
            part = self._regions[position]
            index = points.point_inds[0]
            if index < len(part):
                self.state.select(position, region=(float(part["start"].iloc[index]),
                                                    float(part["end"].iloc[index])))

    def _clicked_result(self, _trace, points, _selector) -> None:
        if points.point_inds and points.point_inds[0] < len(self._result_positions):
            self.state.select(int(self._result_positions[points.point_inds[0]]))
