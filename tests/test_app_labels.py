"""Labelling from the app: sounds chosen on the map, labels put on them, suggestions taken,
search filtered by label; the state, the map and the panel, headless."""

from __future__ import annotations

import numpy as np
import pytest

from soundslike_nb.app.labelling import Labelling
from soundslike_nb.app.state import AppState
from soundslike_nb.app.uploads import UploadFolder
from soundslike_nb.projection import LibraryMap

from .test_app_state import CountingEmbedder, _library


@pytest.fixture
def library(tmp_path):
    """60 sounds in 3 seeded clusters (position % 3), in memory (tags are not written)."""
    return _library(tmp_path, CountingEmbedder())


@pytest.fixture
def state(library, tmp_path) -> AppState:
    atlas = LibraryMap(method="pca").fit(library.embeddings)
    return AppState(library, atlas=atlas, relative_duration=None,
                    uploads=UploadFolder(tmp_path / "uploads"))


def _cluster(cluster: int, count: int = 20) -> list[int]:
    return [position for position in range(60) if position % 3 == cluster][:count]


def test_chosen_sounds_get_a_label_and_their_neighbours_a_suggestion(library):
    labelling = Labelling(library)
    heard: list[tuple[frozenset[str], str]] = []
    labelling.observe(lambda changed: heard.append((changed, labelling.busy)))
    labelling.choose(_cluster(0, 4))
    assert list(labelling.chosen) == _cluster(0, 4) and heard[-1] == ({"chosen"}, "")
    heard.clear()
    assert labelling.label_chosen(" impacts ") == 4
    # The labels are drawn first; then, while suggestions are computed, busy says so.
    assert [changed for changed, _ in heard] == [{"tags", "error"}, {"busy"},
                                                 {"busy", "suggestions"}]
    assert heard[1][1].startswith("suggesting") and heard[2][1] == ""
    assert not labelling.error
    assert labelling.labels.to_dict() == {"impacts": 4}
    assert [library.tags[p] for p in _cluster(0, 4)] == [("impacts",)] * 4
    assert labelling.label_chosen("impacts") == 0  # they carry it already

    suggested = labelling.suggestions
    assert len(suggested) and set(suggested["label"]) == {"impacts"}
    assert not set(suggested.index) & set(_cluster(0, 4))  # only unlabelled sounds
    best = suggested.sort_values("confidence", ascending=False).index[:10]
    assert sum(position % 3 == 0 for position in best) >= 8  # the rest of the cluster first

    labelling.min_confidence = float(suggested["confidence"].median())
    expected = len(labelling.confident())
    assert 0 < expected < len(suggested)
    assert labelling.accept() == expected
    assert labelling.labels["impacts"] == 4 + expected
    assert not set(labelling.suggestions.index) & set(np.flatnonzero(library.carrying("impacts")))

    labelling.choose(_cluster(0, 2))
    assert labelling.unlabel_chosen("impacts") == 2
    assert library.tags[_cluster(0, 2)[0]] == ()


def test_bad_labels_and_empty_choices_are_said_not_raised(library):
    labelling = Labelling(library)
    assert labelling.label_chosen("impacts") == 0 and "choose sounds" in labelling.error
    labelling.choose([1, 2])
    assert labelling.label_chosen("a\nb") == 0 and "control" in labelling.error
    assert labelling.label_chosen("") == 0 and "empty" in labelling.error
    assert not len(labelling.labels)
    labelling.choose([0, 60])
    assert "60 is not a row" in labelling.error and list(labelling.chosen) == [1, 2]
    with pytest.raises(Exception, match="min_confidence"):
        labelling.min_confidence = 1.5


