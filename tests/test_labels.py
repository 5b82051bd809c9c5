"""Labels that spread: suggestions from tagged neighbours, their confidence, bulk acceptance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soundslike_nb import ParameterError
from soundslike_nb.labels import (
    DEFAULT_MIN_CONFIDENCE,
    SpreadSettings,
    accepted_changes,
    map_labels,
    neighbour_graph,
)
from soundslike_nb.libfile import ROW_COLUMNS, LibraryTable, read_table, write_table
from soundslike_nb.library import Library

CLUSTER = 40


def _clustered_table(clusters: int = 3, *, seed: int = 0) -> LibraryTable:
    """``clusters`` tight groups of ``CLUSTER`` seeded 16-d vectors; row i is in group
    i // CLUSTER."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, 16)) * 3
    embeddings = np.concatenate([centre + rng.standard_normal((CLUSTER, 16))
                                 for centre in centres]).astype(np.float32)
    count = len(embeddings)
    rows = pd.DataFrame({
        "name": [f"sound {i}" for i in range(count)],
        "path": [f"/sfx/group{i // CLUSTER}/sound{i}.wav" for i in range(count)],
        "duration": rng.uniform(0.2, 3.0, count), "sample_rate": 44100, "channels": 1,
        "frames": 44100, "size": 1000, "mtime": 0.0}).astype(ROW_COLUMNS)
    return LibraryTable(rows, embeddings, provenance={"embedder": {"id": "test", "dimension": 16}})


