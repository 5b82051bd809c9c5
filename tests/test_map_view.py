"""The library map (a plotly FigureWidget) driven from an AppState, and what reaches its front end.

The map's defects showed only in JupyterLab, in plotly's widget JavaScript, so these tests stand a
small model of that front end (:class:`FrontEnd`) beside the figure: it receives exactly the
messages the kernel sends and answers the way plotly's front end does.
"""

from __future__ import annotations

import html
import os

import numpy as np
import pandas as pd
import pytest
from plotly.serializers import _py_to_js

from soundslike_nb.app.formatting import format_duration
from soundslike_nb.app.map_colouring import MAX_FOLDER_COLOURS
from soundslike_nb.app.map_view import WEBGL_ABOVE, MapView
from soundslike_nb.app.state import AppState
from soundslike_nb.app.uploads import UploadFolder
from soundslike_nb.errors import ParameterError
from soundslike_nb.libfile import ROW_COLUMNS, LibraryTable
from soundslike_nb.library import Library
from soundslike_nb.projection import LibraryMap

DIMENSION = 16
RATE = 16000
ROOT = os.path.abspath(os.sep + "sfx")
FOLDERS = ["voices/female", "voices/male", "impacts", "", "a&b <i>"]
LIBRARY, RESULTS, SELECTION, QUERY, PLAYING = range(5)


def _library(count: int, folders: list[str], *, seed: int = 7) -> Library:
    """``count`` seeded sounds in 3 clusters, 0.05 s to 10 min long, spread over ``folders``
    (relative to one library folder); one has HTML in its name."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, DIMENSION))
    embeddings = centres[np.arange(count) % 3] + 0.2 * rng.standard_normal((count, DIMENSION))
    durations_s = np.geomspace(0.05, 600.0, count)
    names = [f"sound {index}" for index in range(count)]
    names[5] = "<script>alert('x')</script> & co"
    paths = [os.path.join(ROOT, folders[index % len(folders)], f"sound{index}.wav")
             for index in range(count)]
    rows = pd.DataFrame({"name": names, "path": paths, "duration": durations_s,
                         "sample_rate": RATE, "channels": 1,
                         "frames": (durations_s * RATE).astype(int), "size": 0, "mtime": 0.0})
    table = LibraryTable(rows=rows.astype(ROW_COLUMNS), embeddings=embeddings.astype(np.float32),
                         provenance={"embedder": {"id": "test", "dimension": DIMENSION},
                                     "roots": [ROOT]})
    return Library(table)


def _state(library: Library, tmp_path) -> AppState:
    # A PCA map keeps these tests fast (no UMAP compilation); test_projection covers UMAP.
    atlas = LibraryMap(method="pca").fit(library.embeddings)
    return AppState(library, atlas=atlas, uploads=UploadFolder(tmp_path / "uploads"))


@pytest.fixture
def library() -> Library:
    return _library(60, FOLDERS)


@pytest.fixture
def state(library, tmp_path) -> AppState:
    return _state(library, tmp_path)


# -- a model of plotly's widget front end ----------------------------------------------------

_UNDEFINED = object()  # JavaScript's undefined


class FrontEnd:
    """What plotly 7's FigureWidget front end (``plotly/package_data/widgetbundle.js``) does
    with the kernel's messages, as far as the map is concerned:

    - its *model* keeps its own copy of the figure (``_widget_data``) and applies every update
      and restyle message to it *as sent* (``FigureModel.do_update`` → ``PQ``), skipping a value
      only if it is JavaScript ``undefined``: the ``"_undefined_"`` string that Python sends for
      "this trace is left alone" is written into that trace. Views drawn later draw that copy.
    - its *view* draws each message decoded (``"_undefined_"`` skipped), then reports every
      property whose drawn value differs from the model's copy (``_sendTraceDeltas``), typed
      arrays as ``{"dtype", "shape", "value"}``; the kernel folds the report into the figure
      (``BaseFigureWidget._handler_js2py_traceDeltas``), a comm callback.

    Checked against the real bundle in Chromium (a page with a stand-in anywidget model): the
    old map lost the library's hovertext and x/y in the model, and the kernel raised the
    ``ValueError`` of the issue on the view's report.
    """

    def __init__(self, figure) -> None:
        self.figure = figure
        self.model = _py_to_js(figure._widget_data, None)
        self.drawn = _decoded(self.model)
        self.messages: list[dict] = []
        figure.observe(self._received, names=["_py2js_update", "_py2js_restyle",
                                              "_py2js_removeTraceProps"])

    def _received(self, change) -> None:
        message = change["new"]
        if message is None:  # the kernel clears each message trait right after setting it
            return
        message = _py_to_js(message, None)
        if change["name"] == "_py2js_removeTraceProps":
            for path in message["remove_props"]:
                _unset(self.model[message["remove_trace"]], list(path))
            return
        self.messages.append(message)
        style = message.get("style_data", message.get("restyle_data"))
        traces = message.get("style_traces", message.get("restyle_traces"))
        traces = list(range(len(self.model))) if traces is None else traces
        for key, values in style.items():
            values = values if isinstance(values, list) else [values]
            for position, trace in enumerate(traces):
                value = values[position % len(values)]
                _put(self.model[trace], key.split("."), value)
                decoded = _decoded(value)
                if decoded is not _UNDEFINED:
                    _put(self.drawn[trace], key.split("."), decoded)

    def report(self) -> None:
        """The view's report after drawing, handled by the kernel as a comm message would be."""
        deltas = [{"uid": drawn["uid"], **_differences(drawn, _decoded(model))}
                  for drawn, model in zip(self.drawn, self.model)]
        self.figure._js2py_traceDeltas = {"trace_deltas": deltas,
                                          "trace_edit_id": self.figure._last_trace_edit_id}

    def sent_to(self, trace: int) -> list[dict]:
        """The messages so far that named ``trace``."""
        return [message for message in self.messages
                if trace in (message.get("style_traces", message.get("restyle_traces")) or [])]


