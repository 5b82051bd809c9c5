"""Exports: results, a selection and duplicate groups as CSV / JSON (formula-safe), zips of the
audio (safe entry names), and search sessions saved and reopened with moved or missing files."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest

from soundslike_nb.errors import AudioError, LibraryError, ParameterError
from soundslike_nb.exports import (
    export_table,
    licences,
    to_csv,
    to_json,
    write_zip,
    zip_bytes,
    zip_entry_names,
)
from soundslike_nb.session import load_session, save_session


@pytest.fixture(scope="module")
def library(demo_library_file):
    from soundslike_nb import load_library

    return load_library(demo_library_file)


def test_results_export_leads_with_what_the_library_knows(library):
    hits = library.similar_to(0, k=4)
    table = export_table(library, hits)
    assert list(table.columns[:4]) == ["name", "path", "duration", "similarity"]
    assert "licence" in table and set(table["licence"]) == {"CC0-1.0"}  # data/demo's list
    assert "rank" in table.columns and table["path"].tolist() == hits["path"].tolist()
    if "tags" in table:  # a library with labels exports them
        assert table["tags"].map(lambda tags: isinstance(tags, (tuple, list))).all()


def test_a_selection_by_rows_mask_or_paths_gives_the_same_table(library):
    rows = [3, 7, 9]
    mask = np.zeros(len(library), bool)
    mask[rows] = True
    paths = library.rows["path"].iloc[rows].tolist()
    by_rows, by_mask, by_paths = (export_table(library, selection)
                                  for selection in (rows, mask, paths))
    pd.testing.assert_frame_equal(by_rows, by_mask)
    pd.testing.assert_frame_equal(by_rows, by_paths)
    assert by_rows["name"].tolist() == library.rows["name"].iloc[rows].tolist()
    with pytest.raises(ParameterError, match="out of range"):
        export_table(library, [len(library)])


def test_licences_come_from_the_library_folders_list(library):
    known = licences(library)
    assert len(known) == len(library)
    assert all(os.path.isabs(path) for path in known)


def test_csv_neutralises_formulas_and_keeps_the_rest():
    table = pd.DataFrame({"name": ["=1+2", "+cmd", "-x", "@SUM(A1)", "\tq", "plain", "a=b"],
                          "duration": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
                          "tags": [("impact", "=evil"), (), ("a",), (), (), (), ()]})
    text = to_csv(table)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["name"] for row in rows] == ["'=1+2", "'+cmd", "'-x", "'@SUM(A1)", "'\tq",
                                            "plain", "a=b"]
    assert rows[0]["duration"] == "-1.5"            # numbers are numbers, not formulas
    assert rows[0]["tags"] == "impact; =evil"        # joined cell does not start with "="


def test_duplicate_groups_export_to_csv_and_json(tmp_path):
    groups = pd.DataFrame({"group": [1, 1], "keep": [True, False],
                           "path": ["/lib/a.wav", "/lib/-a copy.wav"],
                           "reason": ["keep: best", "copy of 'a.wav'"],
                           "correlation": [1.0, float("nan")]})
    table = export_table(None, groups)
    to_csv(table, tmp_path / "groups.csv")
    back = pd.read_csv(tmp_path / "groups.csv")
    assert back["path"].tolist() == ["/lib/a.wav", "/lib/-a copy.wav"]  # not a formula
    assert back["name"].tolist() == ["a.wav", "'-a copy.wav"]              # a formula
    assert back["keep"].tolist() == [True, False] and back["group"].tolist() == [1, 1]
    records = json.loads(to_json(table, tmp_path / "groups.json"))
    assert records[1]["correlation"] is None and records[1]["name"] == "-a copy.wav"
    assert json.loads((tmp_path / "groups.json").read_text()) == records


def test_zip_entry_names_never_escape():
    names = zip_entry_names(["/a/b/../../etc/passwd", "/x/..\\..\\evil.wav", "/x/new\nline.wav",
                             "/x/C:drive.wav", "/x/Same.wav", "/x/same.wav"])
    for name in names:
        assert not name.startswith("/") and ".." not in name.split("/")
        assert "\\" not in name and "\n" not in name and ":" not in name
    assert len(set(name.lower() for name in names)) == len(names)


def test_zip_of_files_with_a_manifest_extracts_inside_its_folder(tmp_path, demo_dir):
    sources = [demo_dir / "kenney" / "coin1.wav", demo_dir / "kenney" / "hit2.wav"]
    hostile = tmp_path / "in" / "..odd name$(x).wav"
    hostile.parent.mkdir()
    shutil.copy(sources[0], hostile)
    paths = [*sources, hostile]
    manifest = pd.DataFrame({"name": ["coin 1", "hit 2", "odd"], "path": map(str, paths)})
    out = write_zip(paths, tmp_path / "sounds.zip", manifest=manifest)
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert names[0] == "sounds.csv" and len(names) == 4
        listed = pd.read_csv(io.BytesIO(archive.read("sounds.csv")))
        assert set(listed["file"]) == set(names[1:])
        archive.extractall(tmp_path / "unzipped")
        assert archive.read(listed["file"][0]) == sources[0].read_bytes()
    extracted = {path.relative_to(tmp_path / "unzipped").as_posix()
                 for path in (tmp_path / "unzipped").rglob("*") if path.is_file()}
    assert extracted == set(names)


def test_a_zip_names_missing_files(tmp_path, demo_dir):
    present = demo_dir / "kenney" / "coin1.wav"
    gone = tmp_path / "gone.wav"
    with pytest.raises(AudioError, match=r"1 files to zip are missing.*gone\.wav"):
        zip_bytes([present, gone])
    data = zip_bytes([present, gone], skip_missing=True)
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["coin1.wav"]


def test_a_session_reopens_with_a_message_per_missing_file(tmp_path, demo_dir):
    folder = tmp_path / "sfx"
    shutil.copytree(demo_dir / "kenney", folder)
    query = folder / "coin1.wav"
    results = pd.DataFrame({"rank": [1, 2, 3], "name": ["coin 2", "coin 3", "hit 1"],
                            "path": [str(folder / f"{stem}.wav") for stem in
                                     ("coin2", "coin3", "hit1")],
                            "duration": [0.3, 0.4, 0.2], "similarity": [0.9, 0.8, 0.5]})
    saved = save_session(tmp_path / "session.json", query=query, results=results, k=3,
                         duration=(0.1, None), weights={"timbre": 0.5})
    session = load_session(saved)
    assert session.messages == ()
    assert (session.k, session.duration, session.weights) == (3, (0.1, None), {"timbre": 0.5})
    pd.testing.assert_frame_equal(session.results, results)
    assert session.query == str(query) and session.query_name == "coin1.wav"

    os.unlink(query)
    os.unlink(folder / "coin3.wav")
    session = load_session(saved)
    assert session.messages == (
        f"query 'coin1.wav': {str(query)!r} is missing (moved or deleted)",
        f"result 2 'coin 3': {str(folder / 'coin3.wav')!r} is missing (moved or deleted)")


def test_a_moved_result_is_followed_through_the_library(tmp_path, library):
    moved_from = tmp_path / "old place" / "hurt3.wav"
    moved_from.parent.mkdir()
    original = library.rows["path"][library.rows["path"].str.endswith("hurt3.wav")].iloc[0]
    shutil.copy(original, moved_from)
    results = pd.DataFrame({"rank": [1], "name": ["hurt 3"], "path": [str(moved_from)]})
    saved = save_session(tmp_path / "s.json", query=None, query_name="upload.wav",
                         results=results, k=1, library=library)
    os.unlink(moved_from)
    session = load_session(saved, library=library)
    assert session.results["path"].tolist() == [original]
    assert session.messages == (f"result 1 'hurt 3': moved from {str(moved_from)!r} to "
                                f"{original!r}",)
    assert session.query is None and session.library == library.path


def test_a_bad_session_file_is_one_clear_error(tmp_path):
    with pytest.raises(LibraryError, match="no such session file"):
        load_session(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(LibraryError, match="not a readable session file"):
        load_session(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(LibraryError, match="not a soundslike session"):
        load_session(tmp_path / "y.json")
