"""Scanning folders and scraping display names from file names."""

from __future__ import annotations

import os

import pytest

from soundslike_nb import LibraryError
from soundslike_nb.scan import display_name, scan_folders


@pytest.mark.parametrize("file_name, expected", [
    ("door_creak-03.wav", "door creak 03"),
    ("MetalHit2.flac", "Metal Hit 2"),
    ("  weird..name__.WAV", "weird name"),
    ("-rf --dash.wav", "rf dash"),
    ("café à l'eau.ogg", "café à l'eau"),
    ("<script>&amp.wav", "<script>&amp"),
    ("___.wav", "___"),
])
def test_display_name(file_name, expected):
    assert display_name(f"/sfx/{file_name}") == expected


def test_scan_finds_audio_recursively_and_reports_oddities(tmp_path, write_sound):
    write_sound("a/one.wav")
    write_sound("a/b/two.FLAC", subtype="PCM_16")
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "dir.wav").mkdir()
    (tmp_path / "loop.wav").symlink_to(tmp_path / "loop.wav")
    (tmp_path / "gone.wav").symlink_to(tmp_path / "missing.wav")
    (tmp_path / "linked").symlink_to(tmp_path / "a")  # a folder link: not followed
    os.symlink(tmp_path / "a" / "one.wav", tmp_path / "alias.wav")
    result = scan_folders([tmp_path])
    names = sorted(os.path.relpath(f.path, tmp_path) for f in result.files)
    assert names == ["a/b/two.FLAC", "a/one.wav", "alias.wav"]
    assert result.failures[str(tmp_path / "dir.wav")] == "is a directory, not an audio file"
    assert result.failures[str(tmp_path / "loop.wav")] == "symbolic link loop"
    assert result.failures[str(tmp_path / "gone.wav")] == "broken symbolic link"
    assert all(f.size > 0 and f.mtime > 0 for f in result.files)


def test_scan_of_missing_folder_is_an_error(tmp_path):
    with pytest.raises(LibraryError, match="no such folder"):
        scan_folders([tmp_path / "absent"])


def test_scan_of_demo(demo_dir):
    result = scan_folders([demo_dir])
    assert len(result.files) >= 50 and not result.failures
