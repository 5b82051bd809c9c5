"""Regions in the app, as plain data: a span of the query to search with, the sound a result row
plays (a whole file, or a region of it), and the query's waveform outline to select a span on.
No widgets in here; :class:`~.state.AppState` uses these, and so can a script.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import numpy as np

from ..analysis_records import SoundFeatures
from ..errors import AudioError
from ..library import Library

__all__ = ["OUTLINE_BINS", "Clip", "Span", "outline", "region_features", "sound_of"]

Span = tuple[float, float]
#: Points of the query's waveform outline (each the peak of its stretch of the file).
OUTLINE_BINS = 1200
_OUTLINE_BLOCK = 1 << 18


class Clip(NamedTuple):
    """A region of library sound ``position``, from ``start`` to ``end`` seconds: what a
    result row that found a region plays (a whole-file row plays its position, an ``int``)."""

    position: int
    start: float
    end: float


def sound_of(position: int, start: float, end: float) -> int | Clip:
    """What a result row plays: its file's ``position``, or the :class:`Clip` of its region
    (``start``/``end`` NaN for a whole file).

    Example:
        >>> sound_of(3, float("nan"), float("nan")), sound_of(3, 1.5, 2.0)
        (3, Clip(position=3, start=1.5, end=2.0))
    """
    if start is None or end is None or not (math.isfinite(start) and math.isfinite(end)):
        return int(position)
    return Clip(int(position), float(start), float(end))


def region_features(library: Library, position: int, span: Span) -> SoundFeatures:
    """The features of library sound ``position`` over ``span``: its stored region's when the
    library has one there (nothing is analysed), else that span of its file analysed."""
    regions = getattr(library, "regions", None)
    if regions is not None and len(regions):
        mine = np.flatnonzero((regions["file"].to_numpy() == position)
                              & np.isclose(regions["start"].to_numpy(), span[0], atol=5e-3)
                              & np.isclose(regions["end"].to_numpy(), span[1], atol=5e-3))
        if len(mine):
            return library.region_features(int(mine[0]))
    path = str(library.rows["path"].iloc[position])
    return library.features_of(path, region=span)


def outline(path: str | os.PathLike, *, bins: int = OUTLINE_BINS,
            max_seconds: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """A file's waveform outline to draw and select on: the times of ``bins`` equal
    stretches (their middles, in seconds), each stretch's peak (0 to 1, the loudest 1), and
    the file's length; read block by block (a long take never sits in memory).
    ``max_seconds`` reads only that much.

    Example:
        >>> times, peaks, length = outline("data/demo/kenney/coin1.wav")  # doctest: +SKIP
        >>> len(times) == len(peaks)  # doctest: +SKIP
        True
    """
    import soundfile as sf

    from ..audio import info

    label = os.fspath(path)
    meta = info(label)
    frames = meta.frames if max_seconds is None else min(
        meta.frames, max(1, round(max_seconds * meta.sample_rate)))
    bins = max(1, min(bins, frames))
    edges = np.linspace(0, frames, bins + 1).astype(np.int64)
    peaks = np.zeros(bins, np.float32)
    # Integer files are read as 16-bit (half the decoding of floats; plenty for an outline);
    # each stretch's peak is one reduction over its frames and channels together.
    dtype = "int16" if meta.subtype.startswith("PCM_") else "float32"
    try:
        with sf.SoundFile(label) as handle:
            done = 0
            while done < frames:
                block = handle.read(min(_OUTLINE_BLOCK, frames - done), dtype=dtype,
                                    always_2d=True)
                if not len(block):
                    break
                first = np.searchsorted(edges, done, side="right") - 1
                last = np.searchsorted(edges, done + len(block), side="left")
                for index in range(first, min(last, bins)):
                    low = max(edges[index], done) - done
                    high = min(edges[index + 1], done + len(block)) - done
                    if high > low:
                        part = block[low:high]
                        peaks[index] = max(peaks[index], float(part.max()),
                                           -float(part.min()))
                done += len(block)
    except sf.LibsndfileError as exc:
        raise AudioError(f"{label!r}: cannot read its waveform ({exc})") from None
    loudest = float(peaks.max())
    if loudest > 0:
        peaks /= loudest
    times = (edges[:-1] + edges[1:]) / 2 / meta.sample_rate
    return times, peaks, frames / meta.sample_rate
