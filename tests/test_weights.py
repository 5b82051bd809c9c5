"""Steerable similarity: stored descriptors, the library-fitted space beside the file, aspect
weights in the API, the CLI and the app."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

import soundslike_nb as sl
from soundslike_nb.analysis import AnalysisSettings
from soundslike_nb.audio import load
from soundslike_nb.cli import main, parse_weights
from soundslike_nb.descriptors import DESCRIPTOR_VERSION, FEATURE_NAMES, describe
from soundslike_nb.errors import ParameterError
from soundslike_nb.libfile import LibraryTable, read_table, write_table
from soundslike_nb.library import RESULT_COLUMNS, Library
from soundslike_nb.search import IndexSettings, IvfSettings, SoundIndex
from soundslike_nb.space import ASPECT_NAMES, DEFAULT_WEIGHTS

pytestmark = pytest.mark.slow


@pytest.fixture
def demo_copy(tmp_path, demo_library_file):
    """A private copy of the demo library file (its space and index are made in tmp_path)."""
    out = tmp_path / "demo.parquet"
    shutil.copy(demo_library_file, out)
    return out


ASPECTS = ASPECT_NAMES


def space_path(library_path: str) -> str:
    return f"{library_path}.space"


def test_aspects_agree_and_defaults_are_positive():
    assert RESULT_COLUMNS[-len(ASPECTS):] == list(ASPECTS)
    assert all(DEFAULT_WEIGHTS[aspect] > 0 for aspect in ASPECTS)  # index rows use sqrt(w)


def test_descriptors_are_stored_with_their_version(demo_library_file, aisfx):
    lib = sl.load_library(demo_library_file)
    assert lib.descriptors.shape == (len(lib), len(FEATURE_NAMES))
    assert np.isfinite(lib.descriptors).all()
    assert lib.provenance["descriptors"]["version"] == DESCRIPTOR_VERSION
    assert lib.provenance["descriptors"]["features"] == list(FEATURE_NAMES)
    assert list(lib.frame.columns[-3:]) == ["embedding", "descriptors", "thumbnail"]
    np.testing.assert_array_equal(lib.frame["descriptors"][3], lib.descriptors[3])
    row = 7  # the same decoded audio as the embedding, described alone, gives the same row
    waveform, _ = load(lib.rows["path"][row], sample_rate=aisfx.sample_rate,
                       max_duration=AnalysisSettings().max_duration_s)
    np.testing.assert_allclose(describe([waveform], aisfx.sample_rate)[0], lib.descriptors[row],
                               rtol=1e-4, atol=1e-4)


def test_whole_library_ranked_in_the_fused_space(demo_copy, demo_dir):
    lib = sl.load_library(demo_copy)
    query = lib.rows["path"][10]
    ranked = lib.search(query, k=len(lib))
    assert list(ranked.columns) == ["rank", "name", "path", "start", "end", "duration",
                                    "similarity", *ASPECTS]
    assert len(ranked) == len(lib) - 1 and ranked["path"].is_unique
    assert query not in set(ranked["path"])  # a sound of the library is left out of its results
    pd.testing.assert_frame_equal(ranked, lib.similar_to(10, k=len(lib)))
    with open(query, "rb") as sound:  # the same sound as an upload: first, fully similar
        uploaded = lib.search(sound.read(), k=3, name="upload.wav")
    assert uploaded["path"][0] == query and uploaded["similarity"][0] == pytest.approx(1.0,
                                                                                      abs=1e-4)
    assert ranked["similarity"].is_monotonic_decreasing
    shares = np.array([DEFAULT_WEIGHTS[a] for a in ASPECTS]) / sum(DEFAULT_WEIGHTS.values())
    np.testing.assert_allclose(ranked[list(ASPECTS)].to_numpy() @ shares, ranked["similarity"],
                               atol=1e-5)
    assert os.path.exists(space_path(str(demo_copy)))


def test_zero_descriptor_weights_rank_by_the_cnn_alone(demo_copy):
    lib = sl.load_library(demo_copy)
    cnn_only = {"timbre": 0, "spectrum": 0, "envelope": 0}
    for row in (0, 21, 40):
        ranked = lib.similar_to(row, k=len(lib), weights=cnn_only)
        features = lib.row_features(row)
        transformed = lib.space.transform(lib.embeddings, lib.descriptors)
        query = lib.space.transform(features.embedding[None], features.descriptors[None])[0]
        cnn = lib.space.slices["cnn"]
        scores = transformed[:, cnn] @ query[cnn]
        scores[row] = -np.inf
        expected = list(lib.rows["path"][np.argsort(-scores, kind="stable")[:len(lib) - 1]])
        assert list(ranked["path"]) == expected
        np.testing.assert_allclose(ranked["similarity"], ranked["cnn"], atol=1e-6)


def test_weights_steer_the_ranking(demo_copy):
    lib = sl.load_library(demo_copy)
    query = lib.rows["path"][3]
    envelope_only = lib.search(query, k=10, weights={"cnn": 0, "timbre": 0, "spectrum": 0,
                                                     "envelope": 1})
    assert envelope_only["envelope"].is_monotonic_decreasing
    np.testing.assert_allclose(envelope_only["similarity"], envelope_only["envelope"], atol=1e-6)
    assert list(envelope_only["path"]) != list(lib.search(query, k=10)["path"])


@pytest.mark.parametrize("weights, message", [
    ({"timbre": -1}, "must be a finite number >= 0"),
    ({"loudness": 1}, "unknown aspect 'loudness'"),
    ({"cnn": 0, "timbre": 0, "spectrum": 0, "envelope": 0}, "all aspect weights are 0"),
    ({"cnn": "lots"}, "must be a number"),
    ({"cnn": float("nan")}, "must be a finite number"),
])
def test_bad_weights_are_refused(demo_copy, weights, message):
    lib = sl.load_library(demo_copy)
    with pytest.raises(ParameterError, match=message):
        lib.search(lib.rows["path"][0], k=3, weights=weights)


def test_space_is_reused_then_refitted_when_the_library_changes(tmp_path, demo_dir, aisfx):
    folder = tmp_path / "sfx"
    shutil.copytree(demo_dir / "kenney", folder)
    out = tmp_path / "lib.parquet"
    sl.build_library(folder, out=out, embedder=aisfx, progress=False)
    first = sl.load_library(out)
    before = first.search(first.rows["path"][5], k=8)
    stamp = os.stat(space_path(str(out))).st_mtime_ns
    reloaded = sl.load_library(out)
    pd.testing.assert_frame_equal(reloaded.search(reloaded.rows["path"][5], k=8), before)
    assert os.stat(space_path(str(out))).st_mtime_ns == stamp  # read, not refitted

    os.remove(folder / "coin1.wav")
    changed = sl.build_library(folder, out=out, embedder=aisfx, progress=False)
    assert changed.report.removed == 1
    refitted = sl.load_library(out)
    assert refitted.space.n_fitted == len(refitted) == len(first) - 1
    stamp = os.stat(space_path(str(out))).st_mtime_ns
    assert sl.load_library(out).space.n_fitted == len(refitted)
    assert os.stat(space_path(str(out))).st_mtime_ns == stamp  # the refitted one is reused


def test_a_library_without_descriptors_searches_by_the_cnn_and_is_upgraded(
        tmp_path, demo_library_file, demo_dir, aisfx):
    table = read_table(demo_library_file)
    old = LibraryTable(table.rows, table.embeddings,
                       {key: value for key, value in table.provenance.items()
                        if key != "descriptors"})
    out = tmp_path / "old.parquet"
    write_table(old, out)
    lib = sl.load_library(out, embedder=aisfx)
    assert lib.descriptors is None and lib.space is None
    hits = lib.similar_to(0, k=5)
    vectors = lib.embeddings / np.linalg.norm(lib.embeddings, axis=1, keepdims=True)
    np.testing.assert_allclose(hits["similarity"], np.sort(vectors[1:] @ vectors[0])[::-1][:5],
                               atol=1e-5)
    assert hits[["timbre", "spectrum", "envelope"]].isna().all().all()
    with pytest.raises(ParameterError, match="no descriptors"):
        lib.similar_to(0, k=5, weights={"timbre": 1})

    upgraded = sl.build_library(lib.rows["path"].map(os.path.dirname).unique().tolist(),
                                out=out, embedder=aisfx, progress=False)
    assert upgraded.report.embedded == len(lib) and upgraded.descriptors is not None


def test_exact_flag_scans_every_row_of_an_ivf_index():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3000, 24)).astype(np.float32)
    durations = rng.uniform(0.1, 10, 3000)
    # the smallest budget: far too small, as for a query unlike every row
    index = SoundIndex(vectors, durations,
                       settings=IndexSettings(kind="ivf", ivf=IvfSettings(target_recall=0.0)))
    queries = rng.standard_normal((20, 24)).astype(np.float32)
    exact = SoundIndex(vectors, durations, kind="exact").search(queries, k=10, duration=(1, 8))
    found = index.search(queries, k=10, duration=(1, 8), exact=True)
    # the same neighbours; near-ties may swap places (the IVF index keeps float16 codes)
    assert [set(row) for row in found.indices] == [set(row) for row in exact.indices]
    np.testing.assert_allclose(found.similarities, exact.similarities, atol=2e-3)
    budgeted = index.search(queries, k=10, duration=(1, 8))
    assert sum(len(set(a) & set(b)) for a, b in zip(budgeted.indices, exact.indices)) < 200


def test_cli_weights(demo_copy, capsys):
    query = str(sl.load_library(demo_copy).rows["path"][2])
    code = main(["search", str(demo_copy), query, "-k", "4", "--json",
                 "--weights", "cnn=0,timbre=1,spectrum=0,envelope=0"])
    hits = json.loads(capsys.readouterr().out)
    assert code == 0 and [hit["similarity"] for hit in hits] == pytest.approx(
        [hit["timbre"] for hit in hits], abs=1e-6)
    assert main(["search", str(demo_copy), query, "--weights", "pitch=1"]) == 2
    assert "unknown aspect 'pitch'" in capsys.readouterr().err
    assert main(["search", str(demo_copy), query, "--weights", "cnn"]) == 2
    assert "expected ASPECT=NUMBER" in capsys.readouterr().err
    assert parse_weights("timbre=0.5, envelope=0") == {"timbre": 0.5, "envelope": 0.0}


def test_app_sliders_re_rank_without_analysing_again(demo_copy):
    from soundslike_nb.app import App

    lib = sl.load_library(demo_copy)
    app = App(lib, show_map=False, progress=False)
    state = app.state
    state.set_query_row(12)
    default_paths = list(state.results["path"])
    calls = []
    lib.features_of = lambda *args, **kwargs: calls.append(args)  # must not be needed
    app.weight_sliders["envelope"].value = 1.0
    app.weight_sliders["cnn"].value = 0.0
    assert state.weights["envelope"] == 1.0 and state.weights["cnn"] == 0.0
    assert list(state.results["path"]) != default_paths and not calls
    for aspect in ("timbre", "spectrum", "envelope"):
        app.weight_sliders[aspect].value = 0.0
    assert "all aspect weights are 0" in state.error
    assert app.weight_sliders["envelope"].value == 1.0  # the refused weight springs back
    app.reset_weights.click()
    assert state.weights == dict(DEFAULT_WEIGHTS)
    assert list(state.results["path"]) == default_paths


def test_app_of_a_library_without_descriptors_disables_aspect_sliders(demo_library_file, aisfx):
    from soundslike_nb.app import App

    table = read_table(demo_library_file)
    lib = Library(LibraryTable(table.rows, table.embeddings, table.provenance), embedder=aisfx)
    app = App(lib, show_map=False, progress=False)
    assert not app.state.has_aspects
    assert app.weight_sliders["timbre"].disabled and not app.weight_sliders["cnn"].disabled
    app.state.set_query_row(0)
    assert len(app.state.results) == 10 and not app.state.error


def test_empty_and_one_sound_libraries_search(tmp_path, demo_dir, aisfx):
    query = demo_dir / "kenney" / "coin2.wav"
    (tmp_path / "none").mkdir()
    empty = sl.build_library(tmp_path / "none", out=tmp_path / "none.parquet", embedder=aisfx,
                             progress=False)
    for lib in (empty, sl.load_library(tmp_path / "none.parquet", embedder=aisfx)):
        hits = lib.search(query, k=5, weights={"timbre": 1})
        assert hits.empty and list(hits.columns)[-4:] == list(ASPECTS)
    (tmp_path / "one").mkdir()
    shutil.copy(demo_dir / "kenney" / "coin1.wav", tmp_path / "one")
    one = sl.build_library(tmp_path / "one", out=tmp_path / "one.parquet", embedder=aisfx,
                           progress=False)
    hits = one.search(query, k=5, weights={"envelope": 1})
    assert list(hits["name"]) == ["coin 1"] and -1 <= hits["similarity"][0] <= 1


def test_every_weighting_is_one_index_search_without_a_forced_scan(demo_copy, monkeypatch):
    lib = sl.load_library(demo_copy)
    index_type, calls = type(lib.index), []
    original = index_type.search

    def recording(self, *args, **kwargs):
        calls.append(kwargs.get("exact", False))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(index_type, "search", recording)
    doubled = {aspect: 2 * weight for aspect, weight in DEFAULT_WEIGHTS.items()}
    default = lib.similar_to(0, k=5)
    same_shares = lib.similar_to(0, k=5, weights=doubled)
    lib.similar_to(0, k=5, weights={"envelope": 1})
    assert calls == [False, False, False]
    pd.testing.assert_frame_equal(default, same_shares)
