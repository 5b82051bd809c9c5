"""Regions in the app, without a browser: a span of the query selected and searched with, results
that are regions (played and downloaded as cuts, marked on their thumbnails), and the selected
file's regions on the map."""

from __future__ import annotations

import io
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from soundslike_nb.app.query_region import Clip, outline, sound_of
from soundslike_nb.app.state import AppState
from soundslike_nb.app.uploads import UploadFolder
from soundslike_nb.errors import ParameterError
from soundslike_nb.libfile import ROW_COLUMNS, LibraryTable
from soundslike_nb.library import Library
from soundslike_nb.projection import LibraryMap
from soundslike_nb.regions import Regions

from .test_app_state import DIMENSION, RATE, CountingEmbedder

LONG_S = 12.0
#: The long file's regions: (start, end) seconds, and which cluster each sounds like.
REGION_SPANS = [(2.0, 3.0), (6.0, 7.5), (9.0, 9.6)]
REGION_CLUSTERS = [1, 2, 1]


def _write(path, seconds: float, *, seed: int, channels: int = 1, subtype: str = "PCM_16"):
    rng = np.random.default_rng(seed)
    frames = int(seconds * RATE)
    data = 0.05 * rng.standard_normal((frames, channels))
    data[int(2.0 * RATE):int(3.0 * RATE)] += 0.8  # a loud stretch: a visible outline
    sf.write(path, np.clip(data, -1, 1), RATE, subtype=subtype)
    return str(path)


@pytest.fixture
def library(tmp_path) -> Library:
    """30 sounds in 3 seeded clusters; sound 0 is a 12 s stereo 24-bit take with three
    regions, two like cluster 1 and one like cluster 2."""
    rng = np.random.default_rng(11)
    count = 30
    centres = rng.standard_normal((3, DIMENSION))
    embeddings = centres[np.arange(count) % 3] + 0.2 * rng.standard_normal((count, DIMENSION))
    folder = tmp_path / "sfx"
    folder.mkdir()
    paths = [_write(folder / "take.wav", LONG_S, seed=0, channels=2, subtype="PCM_24")]
    paths += [_write(folder / f"hit{index}.wav", 0.5, seed=index) for index in range(1, count)]
    durations_s = np.array([LONG_S] + [0.5] * (count - 1))
    rows = pd.DataFrame({"name": ["take"] + [f"hit {index}" for index in range(1, count)],
                         "path": paths, "duration": durations_s, "sample_rate": RATE,
                         "channels": 1, "frames": (durations_s * RATE).astype(int), "size": 0,
                         "mtime": 0.0}).astype(ROW_COLUMNS)
    region_vectors = (centres[REGION_CLUSTERS]
                      + 0.05 * rng.standard_normal((len(REGION_SPANS), DIMENSION)))
    regions = Regions(np.zeros(len(REGION_SPANS), np.int64), np.array(REGION_SPANS),
                      region_vectors.astype(np.float32), None)
    thumbnails = np.full((count, 64), 100, np.uint8)
    table = LibraryTable(rows=rows, embeddings=embeddings.astype(np.float32),
                         provenance={"embedder": CountingEmbedder().provenance},
                         thumbnails=thumbnails, regions=regions)
    return Library(table, embedder=CountingEmbedder())


@pytest.fixture
def atlas(library) -> LibraryMap:
    return LibraryMap(method="pca").fit(library.embeddings)


@pytest.fixture
def state(library, atlas, tmp_path) -> AppState:
    return AppState(library, atlas=atlas, relative_duration=None,
                    uploads=UploadFolder(tmp_path / "uploads"))


def test_a_selected_span_of_a_library_sound_searches_with_its_stored_region(state, library):
    embedder = library.embedder
    state.set_query_row(0)
    assert state.query.region is None and state.span is None
    assert 0 not in set(state.results["position"]), "the whole take leaves itself out"

    changes = []
    state.observe(changes.append)
    state.set_span((2.0, 3.0))
    assert state.span == (2.0, 3.0) and changes[-1] == frozenset({"span"})
    assert state.search_span() is True
    assert state.query.region == (2.0, 3.0) and state.query.duration == pytest.approx(1.0)
    assert state.query.length == LONG_S and state.query.position == 0
    assert embedder.calls == 0, "a stored region is reused, nothing analysed"
    np.testing.assert_array_equal(state.query.features.embedding,
                                  library.region_features(0).embedding)
    # Like region 0 (cluster 1): the take's other cluster-1 region (9.0-9.6 s) is found, the
    # searched region itself is not; the rest are cluster-1 sounds.
    found = state.results
    take = found[found["position"] == 0]
    assert list(zip(take["start"], take["end"])) == [(9.0, 9.6)]
    others = found[found["position"] != 0]["position"]
    assert (others % 3 == 1).all()
    expected = library.hits(library.region_features(0), k=10, exclude=0,
                            exclude_span=(2.0, 3.0)).to_frame()
    assert list(found["path"]) == list(expected["path"])
    assert state.query.point is not None, "the region is placed on the map by its features"

    state.search_whole()
    assert state.query.region is None and state.query.duration == LONG_S
    assert state.span == (2.0, 3.0), "the selection stays on the same sound"
    assert 0 not in set(state.results["position"])


