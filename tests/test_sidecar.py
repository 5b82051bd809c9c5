"""The sidecar store: one key scheme, atomic writes, and any failure a logged cache miss, so a
read-only folder or a full disk never fails a search."""

from __future__ import annotations

import errno
import logging
import os
import shutil

import numpy as np
import pandas as pd
import pytest

import soundslike_nb as sl
from soundslike_nb import _atomic
from soundslike_nb.sidecar import SidecarStore, read_stored, sidecar_key, write_stored

KINDS = ("space", "index", "map")


@pytest.fixture
def demo_copy(tmp_path, demo_library_file):
    out = tmp_path / "demo.parquet"
    shutil.copy(demo_library_file, out)
    return out


def _search_and_map(path) -> tuple[pd.DataFrame, np.ndarray]:
    lib = sl.load_library(path)
    return lib.similar_to(3, k=5), lib.map(progress=False).coordinates


@pytest.mark.slow
def test_derived_files_are_written_once_then_reused(demo_copy):
    hits, coordinates = _search_and_map(demo_copy)
    stamps = {kind: os.stat(f"{demo_copy}.{kind}").st_mtime_ns for kind in KINDS}
    for kind in KINDS:  # one format for all three
        assert read_stored(f"{demo_copy}.{kind}").header["kind"] == kind
    again, again_coordinates = _search_and_map(demo_copy)
    pd.testing.assert_frame_equal(again, hits)
    np.testing.assert_array_equal(again_coordinates, coordinates)
    assert {kind: os.stat(f"{demo_copy}.{kind}").st_mtime_ns for kind in KINDS} == stamps
    assert not [name for name in os.listdir(demo_copy.parent) if name.startswith(".tmp-")]


@pytest.mark.slow
@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_read_only_folder_is_a_cache_miss(demo_copy, monkeypatch, caplog, code):
    expected, _ = _search_and_map(demo_copy)
    for kind in KINDS:
        os.remove(f"{demo_copy}.{kind}")

    def refused(*args, **kwargs):  # what creating a file in a read-only folder does
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(_atomic.tempfile, "mkstemp", refused)
    with caplog.at_level(logging.WARNING, logger="soundslike_nb.sidecar"):
        hits, coordinates = _search_and_map(demo_copy)
    pd.testing.assert_frame_equal(hits, expected)
    assert coordinates.shape == (len(sl.load_library(demo_copy)), 2)
    assert not any(os.path.exists(f"{demo_copy}.{kind}") for kind in KINDS)
    assert sum("not saved" in message for message in caplog.messages) == 3


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_really_read_only_folder_searches(demo_copy):
    expected, _ = _search_and_map(demo_copy)
    for kind in KINDS:
        os.remove(f"{demo_copy}.{kind}")
    os.chmod(demo_copy.parent, 0o555)
    try:
        hits, _ = _search_and_map(demo_copy)
    finally:
        os.chmod(demo_copy.parent, 0o755)
    pd.testing.assert_frame_equal(hits, expected)


@pytest.mark.slow
def test_a_full_disk_is_a_cache_miss_and_leaves_nothing_behind(demo_copy, monkeypatch, caplog):
    expected, _ = _search_and_map(demo_copy)
    for kind in KINDS:
        os.remove(f"{demo_copy}.{kind}")
    real_open = open

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def tell(self):
            return self.handle.tell()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    def opening(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        return FullDisk(handle) if "w" in mode and ".tmp-" in os.fspath(path) else handle

    monkeypatch.setattr("builtins.open", opening)
    with caplog.at_level(logging.WARNING, logger="soundslike_nb.sidecar"):
        hits, _ = _search_and_map(demo_copy)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(hits, expected)
    assert sum("No space left on device" in message for message in caplog.messages) == 3
    assert os.listdir(demo_copy.parent) == ["demo.parquet"]  # no temporary file left


@pytest.mark.slow
def test_an_unreadable_or_foreign_file_is_a_cache_miss_and_replaced(demo_copy, caplog):
    expected, _ = _search_and_map(demo_copy)
    with open(f"{demo_copy}.index", "wb") as junk:
        junk.write(b"\x00" * 100)
    write_stored(f"{demo_copy}.space", {"kind": "map", "key": "x"}, {})  # another kind's file
    with caplog.at_level(logging.INFO, logger="soundslike_nb.sidecar"):
        hits, _ = _search_and_map(demo_copy)
    pd.testing.assert_frame_equal(hits, expected)
    assert any("not in this version's format" in message for message in caplog.messages)
    assert not any(record.levelno >= logging.WARNING for record in caplog.records)
    assert read_stored(f"{demo_copy}.index").header["kind"] == "index"  # rebuilt and replaced
    assert read_stored(f"{demo_copy}.space").header["kind"] == "space"


def test_one_key_scheme_content_options_and_format():
    base = sidecar_key("index", "content", {"kind": "auto"}, 2)
    assert base == sidecar_key("index", "content", {"kind": "auto"}, 2)
    assert len({base, sidecar_key("map", "content", {"kind": "auto"}, 2),
                sidecar_key("index", "other", {"kind": "auto"}, 2),
                sidecar_key("index", "content", {"kind": "exact"}, 2),
                sidecar_key("index", "content", {"kind": "auto"}, 3)}) == 5


def test_a_library_in_memory_stores_nothing(tmp_path):
    store = SidecarStore(None)
    assert store.path("map") is None and not store.save("map", "k", {}, {"a": np.zeros(2)})
    assert store.load("map", "k", read=lambda stored: stored) is None
