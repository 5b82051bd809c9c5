"""A span of a sound file as a file of its own: what "download the region" saves.

:func:`cut_wav` copies the frames of ``[start, end)`` seconds into a WAV at the file's own rate
and channel count, in its own sample format where WAV can hold it (16-, 24-, 32-bit PCM, float,
double, 8-bit, µ-law, A-law); other formats (Vorbis, Opus, MP3, FLAC's 8-bit signed, ADPCM) are
written as 32-bit float, which holds what their decoder gives without clipping or rounding.
:func:`cut_name` names it ``<stem>_<start>-<end>.wav``.
"""

from __future__ import annotations

import io
import math
import os

import numpy as np

from .audio import info
from .errors import AudioError, ParameterError

__all__ = ["cut_name", "cut_wav"]

#: Sample formats WAV stores as they are (anything else is written as 32-bit float).
_WAV_SUBTYPES = frozenset({"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW",
                           "ALAW"})
#: An 8-bit signed source (AIFF, FLAC) becomes unsigned 8-bit: WAV's only 8-bit PCM.
_WAV_EQUIVALENT = {"PCM_S8": "PCM_U8"}
#: A span may end this far past the file's last frame (a region's end, rounded at the model's
#: rate, can land a fraction of a frame beyond it); it is cut at the last frame.
_END_SLACK_S = 1e-3
#: RIFF sizes are 32-bit: a cut larger than this is written as RF64 (WAV with 64-bit sizes).
_RIFF_LIMIT = 2**32 - 2**20
_BLOCK_FRAMES = 1 << 17


def cut_name(path: str | os.PathLike, start: float, end: float) -> str:
    """The file name of a cut: ``<stem>_<start>-<end>.wav``, seconds to two decimals.

    Example:
        >>> cut_name("/sfx/rain.flac", 12.345, 13.1)
        'rain_12.35-13.10.wav'
    """
    stem = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    return f"{stem}_{_seconds(start, 'start'):.2f}-{_seconds(end, 'end'):.2f}.wav"


def cut_wav(path: str | os.PathLike, start: float, end: float) -> bytes:
    """The frames of ``path`` from ``start`` to ``end`` seconds as WAV bytes, at the file's
    rate and channel count, in its sample format where WAV can hold it (see the module).

    Raises:
        ParameterError: ``start >= end``, or the span outside the file (both named with the
            file's length).
        AudioError: the file cannot be read (named, with why).

    Example:
        >>> data = cut_wav("data/demo/kenney/explosion1.wav", 0.1, 0.35)  # doctest: +SKIP
        >>> data[:4], data[8:12]  # doctest: +SKIP
        (b'RIFF', b'WAVE')
    """
    import soundfile as sf

    label = os.fspath(path)
    start, end = _seconds(start, "start"), _seconds(end, "end")
    if start >= end:
        raise ParameterError(f"{label!r}: a cut needs start < end, got start {start:g} s and "
                             f"end {end:g} s")
    meta = info(label)
    if start < 0 or end > meta.duration + _END_SLACK_S:
        raise ParameterError(f"{label!r}: the span {start:g}-{end:g} s is outside the file "
                             f"(0-{meta.duration:.3f} s)")
    first = min(round(start * meta.sample_rate), meta.frames)
    last = min(round(end * meta.sample_rate), meta.frames)
    if last <= first:
        raise ParameterError(f"{label!r}: the span {start:g}-{end:g} s holds no whole frame at "
                             f"{meta.sample_rate} Hz")
    subtype = _WAV_EQUIVALENT.get(meta.subtype, meta.subtype)
    subtype = subtype if subtype in _WAV_SUBTYPES else "FLOAT"
    out = io.BytesIO()
    container = ("RF64" if (last - first) * meta.channels * _bytes_per_sample(subtype)
                 > _RIFF_LIMIT else "WAV")
    # Integer samples are copied as integers (no float round trip); the rest as float64.
    dtype = "int32" if subtype.startswith("PCM_") else "float64"
    try:
        with sf.SoundFile(label) as source, sf.SoundFile(
                out, "w", meta.sample_rate, meta.channels, subtype=subtype,
                format=container) as cut:
            source.seek(first)
            remaining = last - first
            while remaining > 0:
                block = source.read(min(_BLOCK_FRAMES, remaining), dtype=dtype, always_2d=True)
                if not len(block):
                    break
                cut.write(block)
                remaining -= len(block)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{label!r}: cannot cut {start:g}-{end:g} s ({exc})") from None
    if remaining == last - first:
        raise AudioError(f"{label!r}: no audio could be read from {start:g} s (truncated?)")
    return out.getvalue()


def _seconds(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)
                                                 ) or not math.isfinite(value):
        raise ParameterError(f"a cut's {what} must be a finite number of seconds, got {value!r}")
    return float(value)


def _bytes_per_sample(subtype: str) -> int:
    return {"PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3, "DOUBLE": 8}.get(
        subtype, 4)