def test_a_span_of_an_upload_is_analysed_and_bad_spans_are_refused(state, library, tmp_path):
    embedder = library.embedder
    path = tmp_path / "upload source.wav"
    _write(path, 6.0, seed=3)
    assert state.set_query_upload("long query.wav", path.read_bytes()) is True
    calls = embedder.calls
    for bad, message in [((4.0, 3.0), "must start before it ends, got start 4 s and end 3"),
                         ((5.0, 7.0), r"the region 5-7 s ends after the sound \(6\.000 s"),
                         ((-1.0, 1.0), "cannot start before 0 s, got -1 s"),
                         (("a", 1), "a region is"),
                         ((1.0, 1.01), "10 ms long; the model needs at least 50 ms")]:
        with pytest.raises(ParameterError, match=message):
            state.set_span(bad)
        assert state.span is None
    state.set_span((1.0, 2.5))
    assert state.search_span() is True
    assert embedder.calls == calls + 1, "an upload's span is analysed"
    assert state.query.region == (1.0, 2.5) and state.query.duration == pytest.approx(1.5)
    assert state.query.source == "upload" and len(state.results) == 10
    os.remove(state.query.path)  # the saved upload is gone: said, and the query kept
    state.set_span((2.0, 3.0))
    assert state.search_span() is False
    assert "no such file" in state.error and state.query.region == (1.0, 2.5)
    assert not state.busy
    state.search_whole()
    assert state.query.region is None and state.query.duration == pytest.approx(6.0)
    state.set_query_row(3)
    assert state.span is None, "a new sound has no selection"
    with pytest.raises(ParameterError, match="select a region"):
        state.search_span()


def test_result_regions_play_and_move_as_clips(state, library, atlas):
    state.per_file = 3
    state.set_query_row(1)  # cluster 1: the take's two cluster-1 regions are near it
    found = state.results
    regions = found[found["start"].notna()]
    assert len(regions) == 2 and set(regions["position"]) == {0}
    assert (regions["duration"] == regions["end"] - regions["start"]).all()
    index = int(regions.index[0])
    sound = state.sound_at(index)
    assert sound in {Clip(0, 2.0, 3.0), Clip(0, 9.0, 9.6)}, "the take's cluster-1 regions"
    state.set_current(index)
    state.play_current()
    assert state.playing == sound and state.playing_point() == tuple(atlas.coordinates[0])
    state.move_current(1)  # playing follows the cursor, to whatever the next row holds
    assert state.playing == state.sound_at(index + 1)
    state.set_current(index)
    state.query_current()  # Enter on a region searches with that region
    assert state.query.position == 0 and state.query.region == (sound.start, sound.end)
    assert sound_of(4, float("nan"), float("nan")) == 4


