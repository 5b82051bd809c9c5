"""Regions inside a long recording: where its events start and end.

A long file (an ambience, a Foley take, a field recording) holds many sounds; a region is one
of them, or a window of it where the sound goes on. :func:`find_regions` cuts a waveform in
three steps, with librosa's RMS and onset tools:

1. **silence**: frames more than ``silence_db`` below the file's loudest frame are silence;
   sounding spans closer than ``min_gap_s`` are joined;
2. **events**: each sounding span is cut at its onsets (the strongest of any that are closer
   than ``min_region_s``, backtracked so that a region starts where its sound starts); a piece
   shorter than ``min_region_s`` joins the one before it;
3. **continuous sound**: a piece longer than ``max_region_s`` becomes overlapping windows of
   that length, ``window_hop_s`` apart, the first starting at its onset.

A file no longer than ``min_file_s`` gets no regions (it is one already); a silent one neither.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .errors import ParameterError

__all__ = ["REGIONS_VERSION", "RegionSettings", "find_regions"]

#: Bumped when the same settings would cut regions differently (recorded with the regions).
REGIONS_VERSION = 1
_HOP = 512
_FRAME = 2048


@dataclass(frozen=True)
class RegionSettings:
    """How long files are cut into regions (recorded in the library's provenance).

    Args:
        min_file_s: files up to this long get no regions.
        silence_db: frames this far below the loudest frame are silence.
        min_gap_s: sounding spans closer than this are one span.
        min_region_s: a piece shorter than this joins the piece before it.
        max_region_s: a longer piece becomes windows of this length.
        window_hop_s: the step between those windows.
        min_onset_z: an onset counts when its strength stands this many median absolute
            deviations above the file's median (measured on seeded beds: planted hits at 0 dB
            SNR stand 28-37 out, the bed's own peaks 3-5, a steady tone's under 2).

    Example:
        >>> RegionSettings(max_region_s=3.0).record()["max_region_s"]
        3.0
    """

    min_file_s: float = 4.0
    silence_db: float = 40.0
    min_gap_s: float = 0.25
    min_region_s: float = 0.5
    max_region_s: float = 4.0
    window_hop_s: float = 2.0
    min_onset_z: float = 8.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ParameterError(f"RegionSettings.{name} must be a number >= 0, "
                                     f"got {value!r}")
        if not 0 < self.min_region_s <= self.max_region_s:
            raise ParameterError(f"RegionSettings needs 0 < min_region_s <= max_region_s, got "
                                 f"{self.min_region_s!r} and {self.max_region_s!r}")
        if not 0 < self.window_hop_s <= self.max_region_s:
            raise ParameterError(f"RegionSettings needs 0 < window_hop_s <= max_region_s, got "
                                 f"{self.window_hop_s!r} and {self.max_region_s!r}")

    def record(self) -> dict[str, Any]:
        """The settings as stored in a library file, with the segmentation's version."""
        return {**{name: float(value) for name, value in asdict(self).items()},
                "version": REGIONS_VERSION}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RegionSettings:
        """The settings a library file recorded (:meth:`record`).

        Example:
            >>> RegionSettings.from_record(RegionSettings(max_region_s=3).record()).max_region_s
            3.0
        """
        names = set(cls.__dataclass_fields__)
        return cls(**{name: float(value) for name, value in record.items() if name in names})


def find_regions(waveform: np.ndarray, sample_rate: int, *,
                 settings: RegionSettings | None = None) -> np.ndarray:
    """The regions of a mono waveform: an ``(n, 2)`` float64 array of (start, end) in seconds,
    in time order (windows of one continuous sound overlap).

    Example:
        >>> rate = 22050
        >>> silence, burst = np.zeros(2 * rate), np.random.default_rng(0).normal(size=rate)
        >>> waveform = np.concatenate([silence, burst, silence, burst, silence]).astype("f4")
        >>> find_regions(waveform, rate).round(1).tolist()
        [[2.0, 3.0], [5.0, 6.0]]
    """
    settings = settings if settings is not None else RegionSettings()
    samples = np.asarray(waveform, dtype=np.float32).reshape(-1)
    if sample_rate <= 0:
        raise ParameterError(f"sample_rate must be > 0, got {sample_rate!r}")
    duration_s = len(samples) / sample_rate
    if duration_s <= settings.min_file_s or not np.isfinite(samples).all():
        return np.zeros((0, 2))
    import librosa

    rms = librosa.feature.rms(y=samples, frame_length=_FRAME, hop_length=_HOP, center=True)[0]
    loudest = float(rms.max()) if len(rms) else 0.0
    if loudest <= 1e-6:  # -120 dBFS: silence
        return np.zeros((0, 2))
    sounding = 20 * np.log10(np.maximum(rms, 1e-12) / loudest) > -settings.silence_db
    frame_s = _HOP / sample_rate
    spans = _joined(_runs(sounding), gap=max(1, round(settings.min_gap_s / frame_s)))
    onsets = _strongest_onsets(samples, sample_rate, settings)
    regions: list[tuple[float, float]] = []
    level = loudest * 10 ** (-settings.silence_db / 20)
    for first, last in spans:
        start_s, end_s = _edges(samples, first, last, level, sample_rate)
        inside = [frame * frame_s for frame in onsets if first < frame < last]
        for piece_start, piece_end in _pieces(start_s, end_s, inside, settings):
            event_end = _event_end(rms, piece_start, piece_end, frame_s, settings)
            regions.extend(_windows(piece_start, event_end, settings))
            if piece_end - event_end >= settings.min_region_s:  # the sound that goes on
                regions.extend(_windows(event_end, piece_end, settings))
    return np.asarray(regions, dtype=np.float64).reshape(-1, 2)


