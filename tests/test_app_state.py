"""The app's state, driven without a browser; and its widgets, built headless (no frontend)."""

from __future__ import annotations

import io
import os
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from soundslike_nb.app.formatting import DurationScale, format_duration
from soundslike_nb.app.state import AppState
from soundslike_nb.app.uploads import UploadFolder, check_upload, safe_filename
from soundslike_nb.errors import AudioError, ParameterError
from soundslike_nb.libfile import ROW_COLUMNS, LibraryTable
from soundslike_nb.library import Library
from soundslike_nb.projection import LibraryMap

DIMENSION = 16
RATE = 16000


class CountingEmbedder:
    """A tiny deterministic model: a vector from a waveform's length and loudness; counts calls."""

    id = "test-counting"
    sample_rate = RATE
    dimension = DIMENSION

    def __init__(self) -> None:
        self.calls = 0

    @property
    def provenance(self) -> dict:
        return {"id": self.id, "dimension": DIMENSION, "weights_sha256": "0" * 64,
                "sample_rate": RATE}

    def embed(self, waveforms):
        self.calls += 1
        rows = []
        for waveform in waveforms:
            rng = np.random.default_rng(len(waveform) % 1000)
            rows.append(rng.standard_normal(DIMENSION) * (1 + float(np.abs(waveform).mean())))
        return np.asarray(rows, dtype=np.float32)


