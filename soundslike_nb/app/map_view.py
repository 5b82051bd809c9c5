"""The library map as a plotly FigureWidget, drawn from an :class:`AppState`.

Five traces: the library (name, folder, duration and labels on hover; coloured by nothing,
duration, top-level folder or label; faint outside the duration range), the current results
(marked with their rank), the selected sound, the query, and a ring on the sound that plays; in a
library with regions, a sixth: the regions of the selected file as small points, each placed
where its own features land (a click on one selects that region). A click on any point selects
that library sound; with a :class:`~.labelling.Labelling`, a box or lasso chooses sounds to
label. The view never searches by itself.

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
from collections import Counter

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from ..errors import ParameterError
from .formatting import format_duration
from .labelling import Labelling
from .state import AppState

__all__ = ["COLOUR_BY", "DRAGMODES", "MapView"]

#: Above this many points the map draws with WebGL (SVG gets slow past a few thousand).
WEBGL_ABOVE = 5000
#: What the library points can be coloured by.
COLOUR_BY = ("none", "duration", "folder", "label")
#: What a drag on the map can do: move it, or choose sounds with a lasso or a box.
DRAGMODES = ("pan", "lasso", "select")
#: At most this many colours for top-level folders; past that the smallest share "other".
MAX_FOLDER_COLOURS = 20
TOP_FOLDER, OTHER_FOLDERS = "(top)", "other"
#: The legend's group of sounds with no label and no suggestion (grey, like "other").
NO_LABEL = "(none)"
_LIBRARY, _RESULTS, _SELECTION, _QUERY, _PLAYING, _REGIONS = range(6)
_GREY = "#8a94a6"
_NO_LABEL_COLOUR = "#c9ced8"
_ACCENT = "#e4572e"
_QUERY_COLOUR = "#1f3b8f"
_PLAYING_COLOUR = "#12a4b6"
_REGION_COLOUR = "#7a3fb0"
_LABELLED_RANKS = 10  # results whose rank is written beside their point
# Dark24 without its two greys (one is close to the library grey and "other").
_FOLDER_PALETTE = [colour for colour in qualitative.Dark24
                   if colour not in ("#222A2A", "#778AAE")][:MAX_FOLDER_COLOURS]
_IN_RANGE, _OUT_OF_RANGE = 0.85, 0.12
_SUGGESTED = 0.4  # a suggested label is drawn at this share of a given label's opacity
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
        width, height: the figure's size in pixels.

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
        self._colour_by = _checked_colour_by(colour_by)
        rows, library = state.library.rows, state.library
        coordinates = atlas.coordinates
        self._durations_s = rows["duration"].to_numpy(dtype=np.float64)
        self._folder_labels = [_folder_label(folder) for folder in library.folders]
        self._inside = state.in_range()
        scatter = go.Scattergl if len(rows) > WEBGL_ABOVE else go.Scatter
        library_trace = scatter(
            x=coordinates[:, 0], y=coordinates[:, 1], mode="markers", name="library",
            hovertext=[html.escape(str(name)) for name in rows["name"]],
            customdata=self._customdata(),
            hovertemplate=_LIBRARY_HOVER, hoverlabel=_hover_label(_GREY),
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
                       hoverlabel=_hover_label(_REGION_COLOUR),
                       marker={"size": 6, "color": _REGION_COLOUR, "symbol": "diamond",
                               "line": {"width": 0.5, "color": "white"}},
                       **highlights[_REGIONS])]
        self.figure = go.FigureWidget(
            data=[
                library_trace,
                go.Scatter(mode="markers+text", name="results", hoverinfo="text",
                           hoverlabel=_hover_label(_ACCENT),
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
        """What colours the library points: one of :data:`COLOUR_BY`."""
        return self._colour_by

    @colour_by.setter
    def colour_by(self, value: str) -> None:
        value = _checked_colour_by(value)
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
        :data:`MAX_FOLDER_COLOURS` largest)."""
        _codes, labels = _folder_groups(self._folder_labels)
        return dict(zip(labels, _group_colours(labels)))

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
                self._style_library({"opacity": _opacity(inside, self._faded)})
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
        self._faded = None
        colours = self._colours(colour_by)
        return {**colours, "opacity": _opacity(self._inside, self._faded)}

    def _colours(self, colour_by: str) -> dict:
        if colour_by == "label":
            from ..labels import map_labels

            suggestions = None if self.labelling is None else self.labelling.suggestions
            layer = map_labels(self.state.library, suggestions)
            codes, labels = _label_groups(layer["label"].fillna("").tolist())
            self._faded = layer["suggested"].to_numpy(dtype=bool)
            return _categorical(codes, labels, "label")
        if colour_by == "duration":
            values = np.log10(np.maximum(self._durations_s, 1e-3))
            low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
            return {"color": values, "colorscale": "Viridis", "cmin": low,
                    "cmax": high if high > low else low + 1.0, "showscale": True,
                    "colorbar": _duration_colourbar(self._durations_s)}
        if colour_by == "folder":
            return _categorical(*_folder_groups(self._folder_labels), "folder")
        return {"color": _GREY, "showscale": False}

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


