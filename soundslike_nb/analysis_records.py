"""What an analysis is made with and what it gives: :class:`AnalysisSettings` (recorded in a
library's provenance), the span a region query may ask for (:func:`check_span`), a sound's
:class:`SoundFeatures`, a file's :class:`Failure`, and the :class:`Batch` of decoded files
:meth:`~soundslike_nb.analysis.Analyzer.analyse_files` yields, with their waveform thumbnails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .audio import AudioInfo
from .descriptors import DESCRIPTOR_VERSION
from .errors import ParameterError
from .regions import Regions
from .scan import FileEntry
from .segmentation import RegionSettings

__all__ = ["SHORTEST_SPAN_S", "SILENCE_PEAK", "THUMBNAIL_BINS", "AnalysisSettings", "Batch",
           "Decoded", "Failure", "SoundFeatures", "check_span", "waveform_thumbnail"]

@dataclass(frozen=True)
class AnalysisSettings:
    """How sounds are analysed; recorded in a library's provenance and reused for its queries.

    Args:
        max_duration_s: analyse at most this many seconds from the start of a file (memory
            stays bounded; the duration column still holds the full length). ``None``: all.
        descriptor_version: the classic descriptors' version (``descriptors.DESCRIPTOR_VERSION``);
            a library recorded with another one is searched by its embedding alone.
        device: where the model and the descriptors run: ``"cpu"``, ``"cuda"``... or ``None``
            for a GPU when there is one. A per-machine choice: never taken from a file.
        regions: how files longer than ``regions.min_file_s`` are cut into regions, each
            analysed too (:class:`~soundslike_nb.segmentation.RegionSettings`, default its
            defaults); ``None``: no regions (a library recorded before regions has none).

    Example:
        >>> AnalysisSettings(max_duration_s=30).record()["max_duration_s"]
        30.0
    """

    max_duration_s: float | None = 600.0
    descriptor_version: str = DESCRIPTOR_VERSION
    device: str | None = None
    regions: RegionSettings | None = field(default_factory=RegionSettings)

    def __post_init__(self) -> None:
        limit = self.max_duration_s
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not (
                    math.isfinite(limit) and limit > 0):
                raise ParameterError(f"max_duration_s must be a number of seconds > 0 or None, "
                                     f"got {limit!r}")
            object.__setattr__(self, "max_duration_s", float(limit))
        if self.regions is not None and not isinstance(self.regions, RegionSettings):
            raise ParameterError(f"regions must be a RegionSettings or None, got "
                                 f"{self.regions!r}")

    def record(self) -> dict[str, Any]:
        """What a library file records (the device is a per-machine choice and is not); the
        regions' settings only where there are regions (files written before them match)."""
        record: dict[str, Any] = {"max_duration_s": self.max_duration_s,
                                  "descriptor_version": self.descriptor_version}
        if self.regions is not None:
            record["regions"] = self.regions.record()
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None, *,
                    device: str | None = None) -> AnalysisSettings:
        """The settings a library file recorded; a file written before they were recorded was
        analysed with the defaults of its time (600 s, descriptors version 1).

        Example:
            >>> AnalysisSettings.from_record(None).max_duration_s
            600.0
        """
        record = dict(record or {})
        regions = record.get("regions")
        return cls(max_duration_s=record.get("max_duration_s", 600.0),
                   descriptor_version=str(record.get("descriptor_version", "1")), device=device,
                   regions=None if not regions else RegionSettings.from_record(regions))


#: Peaks below this (-60 dBFS) are silence: such a query matches nothing in particular.
SILENCE_PEAK = 1e-3
#: Points of a sound's waveform thumbnail (its outline in a result row).
THUMBNAIL_BINS = 64


#: The shortest region of a file a query may be (50 ms: a click; shorter says nothing).
SHORTEST_SPAN_S = 0.05