def _wav_bytes(seconds: float, *, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    sf.write(out, (0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32), RATE,
             format="WAV")
    return out.getvalue()


@pytest.fixture
def library(tmp_path) -> Library:
    """60 sounds in 3 seeded clusters, 0.05 s to 10 min long; one with HTML in its name."""
    return _library(tmp_path, CountingEmbedder())


def _library(tmp_path, embedder) -> Library:
    rng = np.random.default_rng(7)
    count = 60
    centres = rng.standard_normal((3, DIMENSION))
    embeddings = (centres[np.arange(count) % 3] + 0.2 * rng.standard_normal((count, DIMENSION)))
    durations_s = np.geomspace(0.05, 600.0, count)
    names = [f"sound {index}" for index in range(count)]
    names[5] = "<script>alert('x')</script> & co"
    paths = []
    for index in range(count):
        path = tmp_path / "sfx" / f"sound{index}.wav"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(_wav_bytes(0.05, seed=index))
        paths.append(str(path))
    rows = pd.DataFrame({"name": names, "path": paths, "duration": durations_s,
                         "sample_rate": RATE, "channels": 1,
                         "frames": (durations_s * RATE).astype(int), "size": 0, "mtime": 0.0})
    rows = rows.astype(ROW_COLUMNS)
    table = LibraryTable(rows=rows, embeddings=embeddings.astype(np.float32),
                         provenance={"embedder": embedder.provenance})
    return Library(table, embedder=embedder)


@pytest.fixture
def atlas(library) -> LibraryMap:
    # A PCA map keeps these tests fast (no UMAP compilation); test_projection covers UMAP.
    return LibraryMap(method="pca").fit(library.embeddings)


@pytest.fixture
def state(library, atlas, tmp_path) -> AppState:
    # Any length, so that results compare with library.search's; the similar-length window
    # (on by default) has tests of its own below.
    return AppState(library, atlas=atlas, relative_duration=None,
                    uploads=UploadFolder(tmp_path / "uploads"))


def test_query_k_range_and_selection_drive_results_and_highlights(state, library, atlas):
    changes = []
    state.observe(changes.append)

    state.set_query_row(3)
    assert state.query.source == "library" and state.query.position == 3
    assert state.query.point == tuple(atlas.coordinates[3])
    assert list(state.results["rank"]) == list(range(1, 11))
    assert 3 not in set(state.results["position"]), "a library query is left out of its results"
    assert state.results["similarity"].is_monotonic_decreasing
    expected = library.similar_to(3, k=10)
    assert list(state.results["path"]) == list(expected["path"])
    assert {"query", "results"} <= changes[-1]

    state.k = 4
    assert len(state.results) == 4 and "k" in changes[-1]
    marks = state.highlights()
    assert list(marks["rank"]) == [1, 2, 3, 4]
    positions = marks["position"].to_numpy()
    np.testing.assert_allclose(marks[["x", "y"]].to_numpy(), atlas.coordinates[positions])

    state.duration = (1.0, 60.0)
    durations_s = state.results["duration"]
    assert len(state.results) == 4 and durations_s.between(1.0, 60.0).all()
    assert state.in_range().sum() == library.rows["duration"].between(1.0, 60.0).sum()
    assert set(state.highlights()["position"]) == set(state.results["position"])

    state.duration = (None, 0.1)  # open at the short end
    assert (state.results["duration"] <= 0.1).all() and len(state.results) >= 1

    state.select(42)
    assert state.selection == 42 and changes[-1] == frozenset({"selection"})
    count = len(changes)
    state.select(42)  # a second click on the same point plays it again
    assert len(changes) == count + 1
    state.query_selection()
    assert state.query.position == 42 and 42 not in set(state.results["position"])
    assert state.query.point == tuple(atlas.coordinates[42])


def test_changing_k_or_range_does_not_embed_the_query_again(state, library):
    embedder = library.embedder
    assert state.set_query_upload("my query.wav", _wav_bytes(0.5)) is True
    assert embedder.calls == 1 and state.query.source == "upload"
    assert state.query.point is not None and len(state.results) == 10
    state.k = 25
    state.duration = (0.1, 100.0)
    state.k = 2
    assert embedder.calls == 1
    assert len(state.results) == 2


def test_bad_uploads_show_a_message_and_keep_the_previous_query(state, tmp_path):
    state.set_query_row(1)
    before = state.results.copy()
    for name, content, expected in [
        ("notes.txt", b"these are not sounds", "'notes.txt': not a readable audio file"),
        ("empty.wav", b"", "'empty.wav': empty file (0 bytes)"),
        ("broken.wav", b"RIFF\x10\x00\x00\x00WAVEfmt junk", "'broken.wav'"),
    ]:
        assert state.set_query_upload(name, content) is False
        assert state.error.startswith(expected), state.error
        assert state.query.position == 1
        pd.testing.assert_frame_equal(state.results, before)
    small = AppState(state.library, uploads=UploadFolder(tmp_path / "small", max_bytes=100))
    assert small.set_query_upload("big.wav", _wav_bytes(1.0)) is False
    assert "over the upload limit" in small.error and "'big.wav'" in small.error
    state.k = 3
    assert state.error == "", "a successful search clears the message"


def test_upload_names_never_write_outside_the_upload_folder(tmp_path):
    folder = UploadFolder(tmp_path / "uploads")
    outside = tmp_path / "evil.wav"
    for name in ["../evil.wav", "../../evil.wav", str(outside), "..\\..\\evil.wav",
                 "sub/../../evil.wav", "..", ".", "", "\x00", ".bashrc", "a" * 500 + ".wav"]:
        saved = folder.save(name, b"RIFF")
        assert os.path.dirname(saved) == folder.folder, (name, saved)
        assert os.path.basename(saved) and not os.path.basename(saved).startswith(".")
        assert len(os.path.basename(saved)) <= 170
    assert not outside.exists()
    # A planted symbolic link is never followed or replaced.
    (tmp_path / "uploads" / "link.wav").symlink_to(outside)
    saved = folder.save("link.wav", b"RIFF")
    assert saved.endswith("link (2).wav") and not outside.exists()


def test_safe_filename_and_check_upload():
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\sfx\\door 1.wav") == "door 1.wav"
    assert safe_filename("..") == "upload"
    assert safe_filename("kick\x00\x1b.wav") == "kick.wav"
    assert check_upload("x.wav", b"1234", max_bytes=4) == "x.wav"
    with pytest.raises(AudioError, match="over the upload limit"):
        check_upload("x.wav", b"12345", max_bytes=4)


def test_controls_refuse_bad_values(state):
    for bad_k in (0, 101, 2.5, True):
        with pytest.raises(ParameterError, match="k must be"):
            state.k = bad_k
    with pytest.raises(ParameterError, match="above its maximum"):
        state.duration = (2.0, 1.0)
    with pytest.raises(ParameterError, match="not a row"):
        state.select(10_000)
    with pytest.raises(ParameterError, match="nothing is selected"):
        state.query_selection()


def test_duration_scale_is_logarithmic_and_open_at_both_ends():
    scale = DurationScale.of([0.05, 1.0, 600.0])
    assert scale.low < np.log10(0.05) and scale.high > np.log10(600.0)
    # The click and the ambience are both reachable, each end meaning "no limit".
    assert scale.to_range((scale.low, scale.high)) == (None, None)
    assert scale.to_range((scale.position(0.05), scale.position(600.0))) == (0.05, 600.0)
    # Half the slider is the geometric middle, not 300 s.
    middle = scale.seconds((scale.low + scale.high) / 2)
    assert 4.0 < middle < 7.0
    assert scale.to_positions((None, 10.0)) == (scale.low, scale.position(10.0))
    single = DurationScale.of([2.0, 2.0])
    assert single.high > single.low


def test_format_duration():
    assert [format_duration(s) for s in (0.05, 0.5, 1.6, 42, 95, 600, 3900, None)] == [
        "0.05 s", "0.5 s", "1.6 s", "42 s", "1 min 35 s", "10 min", "1 h 05 min", "any"]


def test_widgets_escape_names_and_show_errors_not_tracebacks(library, atlas, tmp_path):
    from soundslike_nb.app.widgets import App

    app = App(library, atlas=atlas, relative_duration=None,
              upload_folder=str(tmp_path / "uploads"))
    app.state.set_query_row(5)  # the sound with HTML in its name
    assert "&lt;script&gt;" in app.query_panel.children[0].value
    assert "<script>" not in app.query_panel.children[0].value
    app.state.set_query_row(2)
    app.state.k = 100
    cells = [cell.value for row in app.results.children for cell in row.children
             if hasattr(cell, "value") and isinstance(cell.value, str)]
    assert any("&lt;script&gt;" in value for value in cells)
    assert not any("<script>" in value for value in cells)
    hover = app.map_view.figure.data[0].hovertext
    assert "<script>" not in "".join(hover) and "&lt;script&gt;" in hover[5]

    rows = app.results.children[1:]
    assert len(rows) == 59 and all(row.children[1].__class__.__name__ == "LazyPlayer"
                                   for row in rows)
    # drawing rows sends no audio: a player's bytes travel only when it is played
    assert not any(isinstance(value, (bytes, memoryview))
                   for row in rows for value in row.children[1].get_state().values())
    app.upload.receive("garbage.wav", b"RIFF\x00\x00\x00\x00WAVEnothing")
    assert "garbage.wav" in app.error.value and "Traceback" not in app.error.value
    app.upload.max_bytes = 10
    app.upload.receive("huge.wav", b"x" * 11)
    assert "over the upload limit" in app.error.value
    app.k_slider.value = 7
    assert len(app.results.children) == 1 + 7 and app.error.value == ""

    app.state.select(8)
    assert "Selected" in app.selected_panel.children[0].value
    assert list(app.map_view.figure.data[2].x) == [float(atlas.coordinates[8, 0])]
    app.map_view._clicked_library(None, type("Points", (), {"point_inds": [9]})(), None)
    assert app.state.selection == 9
    app.range_slider.value = (app.scale.position(1.0), app.scale.high)
    assert app.state.duration == (1.0, None)
    assert (app.state.results["duration"] >= 1.0).all()


def test_players_inline_small_files_and_preview_the_rest(tmp_path):
    from soundslike_nb.app.media import DownloadButton, player_source

    wav = tmp_path / "door 1.wav"
    wav.write_bytes(_wav_bytes(1.0))
    source = player_source(str(wav))
    assert source.format == "wav" and source.data == wav.read_bytes() and not source.note
    large = player_source(str(wav), max_inline_bytes=100)
    assert large.format == "ogg" and large.data[:4] == b"OggS" and "large file" in large.note
    aiff = tmp_path / "hit.aiff"
    sf.write(aiff, np.zeros(RATE // 2, np.float32), RATE, format="AIFF")
    assert player_source(str(aiff)).note == "converted for the browser"
    with pytest.raises(AudioError, match="not a readable audio file"):
        player_source(str(tmp_path / "x.aiff"), data=b"junk")

    download = DownloadButton(str(wav))
    assert download.filename == "door 1.wav" and not download.unavailable
    sent = []
    download.send = lambda content, buffers=None: sent.append((content, buffers))
    download._handle_message(download, {"event": "download"}, [])
    assert sent[0][0]["filename"] == "door 1.wav" and sent[0][1] == [wav.read_bytes()]
    too_big = DownloadButton(str(wav), max_bytes=10)
    assert too_big.unavailable and str(wav) in too_big.hint


def test_any_error_of_ours_is_a_message_not_a_traceback(state, library, monkeypatch):
    from soundslike_nb.errors import LibraryError

    state.set_query_row(0)
    assert not state.error

    def broken(*args, **kwargs):
        raise LibraryError("'/lib.parquet': cannot read the library (disk gone)")

    monkeypatch.setattr(library, "hits", broken)
    state.k = 5
    assert "disk gone" in state.error


def test_results_keep_their_rows(state, library, monkeypatch):
    monkeypatch.setattr(library, "position_of",
                        lambda path: pytest.fail("rows are carried, not looked up by path"))
    state.set_query_row(4)
    hits = library.hits(library.row_features(4), k=state.k, exclude=4)
    assert list(state.results["position"]) == list(hits.positions)
    assert list(state.results["path"]) == list(library.rows["path"].iloc[hits.positions])
    assert 4 not in set(state.results["position"])


def test_a_model_that_cannot_load_is_said_at_once(library, tmp_path):
    from soundslike_nb.app.widgets import App

    foreign = LibraryTable(library.rows, library.embeddings,
                           provenance={"embedder": {"id": "pyannote/embedding",
                                                    "dimension": DIMENSION}})
    app = App(Library(foreign), show_map=False, upload_folder=str(tmp_path / "up"))
    assert "uploads are off" in app.state.error and "name it" in app.state.error
    assert app.upload.disabled
    app.upload.receive("x.wav", _wav_bytes(0.1))  # a disabled upload takes nothing
    assert app.state.query is None
    app.state.set_query_row(2)  # library sounds still search: their features are stored
    assert len(app.state.results) == app.state.k


def test_the_map_and_the_search_share_one_space(demo_library_file, tmp_path):
    import shutil

    import soundslike_nb as sl

    out = tmp_path / "demo.parquet"
    shutil.copy(demo_library_file, out)
    lib = sl.load_library(out)
    atlas = lib.map(progress=False)
    rows = lib.searcher.map_rows()
    assert rows.shape[1] > lib.embeddings.shape[1]  # the fused aspect rows, not the raw CNN
    np.testing.assert_allclose(atlas.transform(rows[:4]), atlas.coordinates[:4], atol=1e-5)
    features = lib.features_of((lib.rows["path"][7]), name="x")
    with open(lib.rows["path"][7], "rb") as sound:
        upload = lib.features_of(sound.read(), name="x.wav")
    np.testing.assert_allclose(lib.map_point(upload, atlas), atlas.coordinates[7], atol=0.05)
    assert lib.map_point(features, atlas) == tuple(map(float, atlas.coordinates[7]))


# -- "The notebook on a real library" ----------------------------------------------------------


def test_the_name_list_never_keeps_a_former_query(library, atlas, tmp_path):
    from soundslike_nb.app.widgets import App

    app = App(library, atlas=atlas, upload_folder=str(tmp_path / "uploads"))
    app.pick.value = 3
    assert app.state.query.position == 3
    app.upload.receive("other.wav", _wav_bytes(0.5))
    assert app.state.query.source == "upload"
    assert app.pick.value is None, "the list must not show the former query"
    app.pick.value = 3  # picking the same name again searches with it again
    assert app.state.query.source == "library" and app.state.query.position == 3

    more_like_this = app.results.children[1].children[-1]
    more_like_this.click()
    assert app.state.query.position != 3 and app.pick.value == app.state.query.position
    app.find.value = "sound 1"  # a list without the query: it shows nothing
    app.pick.value = 12
    app.state.set_query_row(40)
    assert app.pick.value is None
    app.pick.value = 12
    assert app.state.query.position == 12


def test_keys_pressed_in_the_app_do_not_reach_the_notebook(library, atlas, tmp_path):
    from soundslike_nb.app.keys import KeyGuard
    from soundslike_nb.app.widgets import App

    app = App(library, atlas=atlas, upload_folder=str(tmp_path / "uploads"))
    guards = [child for child in app.widget.children if isinstance(child, KeyGuard)]
    assert len(guards) == 1
    # It acts on the element around it with that class: the app's root.
    assert guards[0].root_class in app.widget._dom_classes
    script = KeyGuard._esm
    assert 'addEventListener("keydown"' in script and "stopPropagation" in script
    assert "data-lm-suppress-shortcuts" in script


def test_results_last_about_as_long_as_the_query(library, atlas, tmp_path):
    import dataclasses

    state = AppState(library, atlas=atlas, uploads=UploadFolder(tmp_path / "uploads"))
    assert state.relative_duration == 4.0, "on by default"
    durations_s = library.rows["duration"].to_numpy()
    changes = []
    state.observe(changes.append)

    state.set_query_row(30)  # about 2.4 s in a library of 0.05 s to 10 min
    length = durations_s[30]
    assert state.query.duration == pytest.approx(length)
    assert state.duration_window == pytest.approx((length / 4, length * 4))
    assert len(state.results) == 10
    assert state.results["duration"].between(length / 4, length * 4).all()
    assert "duration" in changes[-1], "the map re-greys when the window moves"
    window = (durations_s >= length / 4) & (durations_s <= length * 4)
    np.testing.assert_array_equal(state.in_range(), window)

    state.duration = (length, None)  # within the slider's range too
    assert state.effective_duration == pytest.approx((length, length * 4))
    assert state.results["duration"].between(length, length * 4).all()
    np.testing.assert_array_equal(state.in_range(), window & (durations_s >= length))

    state.relative_duration = None  # lifted: the slider alone
    assert "duration" in changes[-1] and state.duration_window is None
    assert (state.results["duration"] > length * 4).any()
    np.testing.assert_array_equal(state.in_range(), durations_s >= length)
    state.relative_duration = 4
    state.duration = (2 * length, None)  # the two ranges still meet
    assert state.results["duration"].between(2 * length, 4 * length).all()
    state.duration = (100.0, None)  # they do not meet: no results, no error
    assert state.results.empty and not state.error and not state.in_range().any()
    state.duration = None

    assert state.set_query_upload("half a second.wav", _wav_bytes(0.5))
    assert state.query.duration == pytest.approx(0.5)
    assert state.results["duration"].between(0.125, 2.0).all() and len(state.results) == 10

    # A query whose length is unknown searches any length.
    state.query = dataclasses.replace(state.query, duration=None)
    state.k = 40
    assert state.duration_window is None and state.in_range().all()
    assert (state.results["duration"] > 2.0).any()

    for bad in (0.5, 0, -4, True, float("inf"), "4"):
        with pytest.raises(ParameterError, match="relative_duration"):
            state.relative_duration = bad


def test_similar_length_is_one_click_in_the_app(library, atlas, tmp_path):
    from soundslike_nb.app.widgets import App

    app = App(library, atlas=atlas, upload_folder=str(tmp_path / "uploads"))
    state = app.state
    assert app.similar_length.value is True and "÷4" in app.similar_length.description
    app.upload.receive("one second.wav", _wav_bytes(1.0))
    assert app.window_label.value == "0.25 s \N{EN DASH} 4 s"
    assert state.results["duration"].between(0.25, 4.0).all()
    opacity = np.asarray(app.map_view.figure.data[0].marker.opacity)
    np.testing.assert_array_equal(opacity > 0.5, state.in_range())
    assert not state.in_range().all()

    app.similar_length.value = False
    assert state.relative_duration is None and app.window_label.value == ""
    assert np.all(np.asarray(app.map_view.figure.data[0].marker.opacity) > 0.5)
    state.k = 30
    assert (state.results["duration"] > 4.0).any()
    app.similar_length.value = True
    assert state.relative_duration == 4.0
    assert state.results["duration"].between(0.25, 4.0).all()

    state.set_query_row(59)  # 10 min: nothing else lasts 2.5 min or more
    assert app.window_label.value == "2 min 30 s \N{EN DASH} 40 min"
    assert state.results["duration"].between(150, 2400).all()
    state.duration = (None, 60.0)
    assert state.results.empty and "untick" in app.status.value

    state.relative_duration = 2  # set from a script: the checkbox follows, and keeps it
    assert "÷2" in app.similar_length.description and app.similar_length.value
    app.similar_length.value = False
    app.similar_length.value = True
    assert state.relative_duration == 2.0


def test_similarity_is_shown_in_percent_with_its_scale_explained(library, atlas, tmp_path):
    from soundslike_nb.app.formatting import similarity_percent
    from soundslike_nb.app.widgets import App

    assert [similarity_percent(value) for value in (1.0, 0.873, 0.004, 0.0, -0.42)] == [
        100, 87, 0, 0, 0]
    app = App(library, atlas=atlas, relative_duration=None,
              upload_folder=str(tmp_path / "uploads"))
    app.state.set_query_row(2)
    app.state.k = 59
    results = app.state.results
    assert (results["similarity"] < 0).any(), "the fixture must show a negative cosine"
    header = app.results.children[0].children[0].value
    assert ">similarity<" in header and "100 % = the same sound" in header
    assert "0 % = unrelated or opposite" in header
    for row, similarity in zip(app.results.children[1:], results["similarity"]):
        cell = row.children[0].value
        assert f">{similarity_percent(similarity)} %<" in cell
        assert f"weighted cosine {similarity:.3f}" in cell  # the exact value, on hover
    assert results["similarity"].iloc[0] < 1  # the API's number is unchanged


def test_results_show_each_sounds_folder(library, tmp_path):
    from soundslike_nb.app.widgets import App

    rows = library.rows.copy()
    deep = tmp_path / "sfx" / "explosions" / "large and very far away indeed"
    deep.mkdir(parents=True)
    for position in range(0, len(rows), 2):
        moved = deep / os.path.basename(rows.loc[position, "path"])
        os.replace(rows.loc[position, "path"], moved)
        rows.loc[position, "path"] = str(moved)
    table = LibraryTable(rows=rows, embeddings=library.embeddings,
                         provenance={**library.provenance, "roots": [str(tmp_path / "sfx")]})
    nested = Library(table, embedder=library.embedder)
    app = App(nested, show_map=False, relative_duration=None,
              upload_folder=str(tmp_path / "uploads"))
    app.state.set_query_row(1)
    app.state.k = 20
    results = app.state.results
    assert list(results["folder"]) == list(nested.folders.iloc[results["position"]])
    assert set(results["folder"]) == {"", "explosions/large and very far away indeed"}
    assert ">folder<" in app.results.children[0].children[0].value
    for row, folder in zip(app.results.children[1:], results["folder"]):
        cell, download = row.children[0].value, row.children[2]
        if folder:
            assert f"title='folder {folder}'" in cell and f">{folder}<" in cell
            assert download.hint.endswith(f"from folder {folder}")
        else:
            assert ">(top)<" in cell and "the library's top folder" in download.hint


def test_an_upload_being_analysed_says_so_and_disables_controls(library, atlas, tmp_path,
                                                                 monkeypatch):
    from soundslike_nb.app.widgets import App

    app = App(library, atlas=atlas, upload_folder=str(tmp_path / "uploads"))
    seen, analyse = [], library.features_of

    def controls() -> dict:
        return {"upload": app.upload.disabled, "k": app.k_slider.disabled,
                "range": app.range_slider.disabled, "overall": app.weight_sliders["cnn"].disabled,
                "timbre": app.weight_sliders["timbre"].disabled}

    def watched(*args, **kwargs):
        seen.append((app.status.value, controls()))
        return analyse(*args, **kwargs)

    monkeypatch.setattr(library, "features_of", watched)
    idle = {"upload": False, "k": False, "range": False, "overall": False,
            "timbre": True}  # no descriptors in this library: timbre stays off
    assert controls() == idle
    app.upload.receive("long take.wav", _wav_bytes(0.5))
    status, during = seen[-1]
    assert "analysing long take.wav…" in status
    assert all(during.values()), during
    assert controls() == idle and "10 results" in app.status.value

    app.upload.receive("garbage.wav", b"RIFF\x00\x00\x00\x00WAVEnothing")  # fails in analysis
    assert "analysing garbage.wav" in seen[-1][0] and all(seen[-1][1].values())
    assert controls() == idle and "garbage.wav" in app.error.value
    assert "analysing" not in app.status.value

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(library, "features_of", broken)
    app.upload.receive("big.wav", _wav_bytes(0.5))
    assert controls() == idle and "out of memory" in app.error.value and not app.state.busy


class SteppingEmbedder(CountingEmbedder):
    """Reports its progress in four steps, as the shipped models do per batch."""

    def embed(self, waveforms, *, progress=None):
        for step in (0.25, 0.5, 0.75, 1.0):
            if progress is not None:
                progress(step)
        return super().embed(waveforms)


def test_the_analysis_of_an_upload_says_how_far_it_is(atlas, tmp_path, monkeypatch):
    from soundslike_nb.app import queries

    monkeypatch.setattr(queries, "PROGRESS_EVERY_S", 0.0)
    stepping = _library(tmp_path, SteppingEmbedder())
    state = AppState(stepping, atlas=atlas, uploads=UploadFolder(tmp_path / "up"))
    said: list[str] = []
    state.observe(lambda changed: said.append(state.busy) if "busy" in changed else None)
    assert state.set_query_upload("long take.wav", _wav_bytes(0.5))
    percents = [int(match) for text in said for match in re.findall(r"(\d+) %", text)]
    assert percents == sorted(percents) and percents[0] == 2 and percents[-1] == 94
    assert any("left)" in text for text in said) and said[0] == "analysing long take.wav…"
    assert said[-1] == "" and not state.busy

    monkeypatch.setattr(queries, "PROGRESS_EVERY_S", 3600.0)  # said at most hourly
    said.clear()
    assert state.set_query_upload("again.wav", _wav_bytes(0.5, seed=1))
    assert said == ["analysing again.wav…", ""]


def test_an_upload_on_its_way_says_how_much_arrived_and_is_then_analysed(
        library, atlas, tmp_path):
    from soundslike_nb.app.widgets import App

    app = App(library, atlas=atlas, upload_folder=str(tmp_path / "up"), relative_duration=None)
    said: list[tuple[str, bool]] = []
    app.state.observe(lambda changed: said.append((app.state.busy, app.upload.disabled))
                      if "busy" in changed else None)
    content = _wav_bytes(0.5)
    third = -(-len(content) // 3)
    about = {"id": "u1", "name": "take 2.wav", "size": len(content)}

    def send(event: str, start: int = 0, **extra) -> None:
        parts = [content[start:start + third]] if event == "chunk" else []
        app.upload._handle_message(app.upload, {"event": event, "start": start, **about,
                                                **extra}, parts)

    for start in range(0, len(content), third):
        send("chunk", start)
    assert [text for text, _ in said] == [f"receiving take 2.wav… {share} %"
                                          for share in (33, 66, 100)]
    assert all(disabled for _, disabled in said)  # no second upload races the first
    send("done")  # delivered although receiving disabled the button
    assert app.state.query is not None and app.state.query.name == "take 2.wav"
    assert not app.state.busy and not app.upload.disabled and len(app.state.results) == 10

    said.clear()
    about["id"] = "u2"
    send("chunk", 0)
    send("failed", reason="NotReadableError: the file changed")
    assert said[-1] == ("", False) and "could not send it" in app.error.value
    assert "NotReadableError" in app.error.value and app.state.query.name == "take 2.wav"

    app.upload.max_bytes = third - 1  # the kernel's own check refuses the first part
    about["id"] = "u3"
    send("chunk", 0)
    assert not app.state.busy and "over the upload limit" in app.error.value


def test_a_silent_upload_gets_a_notice(library, atlas, tmp_path):
    from soundslike_nb.app.widgets import App

    app = App(library, atlas=atlas, upload_folder=str(tmp_path / "up"), relative_duration=None)
    silence = io.BytesIO()
    sf.write(silence, np.zeros(RATE, np.float32), RATE, format="WAV")
    app.upload.receive("quiet.wav", silence.getvalue())
    assert "quiet.wav is silent" in app.state.notice and not app.state.error
    assert "is silent" in app.status.value and len(app.state.results)
    app.upload.receive("loud.wav", _wav_bytes(1.0))
    assert app.state.notice == "" and "silent" not in app.status.value


def test_auditioning_moves_a_current_row_and_plays_one_sound_at_a_time(state, library):
    from soundslike_nb.app.state import QUERY

    changes = []
    state.observe(changes.append)
    state.move_current(1)  # no results yet: nothing to move
    assert state.current is None
    state.set_query_row(3)
    assert state.current is None and state.playing is None
    state.move_current(1)
    assert state.current == 0 and state.current_position == state.results["position"][0]
    assert changes[-1] == frozenset({"current"})
    state.move_current(1)
    state.move_current(-5)  # stops at the ends
    assert state.current == 0
    state.move_current(-1)
    assert state.current == 0
    for _ in range(20):
        state.move_current(1)
    assert state.current == len(state.results) - 1

    state.set_current(1)
    state.play_current()  # Space
    second = int(state.results["position"][1])
    assert state.playing == second and "playing" in changes[-1]
    assert state.playing_point() == tuple(state.atlas.coordinates[second])
    state.move_current(1)  # while a sound plays, the new current row plays instead
    third = int(state.results["position"][2])
    assert state.playing == third
    state.play_current()  # Space again: stop
    assert state.playing is None and state.playing_point() is None
    state.play(7)
    state.stopped(third)  # an older sound's end does not stop the new one
    assert state.playing == 7
    state.stopped(7)
    assert state.playing is None

    state.set_current(2)
    state.k = 5  # the current row stays on its sound while it is shown
    assert state.current_position == third
    state.query_current()  # Enter
    assert state.query.position == third and state.current is None
    state.play(QUERY)
    assert state.playing_point() == state.query.point
    with pytest.raises(ParameterError, match="not a result row"):
        state.set_current(len(state.results))
    with pytest.raises(ParameterError, match="not a row of the library"):
        state.play(10_000)


def test_the_app_auditions_from_keys_clicks_and_players(library, atlas, tmp_path):
    from soundslike_nb.app.keys import ResultKeys
    from soundslike_nb.app.widgets import App

    app = App(library, atlas=atlas, relative_duration=None,
              upload_folder=str(tmp_path / "uploads"))
    state, keys = app.state, app.audition.keys
    assert keys in app.widget.children and keys.target_class in app.results._dom_classes
    state.set_query_row(2)
    rows, players = app.results.children[1:], app.results_view.players

    keys._handle_message(keys, {"event": "key", "key": "ArrowDown"}, [])
    keys._handle_message(keys, {"event": "key", "key": "ArrowDown"}, [])
    assert state.current == 1 and keys.current == 1
    assert ["soundslike-current" in row._dom_classes for row in rows[:3]] == [False, True, False]
    keys._handle_message(keys, {"event": "key", "key": "Space"}, [])
    assert state.playing == state.current_position
    assert [player.playing for player in players[:3]] == [False, True, False]
    assert "soundslike-playing" in rows[1]._dom_classes
    ring = app.map_view.figure.data[4]
    assert (ring.x[0], ring.y[0]) == tuple(atlas.coordinates[state.playing])

    keys._handle_message(keys, {"event": "click", "index": 4}, [])  # a click on row 5 plays it
    assert state.current == 4 and state.playing == state.results["position"][4]
    assert [player.playing for player in players[:5]] == [False] * 4 + [True]
    players[6].playing = True  # the browser says row 7's player started (its own controls)
    assert state.playing == state.results["position"][6] and not players[4].playing
    players[6].playing = False  # ...and ended
    assert state.playing is None and list(ring.x) == []
    app.query_panel.children[1].playing = True  # the query's own player
    assert state.playing == 2 and not any(player.playing for player in players)

    state.select(30)  # a map click: its player autoplays and says so
    app.audition.panels["selected"][1].playing = True
    assert state.playing == 30 and not app.query_panel.children[1].playing
    fifth = state.current_position
    keys._handle_message(keys, {"event": "key", "key": "Enter"}, [])  # row 5 becomes the query
    assert state.query.position == fifth and state.current is None
    keys._handle_message(keys, {"event": "key", "key": "x"}, [])  # not ours: ignored
    script = ResultKeys._esm
    for key in ("ArrowDown", "ArrowUp", '" "', "Enter", "stopPropagation", "preventDefault",
                '"click"', "scrollIntoView"):
        assert key in script, key
    assert ".soundslike-current" in app.widget.children[0].value  # the outline's style


def test_typed_duration_bounds_follow_the_slider_and_write_the_state(library, atlas, tmp_path):
    from soundslike_nb.app.widgets import App

    app = App(library, atlas=atlas, relative_duration=None,
              upload_folder=str(tmp_path / "uploads"))
    state = app.state
    state.set_query_row(30)
    assert (app.min_duration.value, app.max_duration.value) == ("", "")
    app.min_duration.value = "0.392"
    assert state.duration == (0.392, None)
    assert app.scale.to_range(app.range_slider.value)[0] == pytest.approx(0.392)
    app.max_duration.value = "0.4 s"  # close together: the slider's handles could not do it
    assert state.duration == (0.392, 0.4)
    assert state.results["duration"].between(0.392, 0.4).all()
    app.range_slider.value = (app.scale.position(1.0), app.scale.high)
    assert state.duration == (1.0, None)
    assert (app.min_duration.value, app.max_duration.value) == ("1", "")
    state.duration = (2.5, 30.0)  # from a script: slider and entries follow
    assert (app.min_duration.value, app.max_duration.value) == ("2.5", "30")
    assert app.scale.to_range(app.range_slider.value) == (2.5, 30.0)
    app.max_duration.value = "soon"
    assert "seconds" in app.error.value and app.max_duration.value == "30"
    app.min_duration.value = "40"  # above the maximum: said, and the entries spring back
    assert "above its maximum" in app.error.value and app.min_duration.value == "2.5"
    app.min_duration.value = ""
    assert state.duration == (None, 30.0)
    # The labels beside them cannot run into each other: fixed widths, cut with an ellipsis.
    for label in (app.range_label, app.window_label):
        assert label.layout.width and "soundslike-label" in label._dom_classes
    assert "text-overflow: ellipsis" in app.widget.children[0].value


def test_result_rows_draw_each_sounds_waveform_outline(library, atlas, tmp_path):
    from soundslike_nb.app.widgets import App

    thumbnails = np.zeros((len(library), 64), np.uint8)
    thumbnails[:, :8] = 255  # every sound starts loud
    thumbnails[3] = 0  # a sound without a thumbnail (carried over from an older library)
    table = LibraryTable(library.rows, library.embeddings, library.provenance,
                         thumbnails=thumbnails)
    outlined = Library(table, analyzer=library.analyzer)
    app = App(outlined, atlas=atlas, upload_folder=str(tmp_path / "up"), relative_duration=None)
    app.state.set_query_row(0)
    outlines = {position: re.findall(r"<svg.*?</svg>", row.children[0].value)
                for position, row in zip(app.state.results["position"], app.results.children[1:])}
    assert all(len(svgs) == 1 and svgs[0].count("V") == 64
               for position, svgs in outlines.items() if position != 3)
    assert outlines.get(3, []) == []
    plain = App(library, atlas=atlas, upload_folder=str(tmp_path / "up2"), relative_duration=None)
    plain.state.set_query_row(0)
    assert all("<svg" not in row.children[0].value for row in plain.results.children[1:])


def test_an_upload_longer_than_the_analysed_length_says_so(library, atlas, tmp_path):
    from soundslike_nb.analysis import AnalysisSettings

    library.settings = AnalysisSettings(max_duration_s=2.0)  # as a library file records it
    state = AppState(library, atlas=atlas, relative_duration=None,
                     uploads=UploadFolder(tmp_path / "up"))
    state.set_query_upload("long take.wav", _wav_bytes(3.0))
    assert "only the first 2 s of long take.wav are analysed" in state.notice
    state.set_query_upload("short.wav", _wav_bytes(1.0))
    assert state.notice == ""