def _checked_colour_by(value: str) -> str:
    if value not in COLOUR_BY:
        raise ParameterError(f"colour_by must be one of {', '.join(COLOUR_BY)}; got {value!r}")
    return value


def _hover_label(border: str) -> dict:
    # White, whatever the points' colours, so that the grey folder line stays readable.
    return {"bgcolor": "white", "bordercolor": border, "font": {"color": "#1a1a1a"}}


def _opacity(inside: np.ndarray, faded: np.ndarray | None = None) -> float | np.ndarray:
    # float32: half the bytes of a library's worth of opacities, and plenty for an opacity.
    if inside.all() and (faded is None or not faded.any()):
        return _IN_RANGE
    opacity = np.where(inside, _IN_RANGE, _OUT_OF_RANGE).astype(np.float32)
    if faded is not None:
        opacity[faded] *= _SUGGESTED
    return opacity


def _categorical(codes: np.ndarray, labels: list[str], title: str) -> dict:
    """Marker colours for sounds in groups (codes from :func:`_folder_groups` or
    :func:`_label_groups`): a colour bar of one band per group is the legend."""
    count = len(labels)
    by_code = _group_colours(labels)[::-1]  # codes run bottom to top
    scale = [[bound / count, colour] for code, colour in enumerate(by_code)
             for bound in (code, code + 1)]
    return {"color": codes, "colorscale": scale, "cmin": -0.5, "cmax": count - 0.5,
            "showscale": True,
            "colorbar": {"title": {"text": title}, "thickness": 12,
                         "tickvals": list(range(count - 1, -1, -1)), "tickfont": {"size": 10},
                         "ticktext": [html.escape(_shortened(label)) for label in labels]}}


def _label_groups(shown: list[str]) -> tuple[np.ndarray, list[str]]:
    """Each sound's group for colouring by label (``shown``: its label, own or suggested, as
    :func:`~soundslike_nb.labels.map_labels` picks it; ``""`` for none): the largest labels keep
    a colour of their own, the rest share ``other``, unlabelled sounds are :data:`NO_LABEL`.
    Returns (codes, legend labels), codes counted as :func:`_folder_groups` counts them."""
    groups = [label or NO_LABEL for label in shown]
    counts = Counter(label for label in groups if label != NO_LABEL)
    largest = sorted(counts, key=lambda label: (-counts[label], label))
    named = largest[:MAX_FOLDER_COLOURS - 2]  # room for "other" and "(none)"
    legend = sorted(named)
    if len(named) < len(largest):
        legend.append(OTHER_FOLDERS)
    legend.append(NO_LABEL)
    index = {label: len(legend) - 1 - position for position, label in enumerate(legend)}
    other = index.get(OTHER_FOLDERS)
    codes = np.array([index.get(label, other) for label in groups], dtype=np.uint8)
    return codes, legend


def _folder_label(folder: str) -> str:
    """A sound's folder as the hover shows it: ``voices/female``, ``(top)`` for none."""
    folder = str(folder).replace("\\", "/").strip("/")
    return folder or TOP_FOLDER


def _folder_groups(folder_labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """The top-level folders as a legend reads them (sorted, ``(top)`` first, ``other`` last;
    past :data:`MAX_FOLDER_COLOURS` the smallest folders are ``other``), and each sound's as a
    code: the last name is 0, the first ``len(names) - 1``, as a colour bar runs upwards."""
    tops = [label.split("/", 1)[0] for label in folder_labels]
    counts = Counter(tops)
    named = set(counts)
    if len(counts) > MAX_FOLDER_COLOURS:  # a folder called "other" joins the group
        largest = sorted((top for top in counts if top != OTHER_FOLDERS),
                         key=lambda top: (-counts[top], top))
        named = set(largest[:MAX_FOLDER_COLOURS - 1])
    labels = sorted(named, key=lambda top: (top != TOP_FOLDER, top))
    if len(named) < len(counts):
        labels.append(OTHER_FOLDERS)
    index = {label: len(labels) - 1 - position for position, label in enumerate(labels)}
    other = index.get(OTHER_FOLDERS)
    codes = np.array([index.get(top, other) for top in tops], dtype=np.uint8)
    return codes, labels


def _group_colours(labels: list[str]) -> list[str]:
    palette = iter(_FOLDER_PALETTE)
    return [_GREY if label == OTHER_FOLDERS else _NO_LABEL_COLOUR if label == NO_LABEL
            else next(palette) for label in labels]


def _shortened(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _duration_colourbar(durations_s: np.ndarray) -> dict:
    """Colour bar ticks in seconds on the log10 scale the points are coloured with."""
    low = float(np.log10(max(durations_s.min(), 1e-3))) if len(durations_s) else 0.0
    high = float(np.log10(max(durations_s.max(), 1e-3))) if len(durations_s) else 1.0
    ticks = np.linspace(low, high, 4) if high > low else np.array([low])
    return {"title": {"text": "duration"}, "tickvals": ticks.tolist(),
            "ticktext": [format_duration(10 ** tick) for tick in ticks], "thickness": 12}