def _decoded(value):
    if isinstance(value, str) and value == "_undefined_":
        return _UNDEFINED
    if isinstance(value, dict):
        if {"buffer", "dtype", "shape"} <= value.keys():
            return np.frombuffer(bytes(value["buffer"]), dtype=value["dtype"])
        return {key: _decoded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decoded(item) for item in value]
    return value


def _put(container: dict, path: list[str], value) -> None:
    for key in path[:-1]:
        if not isinstance(container.get(key), dict):
            container[key] = {}
        container = container[key]
    if value is None:
        container.pop(path[-1], None)
    else:
        container[path[-1]] = value


def _unset(container: dict, path: list[str]) -> None:
    for key in path[:-1]:
        container = container.get(key, {})
    container.pop(path[-1], None)


def _same(drawn, model) -> bool:
    if isinstance(drawn, np.ndarray) or isinstance(model, np.ndarray):
        return (isinstance(drawn, (np.ndarray, list)) and isinstance(model, (np.ndarray, list))
                and np.array_equal(np.asarray(drawn), np.asarray(model)))
    if isinstance(drawn, dict) and isinstance(model, dict):
        return drawn.keys() == model.keys() and all(_same(drawn[k], model[k]) for k in drawn)
    if isinstance(drawn, list) and isinstance(model, list):
        return len(drawn) == len(model) and all(map(_same, drawn, model))
    return type(drawn) is type(model) and drawn == model


def _differences(drawn: dict, model) -> dict:
    model = model if isinstance(model, dict) else {}
    out = {}
    for key, value in drawn.items():
        if key.startswith("_") or key == "uid" or _same(value, model.get(key, _UNDEFINED)):
            continue
        if isinstance(value, dict):
            nested = _differences(value, model.get(key))
            if nested:
                out[key] = nested
        else:
            out[key] = _as_sent_by_javascript(value)
    return out