def test_result_rows_mark_play_and_download_the_region(library, atlas, tmp_path):
    from soundslike_nb.app.cut_media import CutPlayer
    from soundslike_nb.app.widgets import App

    app = App(library, atlas=atlas, relative_duration=None,
              upload_folder=str(tmp_path / "uploads"))
    app.state.per_file = 3
    app.state.set_query_row(1)
    rows = app.results.children[1:]
    found = app.state.results
    region_row = int(np.flatnonzero(found["start"].notna())[0])
    whole_row = int(np.flatnonzero(found["start"].isna())[0])
    start, end = found["start"].iloc[region_row], found["end"].iloc[region_row]

    cells = rows[region_row].children[0].value
    assert "soundslike-region-mark" in cells, "the thumbnail marks the region"
    assert f"{start:.2f} s" in cells
    mark = re_float(cells, "x") / 64, (re_float(cells, "x") + re_float(cells, "width")) / 64
    assert mark == pytest.approx((start / LONG_S, end / LONG_S), abs=0.02)
    assert "soundslike-region-mark" not in rows[whole_row].children[0].value

    player = rows[region_row].children[1]
    assert type(player).__name__ == CutPlayer.__name__
    assert (player.start, player.end) == (start, end)
    assert type(rows[whole_row].children[1]).__name__ == "LazyPlayer"
    source = player.source()  # what the browser gets when it is played: the region only
    with sf.SoundFile(io.BytesIO(source.data)) as cut:
        assert source.format == "wav"
        assert (cut.samplerate, cut.channels, cut.subtype) == (RATE, 2, "PCM_24")
        assert cut.frames == round((end - start) * RATE)

    downloads = rows[region_row].children[2]
    assert downloads.region_name == f"take_{start:.2f}-{end:.2f}.wav"
    assert downloads.file_name == "take.wav" and not downloads.file_unavailable
    sent = []
    downloads.send = lambda content, buffers=None: sent.append((content, buffers))
    for part in ("region", "file", "nothing"):
        downloads._handle_message(downloads, {"event": "download", "part": part}, [])
    assert [content["filename"] for content, _data in sent] == [downloads.region_name,
                                                                 "take.wav"]
    assert sf.info(io.BytesIO(sent[0][1][0])).frames == round((end - start) * RATE)
    assert sent[1][1][0] == Path(library.rows["path"].iloc[0]).read_bytes()
    assert rows[whole_row].children[2].label == "download", "whole files are unchanged"

    rows[region_row].children[-1].click()  # more like this: with the region
    assert app.state.query.region == (start, end)
    assert app.region_selector.box.layout.display != "none"
    waveform = app.region_selector.waveform
    assert waveform.span == waveform.searched == [start, end]

    errors = []  # a take gone from the disk: the download says so, and saves nothing
    downloads.on_error = errors.append
    os.remove(library.rows["path"].iloc[0])
    downloads._handle_message(downloads, {"event": "download", "part": "region"}, [])
    assert len(sent) == 2 and "no such file" in errors[0]


def test_the_waveform_selects_and_searches_a_region(library, atlas, tmp_path):
    from soundslike_nb.app.widgets import App

    app = App(library, atlas=atlas, relative_duration=None,
              upload_folder=str(tmp_path / "uploads"))
    selector = app.region_selector
    assert selector.box.layout.display == "none", "no query, no waveform"
    app.state.set_query_row(0)
    waveform = selector.waveform
    assert selector.box.layout.display == "" and len(waveform.peaks) == 1200
    assert waveform.length == pytest.approx(LONG_S) and max(waveform.peaks) == 1.0
    assert selector.search.disabled and selector.whole.disabled

    # A drag across the waveform (the browser sets its span) selects that stretch.
    waveform.span = [1.9012, 3.0987]
    assert app.state.span == (1.9, 3.1), "to the hundredth of a second"
    assert (selector.start.value, selector.end.value) == ("1.90", "3.10")
    assert not selector.search.disabled
    assert selector.player_slot.children[0].filename == "take_1.90-3.10.wav"
    selector.end.value = "3.0"  # typed seconds move it
    assert app.state.span == (1.9, 3.0)
    selector.start.value = "soon"
    assert "seconds" in app.state.error and selector.start.value == "1.90"
    waveform.span = [11.5, 14.0]  # past the end: refused, and the band springs back
    assert "ends after the sound" in app.state.error and waveform.span == [1.9, 3.0]
    selector.search.click()
    assert app.state.query.region == (1.9, 3.0) and selector.search.disabled
    assert waveform.searched == [1.9, 3.0]
    assert "1.90&ndash;3.00 s" in selector.note.value
    assert "1.90&ndash;3.00 s" in app.query_panel.children[0].value
    selector.whole.click()
    assert app.state.query.region is None


def test_the_map_shows_the_selected_files_regions(library, atlas, tmp_path):
    from soundslike_nb.app.widgets import App

    app = App(library, atlas=atlas, relative_duration=None,
              upload_folder=str(tmp_path / "uploads"))
    figure = app.map_view.figure
    assert len(figure.data) == 6 and figure.data[5].name == "regions"
    assert not len(figure.data[5].x)
    app.state.select(0)
    expected = [library.map_point(library.region_features(index), atlas)
                for index in range(len(REGION_SPANS))]
    np.testing.assert_allclose(list(zip(figure.data[5].x, figure.data[5].y)), expected)
    assert "6.00&ndash;7.50 s" in figure.data[5].hovertext[1]

    # A click on a region's point selects that region: heard, downloadable, searchable.
    app.map_view._clicked_region(None, SimpleNamespace(point_inds=[1]), None)
    assert app.state.selection == 0 and app.state.selected_region == (6.0, 7.5)
    assert (figure.data[2].x[0], figure.data[2].y[0]) == pytest.approx(expected[1])
    label, (player, use, download) = (app.selected_panel.children[0],
                                      app.selected_panel.children[1].children)
    assert "from 6.00 to 7.50 s" in label.value
    assert (player.start, player.end, player.autoplay) == (6.0, 7.5, True)
    assert download.region_name == "take_6.00-7.50.wav"
    use.click()
    assert app.state.query.position == 0 and app.state.query.region == (6.0, 7.5)
    app.state.select(0)  # the file itself again: no region
    assert app.state.selected_region is None
    assert (figure.data[2].x[0], figure.data[2].y[0]) == pytest.approx(
        tuple(atlas.coordinates[0]))
    app.state.select(4)
    assert not len(figure.data[5].x), "a file without regions shows none"