def test_the_label_filter_keeps_results_to_labelled_sounds(state, library):
    Labelling(library).choose(_cluster(1))
    library.tag(_cluster(1), "whoosh")
    state.set_query_row(0)
    assert set(state.results["position"]) - set(_cluster(1))  # cluster 0 first, unfiltered
    heard: list[frozenset[str]] = []
    state.observe(heard.append)
    state.label_filter = ["whoosh"]
    assert heard[-1] >= {"labels", "results"} and state.label_filter == ("whoosh",)
    assert len(state.results) == 10 and set(state.results["position"]) <= set(_cluster(1))
    state.label_filter = ["nobody has this"]
    assert len(state.results) == 0 and not state.error
    state.label_filter = []
    assert len(state.results) == 10


def test_the_map_chooses_with_the_lasso_and_colours_by_label(state, library):
    from plotly.callbacks import Points

    from soundslike_nb.app.map_colouring import NO_LABEL
    from soundslike_nb.app.map_view import MapView

    labelling = Labelling(library)
    view = MapView(state, labelling=labelling, colour_by="label")
    assert view.figure.layout.dragmode == "pan"
    assert view.figure.data[0].unselected.marker.opacity >= 0.4  # suggestions stay visible
    view.dragmode = "lasso"
    assert view.figure.layout.dragmode == "lasso"
    with pytest.raises(Exception, match="dragmode"):
        view.dragmode = "zoom"
    legend = list(view.figure.data[0].marker.colorbar.ticktext)
    assert legend == [NO_LABEL]  # nothing labelled yet

    chosen = _cluster(2, 5)
    library_trace = view.figure.data[0]
    library_trace._dispatch_on_selection(
        Points(point_inds=chosen, xs=[0.0] * 5, ys=[0.0] * 5, trace_name="library",
               trace_index=0), None)
    assert list(labelling.chosen) == chosen
    labelling.label_chosen("drone")
    marker = view.figure.data[0].marker
    assert list(marker.colorbar.ticktext) == ["drone", NO_LABEL]
    codes = np.asarray(marker.color)
    assert set(codes[chosen]) == {1}  # "drone" is the top band
    opacity = np.asarray(marker.opacity)
    faded = np.asarray(labelling.suggestions.index)
    assert len(faded) and (opacity[faded] < opacity[chosen[0]]).all()
    assert (codes[faded] == 1).all()  # suggested "drone": its colour, faded
    unlabelled = np.setdiff1d(np.arange(len(library)), np.concatenate([faded, chosen]))
    assert (codes[unlabelled] == 0).all()  # neither: "(none)"
    hovers = view.figure.data[0].customdata
    assert "drone" in hovers[chosen[0]][2] and hovers[1][2] == ""

    library_trace._dispatch_on_deselect(
        Points(point_inds=[], xs=[], ys=[], trace_name="library", trace_index=0))
    assert not len(labelling.chosen)


def test_the_panel_labels_accepts_and_filters(state, library):
    from soundslike_nb.app.labels_panel import LabelsPanel

    labelling = Labelling(library)
    panel = LabelsPanel(state, labelling, None)
    assert panel.apply.disabled and "none chosen" in panel.chosen.value
    assert panel.accept.disabled and panel.drag.disabled  # no map: nothing to drag on
    labelling.choose(_cluster(0, 6))
    assert not panel.apply.disabled and "<b>6</b> sounds chosen" in panel.chosen.value
    panel.label.value = "impacts"
    panel.apply.click()
    assert labelling.labels.to_dict() == {"impacts": 6}
    assert list(panel.label.options) == ["impacts"] and panel.filter.allowed_tags == ["impacts"]
    confident = len(labelling.confident())
    assert panel.accept.description == f"accept {confident} suggestions" or confident == 1
    panel.confidence.value = 0.0
    assert panel.accept.description == f"accept {len(labelling.suggestions)} suggestions"
    panel.accept.click()
    assert labelling.labels["impacts"] > 6 and not len(labelling.suggestions)

    state.set_query_row(1)
    panel.filter.value = ["impacts"]
    assert state.label_filter == ("impacts",)
    carrying = set(np.flatnonzero(library.carrying("impacts")))
    assert len(state.results) and set(state.results["position"]) <= carrying

    panel.label.value = "bad\tlabel"
    panel.apply.click()
    assert "control" in panel.message.value