def _as_sent_by_javascript(value):
    if isinstance(value, np.ndarray):  # a typed array, its bytes in a comm buffer
        return {"dtype": str(value.dtype), "shape": [len(value)],
                "value": memoryview(value.tobytes())}
    return value


def _escaped_names(library: Library) -> list[str]:
    return [html.escape(name) for name in library.rows["name"]]


def _drive(state: AppState, front: FrontEnd | None = None) -> None:
    """What a session does: a query, the duration narrowed (twice), a click, k, a wider range;
    after each, the front end's report if ``front`` is given."""
    for change in (lambda: state.set_query_row(3), lambda: setattr(state, "duration", (1.0, 60.0)),
                   lambda: state.select(4), lambda: setattr(state, "duration", (2.0, 30.0)),
                   lambda: setattr(state, "k", 5), lambda: setattr(state, "duration", None),
                   lambda: state.set_query_row(10)):
        change()
        if front is not None:
            front.report()


# -- the defects of the issue ----------------------------------------------------------------

def test_the_library_keeps_its_names_and_points_in_what_the_front_end_draws(state, library):
    view = MapView(state)
    front = FrontEnd(view.figure)
    _drive(state)  # the front end's reports are the next test's

    hover = list(view.figure.data[LIBRARY].hovertext)
    library_trace = front.model[LIBRARY]
    assert library_trace["hovertext"] == hover, "a view drawn now would show every name"
    names = _escaped_names(library)
    assert hover == names
    np.testing.assert_allclose(_decoded(library_trace["x"]), state.atlas.coordinates[:, 0])
    np.testing.assert_allclose(_decoded(library_trace["y"]), state.atlas.coordinates[:, 1])
    for message in front.messages:  # no message leaves a trace's value to a placeholder
        style = message.get("style_data", message.get("restyle_data"))
        assert "_undefined_" not in repr(style), message
    # The names still reach the screen: plotly's to_plotly_json is what a new view gets.
    assert list(view.figure.to_plotly_json()["data"][LIBRARY]["hovertext"]) == names


def test_map_updates_raise_nothing_in_the_front_ends_comm_callbacks(state, library):
    view = MapView(state)
    front = FrontEnd(view.figure)
    front.report()
    _drive(state, front)  # each report is the comm callback that raised the ValueError
    state.relative_duration = None
    state.duration = (1.0, 60.0)
    state.duration = (1.0, 30.0)
    front.report()

    # The reports carried nothing of the library's own, so the figure kept it.
    library_props = view.figure.data[LIBRARY]._props
    assert {"x", "y", "hovertext"} <= library_props.keys()
    assert front.figure._js2py_traceDeltas is None, "the last report was handled to its end"
    # Points outside the range are faint, the others not.
    inside = state.in_range()
    opacity = np.asarray(view.figure.data[LIBRARY].marker.opacity)
    assert 0 < inside.sum() < len(inside)
    assert (opacity[inside] > 0.5).all() and (opacity[~inside] < 0.5).all()


# -- names you can tell apart ----------------------------------------------------------------

def test_hover_shows_name_folder_and_duration_escaped(state, library):
    view = MapView(state)
    trace = view.figure.data[LIBRARY]
    assert "%{hovertext}" in trace.hovertemplate and "%{customdata[0]}" in trace.hovertemplate
    folders = list(library.folders)
    for position in (0, 3, 4, 5):
        name, folder = library.rows["name"].iloc[position], folders[position]
        assert trace.hovertext[position] == html.escape(name)
        expected_folder = html.escape(folder) if folder else "(top)"
        assert list(trace.customdata[position]) == [  # no labels: no third line
            expected_folder, format_duration(library.rows["duration"].iloc[position]), ""]
    assert "&lt;i&gt;" in trace.customdata[4][0] and "<i>" not in trace.customdata[4][0]
    assert "&lt;script&gt;" in trace.hovertext[5]

    state.relative_duration = None  # no similar-length window: every other sound a result
    state.set_query_row(2)
    state.k = 60
    results = view.figure.data[RESULTS]
    positions = list(state.results["position"])
    assert len(results.hovertext) == len(positions) == 59
    for position, hover in zip(positions, results.hovertext):
        folder = folders[position]
        assert (html.escape(folder) if folder else "(top)") in hover
        assert format_duration(library.rows["duration"].iloc[position]) in hover
    assert not any("<script>" in hover or "<i>" in hover for hover in results.hovertext)
    assert list(results.text) == [str(rank) if rank <= 10 else "" for rank in state.results["rank"]]