def test_a_library_without_regions_has_no_regions_trace(tmp_path):
    from soundslike_nb.app.map_view import MapView

    rows = pd.DataFrame({"name": ["a", "b", "c"], "path": ["/a.wav", "/b.wav", "/c.wav"],
                         "duration": [1.0, 2.0, 3.0], "sample_rate": RATE, "channels": 1,
                         "frames": [RATE, 2 * RATE, 3 * RATE], "size": 0,
                         "mtime": 0.0}).astype(ROW_COLUMNS)
    embeddings = np.random.default_rng(0).standard_normal((3, DIMENSION)).astype(np.float32)
    library = Library(LibraryTable(rows=rows, embeddings=embeddings,
                                   provenance={"embedder": CountingEmbedder().provenance}),
                      embedder=CountingEmbedder())
    view = MapView(AppState(library, atlas=LibraryMap(method="pca").fit(embeddings)))
    assert [trace.name for trace in view.figure.data] == [
        "library", "results", "selected", "query", "playing"]


def test_outline_reads_long_files_block_by_block(tmp_path):
    path = _write(tmp_path / "long.wav", 20.0, seed=1, channels=2)
    times, peaks, length = outline(path, bins=200)
    assert length == pytest.approx(20.0) and len(times) == len(peaks) == 200
    assert peaks.max() == pytest.approx(1.0)
    loud = (times > 2.0) & (times < 3.0)
    assert peaks[loud].min() > 0.9 and peaks[~loud & (times > 3.2)].max() < 0.4


def re_float(text: str, attribute: str) -> float:
    """The value of ``attribute='...'`` in the region mark of a row's SVG."""
    import re

    mark = re.search(r"<rect class='soundslike-region-mark'[^>]*>", text).group(0)
    return float(re.search(rf"\b{attribute}='([-0-9.]+)'", mark).group(1))


def test_a_long_file_holding_a_region_of_a_permitted_length_stays_in_range(library, atlas,
                                                                           tmp_path):
    state = AppState(library, atlas=atlas, uploads=UploadFolder(tmp_path / "uploads"))
    state.set_query_row(1)  # 0.5 s: results last 0.125-2 s
    assert state.effective_duration == (0.125, 2.0)
    assert state.in_range()[0], "the 12 s take holds regions of 0.6 to 1.5 s"
    state.relative_duration = None
    state.duration = (1.2, 5.0)  # only its 1.5 s region
    assert state.in_range()[0] and not state.in_range()[1:].any()
    state.duration = (1.6, 5.0)  # none of them, nor the take itself
    assert not state.in_range().any()


def test_per_file_lets_one_take_give_several_results(library, atlas, tmp_path):
    from soundslike_nb.app.widgets import App

    app = App(library, atlas=atlas, relative_duration=None,
              upload_folder=str(tmp_path / "uploads"))
    shown = [child for box in app.widget.children for child in getattr(box, "children", ())]
    assert app.per_file in shown, "a library with regions offers 'per file'"
    with_regions = int(app.results_view.box.layout.width.removesuffix("px"))
    assert with_regions <= 760, "the table fits beside the map (tests/test_browser_regions.py)"
    app.state.set_query_row(1)  # like cluster 1: the take's two cluster-1 regions
    assert (app.state.results["position"] == 0).sum() == 1, "one result per file by default"
    app.per_file.value = 3
    assert app.state.per_file == 3
    assert (app.state.results["position"] == 0).sum() == 2
    with pytest.raises(ParameterError, match="per_file must be an integer >= 1"):
        app.state.per_file = 0
    app.state.per_file = None
    assert (app.state.results["position"] == 0).sum() == 2

    plain = Library(LibraryTable(rows=library.rows.iloc[1:].reset_index(drop=True),
                                 embeddings=library.embeddings[1:],
                                 provenance=library.provenance),
                    embedder=CountingEmbedder())
    app = App(plain, show_map=False, upload_folder=str(tmp_path / "plain"))
    shown = [child for box in app.widget.children for child in getattr(box, "children", ())]
    assert app.per_file not in shown
    # No "at" column, one download: narrower.
    assert int(app.results_view.box.layout.width.removesuffix("px")) < with_regions
