"""Tags in the library: checked labels, stored in the file, kept across rebuilds and moves,
written without losing a build's rows, and a search filter that loses no match."""

from __future__ import annotations

import re
import shutil
import threading
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

import soundslike_nb as sl
from soundslike_nb import ParameterError
from soundslike_nb.libfile import read_table
from soundslike_nb.library import Library
from soundslike_nb.tags import MAX_LABEL_CHARS, check_label


@pytest.mark.parametrize("label, message", [
    ("", "empty"),
    ("   ", "empty"),
    ("x" * (MAX_LABEL_CHARS + 1), f"{MAX_LABEL_CHARS + 1} characters, at most"),
    ("door\nslam", "U+000A at position 4"),
    ("a\x00b", "U+0000"),
    ("\u202eevil", "U+202E"),
    ("zero\u200bwidth", "U+200B"),
    (3, "must be a string, got 3"),
])
def test_bad_labels_are_refused_with_the_value_named(label, message):
    with pytest.raises(ParameterError, match=re.escape(message)) as caught:
        check_label(label)
    assert repr(label) in str(caught.value)


def test_labels_are_trimmed_and_unicode_normalised():
    assert check_label("  metal impact\t") == "metal impact"
    assert check_label("cafe\u0301") == "caf\u00e9"  # one spelling, however it was typed
    assert check_label("雷 thunder 🌩") == "雷 thunder 🌩"


def _small_library(tmp_path, demo_dir, aisfx, names=("coin1", "coin2", "explosion1", "hit1",
                                                     "jump1")):
    folder = tmp_path / "sfx"
    folder.mkdir()
    for name in names:
        shutil.copy(demo_dir / "kenney" / f"{name}.wav", folder / f"{name}.wav")
    out = tmp_path / "lib.parquet"
    return folder, out, sl.build_library(folder, out=out, embedder=aisfx, progress=False)


@pytest.mark.slow
def test_tags_live_in_the_file_and_leave_the_derived_files_alone(tmp_path, demo_dir, aisfx):
    folder, out, built = _small_library(tmp_path, demo_dir, aisfx)
    built.similar_to(0, k=2)  # writes the space and the index beside the file
    derived = {kind: (tmp_path / f"lib.parquet.{kind}").stat().st_mtime_ns
               for kind in ("space", "index")}
    key = built.content_key

    lib = sl.load_library(out)
    assert lib.tag([str(folder / "coin1.wav"), 1], "coin") == 2
    assert lib.tag(np.array([True, False, True, False, False]), " pickup ") == 2
    assert lib.tag(0, "coin") == 0  # already has it
    assert lib.tags[0] == ("coin", "pickup")

    again = sl.load_library(out)
    assert list(again.frame["tags"]) == [("coin", "pickup"), ("coin",), ("pickup",), (), ()]
    assert again.label_counts().to_dict() == {"coin": 2, "pickup": 2}
    assert again.content_key == key  # labels change no vector
    again.similar_to(0, k=2)
    assert {kind: (tmp_path / f"lib.parquet.{kind}").stat().st_mtime_ns
            for kind in derived} == derived  # nothing recomputed
    assert again.untag(again.carrying("coin"), "coin") == 2
    assert again.untag([2]) == 1  # every label
    assert list(sl.load_library(out).tags) == [("pickup",), (), (), (), ()]

    with pytest.raises(ParameterError, match=r"nowhere\.wav' is not a sound of this library"):
        again.tag(str(folder / "nowhere.wav"), "x")
    with pytest.raises(ParameterError, match="row 9 is not in this library"):
        again.tag(9, "x")
    with pytest.raises(ParameterError, match="label 'bad\\\\tlabel'"):
        again.tag(0, "bad\tlabel")
    assert list(sl.load_library(out).tags) == [("pickup",), (), (), (), ()]  # refused: no write


def test_a_library_written_before_tags_opens_untagged(tmp_path, demo_dir, aisfx):
    _, out, _ = _small_library(tmp_path, demo_dir, aisfx, names=("coin1", "hit1"))
    table = pq.read_table(out)
    pq.write_table(table.drop_columns(["tags", "digest"]), out)  # as an older version wrote it
    lib = sl.load_library(out)
    assert list(lib.frame["tags"]) == [(), ()]
    assert lib.tag(1, "hit") == 1
    assert list(read_table(out).tags) == [(), ("hit",)]


@pytest.mark.slow
def test_tags_survive_rebuilds_edits_and_moves(tmp_path, demo_dir, aisfx):
    folder, out, _ = _small_library(tmp_path, demo_dir, aisfx)
    lib = sl.load_library(out)
    lib.tag([str(folder / "coin1.wav")], "coin")
    lib.tag([str(folder / "explosion1.wav"), str(folder / "hit1.wav")], "impact")

    shutil.copy(demo_dir / "kenney" / "lose1.wav", folder / "lose1.wav")  # a new sound
    (folder / "sub").mkdir()
    (folder / "explosion1.wav").rename(folder / "sub" / "big boom.wav")  # moved, unchanged
    shutil.copy(folder / "hit1.wav", folder / "hit copy.wav")  # a copy is a new sound
    shutil.copy(demo_dir / "kenney" / "hit2.wav", folder / "hit1.wav")  # edited in place
    rebuilt = sl.build_library(folder, out=out, embedder=aisfx, progress=False)

    report = rebuilt.report
    assert (report.moved, report.removed, report.embedded) == (1, 0, 3)  # new, copy, edited
    tags = dict(zip(rebuilt.rows["path"], rebuilt.tags))
    assert tags[str(folder / "coin1.wav")] == ("coin",)
    assert tags[str(folder / "sub" / "big boom.wav")] == ("impact",)  # followed its file
    assert tags[str(folder / "hit1.wav")] == ("impact",)  # labels follow the path
    assert tags[str(folder / "hit copy.wav")] == ()
    assert tags[str(folder / "lose1.wav")] == ()
    moved = rebuilt.rows[rebuilt.rows["path"] == str(folder / "sub" / "big boom.wav")].iloc[0]
    assert moved["name"] == "big boom"
    before = lib.embeddings[lib.position_of(folder / "coin2.wav")]
    np.testing.assert_array_equal(rebuilt.embeddings[rebuilt.position_of(folder / "coin2.wav")],
                                  before)
    fresh = sl.build_library(folder, embedder=aisfx, progress=False)  # the moved row's vectors
    at = fresh.position_of(folder / "sub" / "big boom.wav")
    np.testing.assert_allclose(rebuilt.embeddings[rebuilt.position_of(
        folder / "sub" / "big boom.wav")], fresh.embeddings[at], atol=1e-5)
    assert list(sl.load_library(out).tags) == list(rebuilt.tags)