def check_span(span: Any, length_s: float | None, *, name: str,
               shortest_s: float = SHORTEST_SPAN_S) -> tuple[float, float]:
    """``(start, end)`` in seconds of a region of a sound ``length_s`` long (``None``: not
    known yet), or a :class:`ParameterError` naming the sound and the values: start >= end,
    outside the sound, or shorter than ``shortest_s``.

    Example:
        >>> check_span((1, 2.5), 10.0, name="take.wav")
        (1.0, 2.5)
        >>> check_span((3, 2), 10.0, name="take.wav")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        soundslike_nb.errors.ParameterError: 'take.wav': a region must start before it ends...
    """
    try:
        start, end = (float(value) for value in span)
    except (TypeError, ValueError):
        raise ParameterError(f"{name!r}: a region is (start, end) in seconds, got {span!r}"
                             ) from None
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ParameterError(f"{name!r}: a region needs finite times, got {span!r}")
    if start < 0:
        raise ParameterError(f"{name!r}: a region cannot start before 0 s, got {start:g} s")
    if start >= end:
        raise ParameterError(f"{name!r}: a region must start before it ends, got start "
                             f"{start:g} s and end {end:g} s")
    if length_s is not None and end > length_s + 1e-3:
        raise ParameterError(f"{name!r}: the region {start:g}-{end:g} s ends after the sound "
                             f"({length_s:.3f} s long)")
    if end - start < shortest_s:
        raise ParameterError(f"{name!r}: the region {start:g}-{end:g} s is "
                             f"{(end - start) * 1000:.0f} ms long; the model needs at least "
                             f"{shortest_s * 1000:.0f} ms")
    return start, min(end, length_s) if length_s is not None else end


@dataclass(frozen=True)
class SoundFeatures:
    """What a search compares: a sound's embedding and its descriptors (``None`` when they are
    not computed), and the analysed waveform's peak (``None`` for a library's stored row)."""

    embedding: np.ndarray
    descriptors: np.ndarray | None = None
    peak: float | None = None

    @property
    def silent(self) -> bool:
        """Whether the analysed sound is silence (peak below -60 dBFS).

        Example:
            >>> SoundFeatures(np.ones(2), peak=0.0).silent, SoundFeatures(np.ones(2)).silent
            (True, False)
        """
        return self.peak is not None and self.peak < SILENCE_PEAK


@dataclass(frozen=True)
class Failure:
    """Why a file was not analysed. ``retry``: a passing failure (out of memory, an error
    inside the model) that the next build tries again; otherwise the file cannot be decoded,
    which is remembered while the file is unchanged."""

    reason: str
    retry: bool = False


@dataclass
class Decoded:
    """One file decoded to the model's rate (``waveform``), with its header facts."""

    entry: FileEntry
    info: AudioInfo
    waveform: np.ndarray


@dataclass
class Batch:
    """One step of :meth:`Analyzer.analyse_files`: analysed files with their embeddings and
    descriptors and waveform thumbnails (one row per item of ``decoded``), the regions of its
    long files when the settings ask for them, and failures (path → :class:`Failure`)."""

    decoded: list[Decoded] = field(default_factory=list)
    embeddings: np.ndarray | None = None
    descriptors: np.ndarray | None = None
    thumbnails: np.ndarray | None = None
    #: The regions of the long files of ``decoded`` (owners index ``decoded``).
    regions: Regions | None = None
    failures: dict[str, Failure] = field(default_factory=dict)
    audio_seconds: float = 0.0


def waveform_thumbnail(waveform: np.ndarray, *, bins: int = THUMBNAIL_BINS) -> np.ndarray:
    """A sound's outline for a result row: the peak of each of ``bins`` equal stretches of the
    waveform, as ``uint8`` with 255 at its loudest (all zeros for silence).

    Example:
        >>> waveform_thumbnail(np.array([0.0, 0.5, 0.0, 1.0], np.float32), bins=2)
        array([128, 255], dtype=uint8)
    """
    samples = np.abs(np.asarray(waveform, dtype=np.float32))
    if samples.size == 0:
        return np.zeros(bins, np.uint8)
    starts = np.linspace(0, samples.size, bins + 1)[:-1].astype(np.int64)
    peaks = np.maximum.reduceat(samples, np.minimum(starts, samples.size - 1))
    loudest = float(peaks.max())
    if loudest < SILENCE_PEAK:
        return np.zeros(bins, np.uint8)
    return np.round(255.0 * peaks / loudest).astype(np.uint8)
