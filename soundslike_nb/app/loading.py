"""Choosing the library the app shows: a library file, built or brought up to date from folders."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import LibraryError
from ..library import Library

__all__ = ["open_library", "served_by_voila"]


def served_by_voila() -> bool:
    """Whether this kernel runs a page that Voilà serves as an app (Voilà sets
    ``VOILA_KERNEL_ID`` in its kernels): the page then shows the app alone, no build log.

    Example:
        >>> served_by_voila()
        False
    """
    return "VOILA_KERNEL_ID" in os.environ


def open_library(library: str | os.PathLike | None, *,
                 folders: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                 progress: bool | None = None, embedder: str | None = None) -> Library:
    """The library to explore: read ``library``, or, with ``folders``, build it or bring it up
    to date first (only new and changed files are embedded, with a progress bar).

    Args:
        library: the ``.parquet`` library file; ``None`` keeps a library built from
            ``folders`` in memory (no file, so no stored map either).
        folders: the folders the library indexes; ``None`` opens the file as it is.
        progress: show progress bars and a line about the build; default: yes, except in a page
            Voilà serves (:func:`served_by_voila`), which shows the app alone.
        embedder: the model: for a new library the one to build it with (default: aisfx); for
            an existing one, its own model named (needed for any model but the shipped one,
            which is the only one a library file may load by itself).

    Example:
        >>> lib = open_library("data/demo.parquet", folders=["data/demo"])  # doctest: +SKIP
        >>> len(lib)  # doctest: +SKIP
        56
    """
    from ..build import build_library
    from ..library import load_library

    if progress is None:
        progress = not served_by_voila()
    if folders is None:
        if library is None:
            raise LibraryError("give a library file, or the folders to build one from")
        return load_library(library, embedder=embedder)
    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    missing = [os.fspath(folder) for folder in folders if not os.path.exists(folder)]
    if missing:
        raise LibraryError(f"no such folder: {', '.join(map(repr, missing))}")
    built = build_library(folders, out=library, progress=progress, embedder=embedder)
    report = getattr(built, "report", None)
    if progress and report is not None:
        where = os.path.basename(os.fspath(library)) if library is not None else "library"
        print(f"{where}: {len(built)} sounds ({report.summary()})")
    return built