class _GatedEmbedder:
    """Embeds like the real model once ``gate`` is set; says when a build reached it."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.id, self.sample_rate, self.dimension = inner.id, inner.sample_rate, inner.dimension
        self.reached, self.gate = threading.Event(), threading.Event()

    @property
    def provenance(self):
        return self.inner.provenance

    def embed(self, waveforms, **options):
        self.reached.set()
        self.gate.wait(60)
        return self.inner.embed(waveforms, **options)


def test_tagging_while_a_build_runs_loses_neither(tmp_path, demo_dir, aisfx):
    folder, out, _ = _small_library(tmp_path, demo_dir, aisfx, names=("coin1", "hit1"))
    lib = sl.load_library(out)
    shutil.copy(demo_dir / "kenney" / "jump1.wav", folder / "jump1.wav")
    gated = _GatedEmbedder(aisfx)
    finished = {}
    build = threading.Thread(target=lambda: finished.update(lib=sl.build_library(
        folder, out=out, embedder=gated, progress=False)))
    build.start()
    try:
        assert gated.reached.wait(60)  # the build holds its lock and is analysing jump1
        started = time.monotonic()
        assert lib.tag(0, "coin") == 1  # does not wait for the build
        assert time.monotonic() - started < 30 and not gated.gate.is_set()
    finally:
        gated.gate.set()
        build.join(120)
    on_disk = sl.load_library(out)
    assert sorted(on_disk.rows["name"]) == ["coin 1", "hit 1", "jump 1"]  # the build's row
    assert on_disk.tags[on_disk.position_of(folder / "coin1.wav")] == ("coin",)  # the tag
    assert list(finished["lib"].tags) == list(on_disk.tags)

    stale = lib  # loaded before the build: knows two rows
    assert stale.tag(str(folder / "hit1.wav"), "impact") == 1
    after = sl.load_library(out)
    assert len(after) == 3 and after.tags[after.position_of(folder / "hit1.wav")] == ("impact",)


@pytest.mark.slow
def test_a_tag_filter_keeps_only_labelled_sounds_and_loses_no_match(tmp_path, demo_library_file):
    out = tmp_path / "demo.parquet"
    shutil.copy(demo_library_file, out)
    lib = Library(read_table(out), path=out)
    rng = np.random.default_rng(7)
    picked = rng.choice(len(lib), 12, replace=False)
    lib.tag(picked[:8], "picked")
    lib.tag(picked[6:], "other")
    query = int(picked[0])

    everything = lib.similar_to(query, k=len(lib))
    for labels in (["picked"], "picked", ["picked", "other"]):
        wanted = set(lib.rows["path"][lib.carrying(labels)]) - {lib.rows["path"][query]}
        found = lib.similar_to(query, k=50, tags=labels)
        assert set(found["path"]) == wanted  # any of the labels, every one of them found
        expected = everything[everything["path"].isin(wanted)]
        assert list(found["path"]) == list(expected["path"])  # in the unfiltered order
    assert list(lib.similar_to(query, k=3, tags="picked")["path"]) == list(
        everything[everything["path"].isin(wanted & set(lib.rows["path"][lib.carrying(
            "picked")]))]["path"][:3])
    features = lib.row_features(query)
    assert lib.search_features(features, k=5, tags=["nobody has this"]).empty
    with pytest.raises(ParameterError, match="label 'new\\\\nline'"):
        lib.search_features(features, k=5, tags=["new\nline"])


@pytest.mark.slow
def test_tagged_sounds_of_an_older_library_get_a_digest_and_can_move(tmp_path, demo_dir, aisfx):
    folder, out, _ = _small_library(tmp_path, demo_dir, aisfx, names=("coin1", "hit1"))
    pq.write_table(pq.read_table(out).drop_columns(["tags", "digest"]), out)  # an older file
    sl.load_library(out).tag(str(folder / "hit1.wav"), "impact")
    assert list(read_table(out).digests) == [b"", b""]  # nobody hashed anything yet

    sl.build_library(folder, out=out, progress=False)  # nothing to analyse: no model loaded
    digests = read_table(out).digests
    assert digests[0] == b"" and len(digests[1]) > 8  # the tagged sound only

    (folder / "hit1.wav").rename(folder / "metal hit.wav")
    moved = sl.build_library(folder, out=out, progress=False)
    assert moved.report.moved == 1 and moved.report.embedded == 0
    assert moved.tags[moved.position_of(folder / "metal hit.wav")] == ("impact",)
