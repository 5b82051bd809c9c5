"""A search session saved as JSON and reopened: the query file, the weights, k, the duration
range and the results, with a message for every file that has since moved or vanished.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from .errors import LibraryError

__all__ = ["SESSION_FORMAT", "Session", "load_session", "save_session"]

#: ``format`` of a session file; ``version`` is bumped when readers must change.
SESSION_FORMAT = "soundslike-session"
_VERSION = 1

DurationRange = tuple[float | None, float | None] | None


@dataclass(frozen=True)
class Session:
    """What a saved search holds, as reopened.

    ``query`` is the query file's path (``None`` for audio that was uploaded, not a file;
    ``query_name`` names it either way); ``results`` the result table as saved, with paths
    updated where the library found a moved file; ``messages`` one line per file that moved
    or is missing.

    Example:
        >>> session = load_session("door search.json")  # doctest: +SKIP
        >>> session.k, session.messages  # doctest: +SKIP
        (10, ["result 3 'door 2': '/sfx/door 2.wav' is missing (moved or deleted)"])
    """

    query: str | None
    query_name: str
    k: int
    duration: DurationRange
    weights: dict[str, float] | None
    results: pd.DataFrame
    library: str | None = None
    saved_at: str = ""
    messages: tuple[str, ...] = field(default=())


def save_session(path: str | os.PathLike, *, query: str | os.PathLike | None,
                 results: pd.DataFrame, k: int, duration: DurationRange = None,
                 weights: Mapping[str, float] | None = None, library=None,
                 query_name: str | None = None) -> str:
    """Write a search session to ``path`` (JSON, atomically) and return its absolute path.

    Args:
        query: the query file (``None`` for uploaded audio: give ``query_name``).
        results: the search's result table (``rank``, ``name``, ``path``, ...).
        k, duration, weights: the search's settings, as given to ``Library.search``.
        library: the :class:`~soundslike_nb.library.Library` searched (its path is recorded).

    Example:
        >>> hits = lib.search("door.wav", k=5)  # doctest: +SKIP
        >>> save_session("door search.json", query="door.wav", results=hits, k=5)  # doctest: +SKIP
    """
    from .exports import json_value, write_text

    if "path" not in results:
        raise LibraryError(f"session results need a 'path' column, got {list(results.columns)}")
    query_path = None if query is None else os.path.abspath(os.fspath(query))
    records = [{str(key): json_value(value) for key, value in record.items()}
               for record in results.to_dict(orient="records")]
    for record in records:  # the size finds a moved file again
        record["size"] = _size(str(record["path"]))
    document = {
        "format": SESSION_FORMAT, "version": _VERSION,
        "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "library": getattr(library, "path", None),
        "query": {"path": query_path,
                  "name": query_name or (os.path.basename(query_path) if query_path else ""),
                  "size": None if query_path is None else _size(query_path)},
        "k": int(k),
        "duration": None if duration is None else [json_value(bound) for bound in duration],
        "weights": None if weights is None else {str(key): float(value)
                                                 for key, value in weights.items()},
        "results": records,
    }
    target = os.path.abspath(os.fspath(path))
    write_text(target, json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    return target


def load_session(path: str | os.PathLike, *, library=None) -> Session:
    """Reopen a session saved by :func:`save_session`.

    Every file of the session (the query, each result) that is no longer where it was gets a
    line in ``Session.messages``; with ``library``, a result found in it at another path (same
    file name and size) is followed there and said so.

    Example:
        >>> session = load_session("door search.json", library=lib)  # doctest: +SKIP
        >>> for line in session.messages:  # doctest: +SKIP
        ...     print(line)
    """
    path = os.path.abspath(os.fspath(path))
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise LibraryError(f"{path!r}: no such session file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LibraryError(f"{path!r}: not a readable session file ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != SESSION_FORMAT:
        raise LibraryError(f"{path!r}: not a soundslike session file")
    if document.get("version") != _VERSION:
        raise LibraryError(f"{path!r}: session version {document.get('version')!r}; this "
                           f"soundslike reads version {_VERSION}")
    try:
        query = document["query"]
        results = pd.DataFrame.from_records(document["results"])
        k = int(document["k"])
        duration = document.get("duration")
        duration = None if duration is None else (duration[0], duration[1])
        weights = document.get("weights")
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise LibraryError(f"{path!r}: damaged session file ({exc!r} missing or wrong)") from None
    messages = []
    if query.get("path") and not os.path.isfile(query["path"]):
        messages.append(f"query {query.get('name')!r}: {query['path']!r} is missing "
                        "(moved or deleted)")
    if len(results):
        results, found = _located(results, library)
        messages += found
    return Session(query=query.get("path"), query_name=str(query.get("name") or ""), k=k,
                   duration=duration, weights=weights,
                   results=results.drop(columns=["size"], errors="ignore"),
                   library=document.get("library"), saved_at=str(document.get("saved_at", "")),
                   messages=tuple(messages))


def _located(results: pd.DataFrame, library) -> tuple[pd.DataFrame, list[str]]:
    """Results with moved files followed (by the library), and a message per missing file."""
    results = results.copy()
    messages = []
    elsewhere: dict[tuple[str, int], list[str]] = {}
    if library is not None:
        for candidate, size in zip(library.rows["path"], library.rows["size"]):
            elsewhere.setdefault((os.path.basename(candidate), int(size)), []).append(candidate)
    for index, record in results.iterrows():
        where = str(record["path"])
        if os.path.isfile(where):
            continue
        label = f"result {record['rank']}" if "rank" in record else f"result {index + 1}"
        name = record["name"] if "name" in record else os.path.basename(where)
        size = record.get("size")
        moves = [candidate for candidate in elsewhere.get(
            (os.path.basename(where), -2 if size is None or pd.isna(size) else int(size)), [])
            if os.path.isfile(candidate)]
        if len(moves) == 1:
            results.loc[index, "path"] = moves[0]
            messages.append(f"{label} {name!r}: moved from {where!r} to {moves[0]!r}")
        else:
            messages.append(f"{label} {name!r}: {where!r} is missing (moved or deleted)")
    return results, messages


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None