def test_colour_by_folder_none_and_duration(state, library):
    view = MapView(state, colour_by="folder")
    front = FrontEnd(view.figure)
    marker = view.figure.data[LIBRARY].marker
    labels = list(marker.colorbar.ticktext)  # the legend, top to bottom
    assert labels == ["(top)", "a&amp;b &lt;i&gt;", "impacts", "voices"]
    assert list(marker.colorbar.tickvals) == [3, 2, 1, 0]
    label_of = dict(zip(marker.colorbar.tickvals, labels))
    tops = [folder.split("/")[0] or "(top)" for folder in library.folders]
    assert [label_of[code] for code in marker.color] == [html.escape(top) for top in tops]
    assert marker.showscale and marker.cmin < 0 < len(labels) - 1 < marker.cmax
    colours = view.folder_colours
    assert list(colours) == ["(top)", "a&b <i>", "impacts", "voices"]
    assert len(set(colours.values())) == 4
    for code, label in label_of.items():  # each code's band of the colour scale is its colour
        (low, colour), (high, same) = marker.colorscale[2 * code:2 * code + 2]
        assert low < (code + 0.5) / len(labels) < high and colour == same
        assert colour == colours[html.unescape(label)]

    view.colour_by = "duration"
    assert view.colour_by_duration and marker.colorscale[0][1] != marker.colorscale[-1][1]
    assert marker.colorbar.title.text == "duration" and marker.colorbar.tickfont.size is None
    np.testing.assert_allclose(marker.color, np.log10(library.rows["duration"]))
    view.colour_by_duration = False
    assert view.colour_by == "none" and not marker.showscale and marker.color == "#8a94a6"
    view.colour_by = "folder"
    view.colour_by_duration = False  # turns off duration colouring only
    assert view.colour_by == "folder"
    with pytest.raises(ParameterError, match="colour_by must be one of"):
        view.colour_by = "size"
    # Each colour change was one message for the library trace alone.
    assert all(message["style_traces"] == [LIBRARY] for message in front.messages)
    assert front.model[LIBRARY]["hovertext"] == _escaped_names(library)


def test_many_top_level_folders_share_other(tmp_path):
    folders = [f"pack {index:02d}/sub" for index in reversed(range(25))]
    library = _library(25 * 5 + 5, folders)  # packs 20 to 24 hold one sound more
    view = MapView(_state(library, tmp_path), colour_by="folder")
    marker = view.figure.data[LIBRARY].marker
    labels = list(marker.colorbar.ticktext)
    assert len(labels) == MAX_FOLDER_COLOURS and labels[-1] == "other"
    # The 5 largest, then the first of the equal others by name; the rest are "other".
    assert labels[:-1] == sorted([f"pack {index:02d}" for index in (*range(14), *range(20, 25))])
    codes = np.asarray(marker.color)
    named = sum(1 for folder in library.folders if folder.split("/")[0] in labels)
    assert marker.colorbar.tickvals[-1] == 0 and (codes == 0).sum() == len(library) - named
    assert view.folder_colours["other"] == "#8a94a6"


# -- large maps stay fast --------------------------------------------------------------------

