"""How the app makes its :class:`~.state_values.Query`: from an uploaded file, from a library
sound, from a span of either, and back to the whole sound; and what it says about one (a silent
query, a long upload cut to the library's analysed length, the progress of an analysis). Plain
functions of the library and its map: no widgets, no state, nothing observed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

from ..analysis_records import SoundFeatures, check_span
from ..audio import info
from ..library import Library
from ..projection import LibraryMap
from .formatting import format_duration
from .query_region import Span, region_features
from .state_values import Query, positive_seconds
from .uploads import UploadFolder

__all__ = ["PROGRESS_EVERY_S", "analysis_progress", "library_query", "query_notice",
           "region_query", "span_features", "upload_query", "whole_query"]

#: Seconds between two progress messages while an upload is analysed.
PROGRESS_EVERY_S = 0.25


def upload_query(library: Library, atlas: LibraryMap | None, uploads: UploadFolder,
                 name: str, content: bytes, *,
                 progress: Callable[[float], None] | None = None) -> Query:
    """The query of an uploaded file (``name`` already checked and made safe): analysed as
    the library's sounds were, saved in ``uploads``, placed on ``atlas``. A file that cannot
    be analysed raises the library's error.

    Example:
        >>> query = upload_query(lib, lib.map(), UploadFolder(), "door.wav", data)  # doctest: +SKIP
        >>> query.source, query.path  # doctest: +SKIP
        ('upload', '/tmp/soundslike-uploads-…/door.wav')
    """
    features = library.features_of(bytes(content), name=name, progress=progress)
    length = positive_seconds(info(bytes(content), name=name).duration)
    path = uploads.save(name, content)
    point = None if atlas is None else library.map_point(features, atlas)
    return Query(name=name, features=features, source="upload", path=path, point=point,
                 duration=length, length=length)


def library_query(library: Library, atlas: LibraryMap | None, position: int, *,
                  region: Span | None = None) -> Query:
    """The query of library sound ``position`` (a valid row), from its stored features;
    ``region``: only its ``(start_s, end_s)``, checked against its length.

    Example:
        >>> library_query(lib, None, 3, region=(0.5, 1.0)).region  # doctest: +SKIP
        (0.5, 1.0)
    """
    row = library.rows.iloc[position]
    length = positive_seconds(row["duration"])
    point = None
    if atlas is not None:
        x, y = atlas.coordinates[position]
        point = (float(x), float(y))
    query = Query(name=str(row["name"]), features=library.row_features(position),
                  source="library", path=str(row["path"]), position=position, point=point,
                  duration=length, length=length)
    if region is None:
        return query
    span = check_span(region, length, name=query.name)
    return region_query(library, atlas, query, span,
                        region_features(library, position, span))


def span_features(library: Library, query: Query, span: Span) -> SoundFeatures:
    """The features of ``span`` of the query's sound: a library sound's stored region when it
    has one there, else that span of its file (or of the saved upload) analysed."""
    if query.position is not None:
        return region_features(library, query.position, span)
    return library.features_of(query.path, region=span)


def region_query(library: Library, atlas: LibraryMap | None, query: Query, span: Span,
                 features: SoundFeatures) -> Query:
    """``query`` searching with ``features`` of its ``span``, placed on the map by them; its
    whole sound's features are kept (:func:`whole_query` goes back to them)."""
    whole = query.whole if query.whole is not None else query.features
    point = None if atlas is None else library.map_point(features, atlas)
    return replace(query, features=features, region=span, whole=whole,
                   duration=span[1] - span[0], point=point)


def whole_query(library: Library, atlas: LibraryMap | None, query: Query) -> Query:
    """``query`` (a region of its sound) searching with its whole sound again, back at the
    whole sound's point on the map."""
    point = query.point
    if query.position is not None and atlas is not None:
        x, y = atlas.coordinates[query.position]
        point = (float(x), float(y))
    elif atlas is not None:
        point = library.map_point(query.whole, atlas)
    return replace(query, features=query.whole, region=None, whole=None,
                   duration=query.length, point=point)


def query_notice(query: Query | None, library: Library) -> str:
    """Something to know about ``query`` that is not an error (``""`` when nothing): it is
    silent, or only the first part of a long upload was analysed."""
    if query is None:
        return ""
    if query.features.silent:
        return (f"{query.name} is silent (peak below -60 dBFS): its results say "
                "nothing about how it sounds")
    limit = library.settings.max_duration_s
    if query.source == "upload" and limit and (query.duration or 0) > limit:
        return (f"only the first {format_duration(limit)} of {query.name} are "
                f"analysed, as for every sound of this library")
    return ""


def analysis_progress(name: str, say: Callable[[str], None]) -> Callable[[float], None]:
    """A progress callback that says "analysing NAME… 42 % (about 9 s left)" through ``say``,
    at most every :data:`PROGRESS_EVERY_S` (each message costs a redraw).

    Example:
        >>> said = []
        >>> progress = analysis_progress("door.wav", said.append)
        >>> time.sleep(PROGRESS_EVERY_S); progress(0.05); said
        ['analysing door.wav… 5 %']
    """
    started = time.perf_counter()
    said = [started]

    def progress(share: float) -> None:
        now = time.perf_counter()
        if now - said[0] < PROGRESS_EVERY_S or not 0 < share < 1:
            return
        said[0] = now
        message = f"analysing {name}… {math.floor(share * 100):d} %"
        if share >= 0.1:  # the first tenth includes decoding: too early to extrapolate
            left = (now - started) * (1 - share) / share
            message += f" (about {format_duration(max(left, 1.0))} left)"
        say(message)

    return progress