def test_labels_spread_to_their_own_group_and_are_accepted_in_bulk():
    lib = Library(_clustered_table())
    for group, label in enumerate(["impact", "whoosh", "drone"]):
        lib.tag([group * CLUSTER, group * CLUSTER + 1], label)
    suggestions = lib.suggest_labels()
    assert len(suggestions) == len(lib) - 6  # every untagged sound, none tagged
    truth = np.array(["impact", "whoosh", "drone"])[suggestions.index // CLUSTER]
    assert (suggestions["label"].to_numpy() == truth).mean() >= 0.95
    assert suggestions["confidence"].is_monotonic_decreasing
    assert suggestions["confidence"].between(0, 1).all()
    assert list(suggestions.columns) == ["path", "name", "label", "confidence"]

    confident = suggestions[suggestions["confidence"] >= DEFAULT_MIN_CONFIDENCE]
    assert lib.accept_suggestions(suggestions) == len(confident) > len(lib) // 2
    for position, label in confident["label"].items():
        assert lib.tags[position] == (label,)
    assert lib.label_counts().sum() == 6 + len(confident)
    assert (lib.suggest_labels().index.isin(confident.index)).sum() == 0  # now tagged


def test_one_label_spreads_only_near_the_sounds_that_carry_it():
    lib = Library(_clustered_table())
    lib.tag(np.arange(0, 10), "impact")  # a lasso round part of the first group
    suggestions = lib.suggest_labels(min_confidence=DEFAULT_MIN_CONFIDENCE)
    groups = suggestions.index // CLUSTER
    assert (groups == 0).all()  # a share of the vote alone would say 1.0 everywhere
    assert len(suggestions) >= 0.8 * (CLUSTER - 10)
    assert set(lib.suggest_labels(labels=["impact"]).index) >= set(suggestions.index)
    assert lib.suggest_labels(labels=["not used"]).empty


def test_suggestions_without_labels_are_an_empty_table():
    lib = Library(_clustered_table())
    empty = lib.suggest_labels()
    assert empty.empty and list(empty.columns) == ["path", "name", "label", "confidence"]
    assert lib.accept_suggestions(empty) == 0


def test_the_neighbour_graph_is_kept_beside_the_file_and_outlives_tagging(tmp_path):
    out = tmp_path / "lib.parquet"
    write_table(_clustered_table(), out)
    lib = Library(read_table(out), path=out)
    indices, cosines = neighbour_graph(lib, neighbours=5)
    assert indices.shape == cosines.shape == (len(lib), 5)
    assert (indices != np.arange(len(lib))[:, None]).all()  # never itself
    assert (indices // CLUSTER == np.arange(len(lib))[:, None] // CLUSTER).mean() > 0.95
    assert np.all(np.diff(cosines, axis=1) <= 1e-6)  # nearest first
    stored = tmp_path / "lib.parquet.neighbours"
    written = stored.stat().st_mtime_ns
    lib.tag([0, 1], "impact")
    again = Library(read_table(out), path=out)
    again.suggest_labels(settings=SpreadSettings(reach=5))
    assert stored.stat().st_mtime_ns == written  # same content key: read back, not recomputed
    np.testing.assert_array_equal(neighbour_graph(again, neighbours=5)[0], indices)


@pytest.mark.parametrize("call, message", [
    (lambda lib: lib.suggest_labels(min_confidence=1.5), "min_confidence must be in [0, 1]"),
    (lambda lib: lib.suggest_labels(min_confidence="high"), "got 'high'"),
    (lambda lib: lib.suggest_labels(labels=["ok", ""]), "label '': empty"),
    (lambda lib: lib.accept_suggestions(pd.DataFrame({"path": ["/a.wav"]})),
     "suggestions lack columns ['confidence', 'label']"),
    (lambda lib: SpreadSettings(neighbours=0), "neighbours must be an int >= 1, got 0"),
    (lambda lib: SpreadSettings(sharpness=-1.0), "sharpness must be a number >= 0"),
])
def test_bad_spreading_options_are_refused(call, message):
    lib = Library(_clustered_table(1))
    with pytest.raises(ParameterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call(lib)


def test_accepted_changes_group_by_label_at_the_threshold():
    table = pd.DataFrame({"path": ["/a.wav", "/b.wav", "/c.wav", "/d.wav"],
                          "label": ["hit", "whoosh", "hit", "hit"],
                          "confidence": [0.9, 0.8, 0.3, 0.5]})
    changes = accepted_changes(table, min_confidence=0.5)
    assert [(change.label, list(change.paths)) for change in changes] == [
        ("hit", ["/a.wav", "/d.wav"]), ("whoosh", ["/b.wav"])]


def test_the_map_layer_colours_own_labels_and_fades_suggestions():
    lib = Library(_clustered_table())
    lib.tag([0, 1], "impact")
    lib.tag([1, CLUSTER], "whoosh")  # row 1 has two labels: the most used one shows
    lib.tag([2], "whoosh")
    layer = map_labels(lib, lib.suggest_labels(min_confidence=0.5))
    assert len(layer) == len(lib) and list(layer.columns) == ["label", "suggested", "confidence"]
    assert layer.loc[1, "label"] == "whoosh" and not layer.loc[1, "suggested"]
    assert layer.loc[0, "confidence"] == 1.0
    faded = layer[layer["suggested"]]
    assert len(faded) and faded["confidence"].between(0.5, 1).all()
    assert (layer.loc[~layer["suggested"] & (layer["confidence"] == 0), "label"] == "").all()
    only = map_labels(lib, labels=["impact"])
    assert set(only["label"]) == {"impact", ""} and only.loc[1, "label"] == "impact"


def test_the_vote_through_the_index_agrees_with_the_exact_one(monkeypatch):
    import soundslike_nb.labels as labels

    lib = Library(_clustered_table())
    lib.tag(np.arange(0, 3 * CLUSTER, 7), "seen")
    lib.tag(np.arange(CLUSTER, 2 * CLUSTER, 5), "other")
    exact = lib.suggest_labels()
    monkeypatch.setattr(labels, "_EXACT_VOTERS", 0)  # many tagged sounds: the masked index
    monkeypatch.setattr(labels, "_EXACT_RATIO", 0)
    through_index = lib.suggest_labels()
    pd.testing.assert_frame_equal(through_index.sort_index(), exact.sort_index(), atol=1e-5)


def test_the_label_mask_follows_tag_changes():
    lib = Library(_clustered_table(1))
    assert lib.carrying("impact").sum() == 0
    lib.tag([3, 4], "impact")
    mask = lib.carrying(["impact"])
    assert list(np.flatnonzero(mask)) == [3, 4]
    mask[:] = True  # a caller's copy: the library's own is untouched
    lib.untag(3, "impact")
    assert list(np.flatnonzero(lib.carrying("impact"))) == [4]