def test_updates_send_library_points_only_when_their_opacity_changes(tmp_path):
    library = _library(WEBGL_ABOVE + 500, ["a", "b"])
    state = _state(library, tmp_path)
    state.relative_duration = None  # so that a query leaves the rows in range as they are
    view = MapView(state)
    assert view.figure.data[LIBRARY].type == "scattergl"
    front = FrontEnd(view.figure)

    state.set_query_row(3)
    state.k = 20
    state.select(7)
    library_messages = front.sent_to(LIBRARY)
    state.duration = (1.0, 60.0)
    state.duration = (1.0, 60.000001)  # the same rows in range: nothing new to draw
    state.select(8)
    front.report()

    assert not library_messages, "results and selection leave the library trace alone"
    opacity_messages = front.sent_to(LIBRARY)
    assert len(opacity_messages) == 1
    assert list(opacity_messages[0]["style_data"]) == ["marker.opacity"]
    # Results (with the query and selection) travel together, a click alone; a few points each.
    highlights = [message["style_traces"] for message in front.messages
                  if message["style_traces"] != [LIBRARY]]
    together = [RESULTS, SELECTION, QUERY, PLAYING]
    # query, k, click, range (the same results again send nothing), click
    assert highlights == [together, together, [SELECTION], together, [SELECTION]], highlights
    for message in front.messages:
        if message["style_traces"] != [LIBRARY]:
            assert max(len(value) for values in message["style_data"].values()
                       for value in values) <= 20
    assert front.model[LIBRARY]["hovertext"] == _escaped_names(library)


def test_the_sound_that_plays_is_ringed_alone_and_whole(state, library):
    from soundslike_nb.app.state import QUERY as QUERY_SOUND

    view = MapView(state)
    front = FrontEnd(view.figure)
    state.set_query_row(3)
    assert list(view.figure.data[PLAYING].x) == []
    before = len(front.messages)
    state.play(12)
    ring = view.figure.data[PLAYING]
    assert (ring.x[0], ring.y[0]) == tuple(state.atlas.coordinates[12])
    assert ring.marker.symbol == "circle-open" and ring.hoverinfo == "skip"
    assert ring.marker.color != view.figure.data[SELECTION].marker.color
    # One message, for the ring's trace alone, with whole values (no placeholders).
    assert [message["style_traces"] for message in front.messages[before:]] == [[PLAYING]]
    assert "_undefined_" not in repr(front.messages[-1])
    state.stopped(11)  # another sound's end changes nothing
    assert list(view.figure.data[PLAYING].x) == [float(state.atlas.coordinates[12, 0])]
    state.stopped(12)
    assert list(view.figure.data[PLAYING].x) == []
    state.play(QUERY_SOUND)  # the query sound: the ring goes on its star
    assert list(view.figure.data[PLAYING].x) == list(view.figure.data[QUERY].x)
    front.report()
    assert front.model[LIBRARY]["hovertext"] == _escaped_names(library)


def test_a_state_without_a_map_is_refused(library, tmp_path):
    with pytest.raises(ParameterError, match="no map"):
        MapView(AppState(library, atlas=None, uploads=UploadFolder(tmp_path / "up")))


# -- the same in plotly's own front end, in Chromium -----------------------------------------

