"""Finding the sounds in folders: which files, their size and mtime, and display names.

Only ``os.scandir``/``stat`` here, no decoding, so that rescanning an unchanged library of
100k files takes seconds.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .audio import AUDIO_EXTENSIONS
from .errors import LibraryError

__all__ = ["FileEntry", "ScanResult", "display_name", "scan_folders"]


@dataclass(frozen=True)
class FileEntry:
    """One audio file found by a scan: what the rescan compares to tell a changed file."""

    path: str
    size: int
    mtime: float


@dataclass
class ScanResult:
    """Audio files found (sorted by path), and what could not be looked at (path → reason)."""

    files: list[FileEntry]
    failures: dict[str, str]


_SEPARATORS = re.compile(r"[\s_\-.+,;]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_DIGITS = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")


def display_name(path: str | os.PathLike) -> str:
    """The name a person would say, scraped from a file name.

    Example:
        >>> display_name("/sfx/door_creak-03.wav")
        'door creak 03'
        >>> display_name("MetalHit2.flac")
        'Metal Hit 2'
    """
    stem = Path(path).stem
    words = _SEPARATORS.sub(" ", stem)
    words = _DIGITS.sub(" ", _CAMEL.sub(" ", words))
    return " ".join(words.split()) or stem


def _is_audio_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


def scan_folders(folders: Iterable[str | os.PathLike]) -> ScanResult:
    """Walk folders recursively and list their audio files (by extension) with size and mtime.

    Symbolic links to files are followed; links to folders are not (no loops). A link that
    points nowhere or to itself, and a folder whose name looks like audio, are reported.

    Example:
        >>> result = scan_folders(["data/demo"])  # doctest: +SKIP
        >>> len(result.files) > 50  # doctest: +SKIP
        True
    """
    files: dict[str, FileEntry] = {}
    failures: dict[str, str] = {}
    pending: list[str] = []
    for folder in folders:
        root = os.path.abspath(os.fspath(folder))
        if not os.path.exists(root):
            raise LibraryError(f"{root!r}: no such folder")
        if os.path.isfile(root):
            # A single file given where a folder was expected: index it anyway.
            _add_file(root, files, failures)
            continue
        if not os.path.isdir(root):
            raise LibraryError(f"{root!r}: not a folder")
        pending.append(root)
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            failures[folder] = f"cannot list folder ({exc.strerror})"
            continue
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError as exc:
                failures[entry.path] = f"cannot access ({exc.strerror})"
                continue
            if is_dir:
                if _is_audio_name(entry.name):
                    failures[entry.path] = "is a directory, not an audio file"
                pending.append(entry.path)
            elif _is_audio_name(entry.name):
                _add_file(entry.path, files, failures)
    return ScanResult(files=sorted(files.values(), key=lambda f: f.path), failures=failures)


def _add_file(path: str, files: dict[str, FileEntry], failures: dict[str, str]) -> None:
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            failures[path] = "symbolic link loop"
        elif isinstance(exc, FileNotFoundError):
            failures[path] = "broken symbolic link"
        else:
            failures[path] = f"cannot access ({exc.strerror})"
        return
    if stat.S_ISDIR(st.st_mode):
        # A symbolic link to a folder: not followed, so that links cannot make loops.
        failures[path] = "is a link to a directory, not an audio file"
        return
    if not stat.S_ISREG(st.st_mode):
        failures[path] = "not a regular file"
        return
    files[path] = FileEntry(path=path, size=int(st.st_size), mtime=float(st.st_mtime))