def _event_end(rms: np.ndarray, start_s: float, end_s: float, frame_s: float,
               settings: RegionSettings) -> float:
    """Where the event starting at ``start_s`` has faded: the first frame, at least
    ``min_region_s`` and at most ``max_region_s`` after it, whose RMS is back within 3 dB of
    the second before the onset (the bed it rose from) or 25 dB under the event's peak;
    ``end_s`` when it does not fade before then (a continuous sound: windows).

    Measured on seeded beds (benchmarks/regions.py): without it, an event in a continuous bed
    ran on to the next onset or ``max_region_s``, and a 0.2 s hit in a 4 s region sounded like
    the bed (planted-region recall@5 0.46 at 0 dB SNR)."""
    onset = round(start_s / frame_s)
    last = min(round(end_s / frame_s), onset + int(settings.max_region_s / frame_s),
               len(rms))
    first = onset + max(1, round(settings.min_region_s / frame_s))
    if first >= last:
        return end_s
    before = rms[max(0, onset - round(1.0 / frame_s)):onset]
    bed = float(np.median(before)) if len(before) else 0.0
    peak = float(rms[onset:last].max())
    threshold = max(bed * 10 ** (3 / 20), peak * 10 ** (-25 / 20))
    faded = np.flatnonzero(rms[first:last] <= threshold)
    return end_s if not len(faded) else min(end_s, (first + int(faded[0])) * frame_s)


def _strongest_onsets(samples: np.ndarray, sample_rate: int,
                      settings: RegionSettings) -> np.ndarray:
    """Onset frames, strongest first kept, none within ``min_region_s`` of a stronger one
    (a weak onset just before a strong one must not take its place; measured: in a noise bed
    at 0 dB SNR, keeping the first of two close onsets started half the planted events 0.3 to
    0.9 s early, keeping the strongest starts all within 0.02 s), each moved back to the
    minimum of the onset strength before it; in time order."""
    import librosa

    strength = librosa.onset.onset_strength(y=samples, sr=sample_rate, hop_length=_HOP)
    # Peaks of the envelope that stand out of the file's own envelope (robust z-score: median
    # and MAD), so that a steady sound has no onsets. (librosa's onset_detect normalises the
    # envelope, finds onsets in a steady tone, and its ``wait`` can keep the frame before a
    # hit's peak instead of the peak.)
    middle = float(np.median(strength))
    spread = float(np.median(np.abs(strength - middle))) or 1e-12
    rising = np.concatenate([[True], strength[1:] >= strength[:-1]])
    falling = np.concatenate([strength[:-1] > strength[1:], [True]])
    peaks = np.flatnonzero(rising & falling
                           & ((strength - middle) / spread >= settings.min_onset_z))
    spacing = settings.min_region_s * sample_rate / _HOP
    kept: list[int] = []
    for peak in sorted(peaks.tolist(), key=lambda frame: -strength[frame]):
        if all(abs(peak - other) >= spacing for other in kept):
            kept.append(peak)
    if not kept:
        return np.zeros(0, dtype=np.int64)
    return np.unique(librosa.onset.onset_backtrack(np.sort(kept), strength))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, end) frame of each run of True in ``mask``, end exclusive."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _edges(samples: np.ndarray, first: int, end: int, level: float, sample_rate: int
           ) -> tuple[float, float]:
    """A sounding span's start and end in seconds, to the sample: the first and last sample
    louder than ``level`` near its first and last frame (a centred frame hears a sound half a
    frame before it starts and after it ends)."""
    low = max(0, first * _HOP - _FRAME)
    head = np.flatnonzero(np.abs(samples[low:first * _HOP + _FRAME]) > level)
    start = low + int(head[0]) if len(head) else first * _HOP
    high = min(len(samples), end * _HOP + _FRAME)
    tail_low = max(start, end * _HOP - 2 * _FRAME)
    tail = np.flatnonzero(np.abs(samples[tail_low:high]) > level)
    stop = tail_low + int(tail[-1]) + 1 if len(tail) else min(end * _HOP, len(samples))
    return start / sample_rate, stop / sample_rate


def _joined(runs: list[tuple[int, int]], *, gap: int) -> list[tuple[int, int]]:
    joined: list[tuple[int, int]] = []
    for first, end in runs:
        if joined and first - joined[-1][1] < gap:
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((first, end))
    return joined


def _pieces(start_s: float, end_s: float, onsets_s: list[float],
            settings: RegionSettings) -> list[tuple[float, float]]:
    """A sounding span cut at its onsets; a piece too short joins the one before it (the
    first one, the one after it); a span shorter than ``min_region_s`` is dropped."""
    if end_s - start_s < settings.min_region_s:
        return []
    cuts = [start_s] + [onset for onset in onsets_s
                        if start_s + settings.min_region_s <= onset
                        <= end_s - settings.min_region_s] + [end_s]
    pieces: list[list[float]] = []
    for first, last in itertools.pairwise(cuts):
        short = last - first < settings.min_region_s
        if pieces and (short or pieces[-1][1] - pieces[-1][0] < settings.min_region_s):
            pieces[-1][1] = last
        else:
            pieces.append([first, last])
    return [(first, last) for first, last in pieces]


def _windows(start_s: float, end_s: float, settings: RegionSettings
             ) -> list[tuple[float, float]]:
    """A piece as it is, or, when longer than ``max_region_s``, overlapping windows of that
    length from its start, the last one ending at its end."""
    length = settings.max_region_s
    if end_s - start_s <= length:
        return [(start_s, end_s)]
    starts = np.arange(start_s, end_s - length, settings.window_hop_s).tolist()
    starts.append(end_s - length)
    return [(first, first + length) for first in starts]