CHROMIUM = os.environ.get("SOUNDSLIKE_CHROMIUM", "/usr/bin/chromium")
# A page that runs plotly's widget bundle with a stand-in for anywidget's model: messages from
# the kernel arrive with deliver(name, value), and what the front end sets waits in `outbox`.
PAGE = """<!doctype html><html><body>
<div id="first" style="width:560px;height:540px"></div>
<div id="second" style="width:560px;height:540px"></div>
<script type="module">
import widget from "./widgetbundle.js";
const fromPy = v => Array.isArray(v) ? v.map(fromPy)
  : v && typeof v === "object" ? ("__b64__" in v
    ? new DataView(Uint8Array.from(atob(v.__b64__), c => c.charCodeAt(0)).buffer)
    : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromPy(x)])))
  : v;
const toPy = v => v instanceof ArrayBuffer || ArrayBuffer.isView(v)
  ? {__b64__: btoa(String.fromCharCode(...new Uint8Array(v.buffer || v)))}
  : Array.isArray(v) ? v.map(toPy)
  : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toPy(x)]))
  : v;
class Model {
  constructor(state) { this.state = fromPy(state); this.handlers = {}; }
  get(name) { return this.state[name]; }
  set(name, value) { this.state[name] = value; window.outbox.push([name, toPy(value)]); }
  on(event, handler) { (this.handlers[event] ||= []).push(handler); }
  save_changes() {}
  deliver(name, value) {
    this.state[name] = fromPy(value);
    for (const handler of this.handlers["change:" + name] || []) handler();
  }
}
window.outbox = [];
window.start = state => {
  window.model = new Model(state);
  window.figure = widget();
  window.figure.initialize({model: window.model});
  window.figure.render({el: document.getElementById("first")});
};
window.ready = true;
</script></body></html>"""


def _chromium_missing() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


def _to_page(value):
    import base64

    if isinstance(value, memoryview):
        return {"__b64__": base64.b64encode(value.tobytes()).decode()}
    if isinstance(value, dict):
        return {key: _to_page(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_page(item) for item in value]
    return value


def _from_page(value):
    import base64

    if isinstance(value, dict):
        if "__b64__" in value:
            return memoryview(base64.b64decode(value["__b64__"]))
        return {key: _from_page(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_page(item) for item in value]
    return value


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(_chromium_missing() is not None, reason=_chromium_missing() or "")
def test_plotlys_own_front_end_keeps_names_and_raises_nothing(state, library, tmp_path):
    import functools
    import http.server
    import threading
    from pathlib import Path

    import plotly
    from playwright.sync_api import sync_playwright
    from plotly.serializers import _js_to_py

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(PAGE)
    (site / "widgetbundle.js").symlink_to(
        Path(plotly.__file__).parent / "package_data" / "widgetbundle.js")
    class Files(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Files, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()

    view = MapView(state)
    figure = view.figure
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1200})
            page.goto(f"http://127.0.0.1:{server.server_port}/index.html")
            page.wait_for_function("window.ready === true", timeout=60_000)
            traits = [name for name in figure.trait_names()
                      if name.startswith(("_py2js_", "_last_", "_widget_", "_config"))]
            page.evaluate("state => window.start(state)", {
                name: _to_page(_py_to_js(getattr(figure, name), None)) for name in traits})

            def answer() -> None:  # hand what the front end reported to the kernel's handlers
                page.wait_for_timeout(150)
                for name, value in page.evaluate("() => window.outbox.splice(0)"):
                    if name == "_js2py_traceDeltas":
                        try:
                            figure._js2py_traceDeltas = _js_to_py(_from_page(value), None)
                        except Exception as exc:  # a comm callback's error, as the kernel logs it
                            errors.append(f"{type(exc).__name__}: {exc}")
                            figure._js2py_traceDeltas = None

            figure.observe(lambda change: page.evaluate(
                "([name, value]) => window.model.deliver(name, value)",
                [change["name"], _to_page(_py_to_js(change["new"], None))]), names=traits)
            answer()
            for change in (lambda: state.set_query_row(3),
                           lambda: setattr(state, "duration", (1.0, 60.0)),
                           lambda: state.select(4), lambda: setattr(state, "duration", (2.0, 30.0)),
                           lambda: setattr(state, "k", 5)):
                change()
                answer()
            assert not errors, errors
            names = page.evaluate("() => window.model.state._widget_data[0].hovertext")
            assert names == _escaped_names(library)

            # A view drawn now (a re-render, a second view) draws every point, names on hover.
            page.evaluate("() => window.figure.render({el: document.getElementById('second')})")
            answer()
            points = page.locator("#second .scatterlayer .trace").first.locator("path.point")
            assert points.count() == len(library)
            box = points.nth(4).bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.locator("#second .hoverlayer .hovertext").wait_for()
            label = page.locator("#second .hoverlayer .hovertext").text_content()
            assert label == f"sound 4{FOLDERS[4]}{format_duration(library.rows['duration'][4])}"
            assert not errors, errors
        finally:
            browser.close()
            server.shutdown()


def test_only_the_first_ten_results_carry_a_rank_label_on_the_map(tmp_path):
    state = _state(_library(60, ["a", "b"]), tmp_path)
    state.relative_duration = None
    view = MapView(state)
    state.set_query_row(0)
    state.k = 40
    labels = list(view.figure.data[1].text)
    assert labels[:10] == [str(rank) for rank in range(1, 11)]
    assert set(labels[10:]) == {""} and len(labels) == len(state.results)


# -- the map's size follows the width the browser gives it ---------------------------------------

def test_map_size_keeps_a_laptop_map_readable_and_within_the_screen():
    from soundslike_nb.app.map_fit import MAX_HEIGHT, MAX_WIDTH, MIN_BESIDE, MIN_HEIGHT, map_size

    assert map_size(MIN_BESIDE + 4) == (MIN_BESIDE, round(MIN_BESIDE * 0.9))
    widths = [map_size(column)[0] for column in (404, 500, 724, 804, 1008, 2000)]
    assert widths == [400, 496, 720, 800, 800, 800], "its column's width, less its margins"
    assert MAX_WIDTH <= MAX_HEIGHT * 4 / 3 + 1, "never stretched sideways past 4:3"
    heights = [map_size(column)[1] for column in range(120, 3000, 37)]
    assert min(heights) == MIN_HEIGHT and max(heights) == MAX_HEIGHT
    assert heights == sorted(heights), "a wider map is never lower"


def test_the_map_is_redrawn_at_the_width_its_column_has_in_the_browser(library, tmp_path):
    from soundslike_nb.app.map_fit import MIN_BESIDE, map_size
    from soundslike_nb.app.widgets import App

    app = App(library, atlas=LibraryMap(method="pca").fit(library.embeddings),
              upload_folder=str(tmp_path / "uploads"))
    figure = app.map_view.figure
    panels = next(box for box in app.widget.children if "soundslike-panels" in box._dom_classes)
    results, column = panels.children
    assert results is app.results and app.map_width in column.children
    assert panels.layout.flex_flow == "row wrap", "the map wraps below the results when narrow"
    assert column.layout.flex == f"1 1 {MIN_BESIDE}px" and column.layout.min_width
    assert (figure.layout.width, figure.layout.height) == map_size(MIN_BESIDE)
    relayouts, restyles = [], []
    figure.observe(lambda change: change["new"] and relayouts.append(change["new"]),
                   "_py2js_relayout")
    figure.observe(lambda change: change["new"] and restyles.append(change["new"]),
                   ["_py2js_restyle", "_py2js_update"])
    app.state.set_query_row(3)
    highlights = len(restyles)
    x, y = list(figure.data[QUERY].x), list(figure.data[RESULTS].y)

    app.map_width.width = 724  # what the browser measured: the column beside the results
    assert (figure.layout.width, figure.layout.height) == map_size(724) == (720, 600)
    assert len(relayouts) == 1 and relayouts[0]["relayout_data"] == {"width": 720,
                                                                      "height": 600}
    assert len(restyles) == highlights, "no trace is sent again: the star and results stay"
    assert list(figure.data[QUERY].x) == x and list(figure.data[RESULTS].y) == y
    app.map_width.width = 724
    app.map_view.resize(*map_size(724))
    assert len(relayouts) == 1, "the same width again sends nothing"
    app.map_width.width = 600  # beside the results in a narrower window
    assert (figure.layout.width, figure.layout.height) == (596, 536)
    assert len(relayouts) == 2
