"""Regions inside a long recording: where its events start and end.

A long file (an ambience, a Foley take, a field recording) holds many sounds; a region is one
of them, or a window of it where the sound goes on. :func:`find_regions` cuts a waveform in
four steps, with librosa's RMS and onset tools:

1. **silence**: frames more than ``silence_db`` below the file's loudest frame are silence;
   sounding spans closer than ``min_gap_s`` are joined;
2. **events**: each sounding span is cut at its onsets (peaks of the onset strength standing
   ``min_onset_z`` robust deviations out of the file's sounding frames, the strongest of any
   closer than ``onset_gap_s``, backtracked so that a region starts where its sound starts);
3. **tight ends**: each event's region ends where it has faded back into the bed (at least
   ``min_event_s`` after its onset, quiet for ``fade_hold_s``), so a short hit is not diluted
   by the bed after it; an event that fades with the bed still sounding also gets a region of
   ``event_scale_s`` from its onset (a second scale: an event whose later part sinks under the
   bed is still whole in it);
4. **continuous sound**: what goes on after an event (``min_region_s`` or more), and an event
   longer than ``max_region_s``, become overlapping windows of that length, ``window_hop_s``
   apart.

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
REGIONS_VERSION = 3
_HOP = 512
_FRAME = 2048


@dataclass(frozen=True)
class RegionSettings:
    """How long files are cut into regions (recorded in the library's provenance).

    Args:
        min_file_s: files up to this long get no regions.
        silence_db: frames this far below the loudest frame are silence.
        min_gap_s: sounding spans closer than this are one span.
        min_region_s: sound going on this long after an event's end gets regions of its own
            (windows), and an event fading this long before the sound stops gets its
            ``event_scale_s`` region.
        max_region_s: a longer piece becomes windows of this length.
        window_hop_s: the step between those windows.
        min_onset_z: an onset counts when its strength stands this many median absolute
            deviations above the median of the file's sounding frames (measured on seeded
            beds: the bed's own peaks stand 3-5 out, a steady tone's under 2; a tonal coin at
            0 dB SNR in broadband noise 7.9; 8 lost it).
        min_event_s: the shortest event region (and the closest an onset may be to a
            sounding span's edges).
        onset_gap_s: of two onsets closer than this, only the stronger counts.
        fade_hold_s: an event has faded when it stays faded this long (one quiet frame between
            two notes is not its end).
        event_scale_s: the length of an event's second region, from its onset; 0: none.

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
    min_onset_z: float = 6.0
    min_event_s: float = 0.1
    onset_gap_s: float = 0.25
    fade_hold_s: float = 0.1
    event_scale_s: float = 1.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ParameterError(f"RegionSettings.{name} must be a number >= 0, "
                                     f"got {value!r}")
        if not 0 < self.min_region_s <= self.max_region_s:
            raise ParameterError(f"RegionSettings needs 0 < min_region_s <= max_region_s, got "
                                 f"{self.min_region_s!r} and {self.max_region_s!r}")
        if not (self.min_event_s > 0 and self.onset_gap_s > 0):
            raise ParameterError(f"RegionSettings needs min_event_s > 0 and onset_gap_s > 0, "
                                 f"got {self.min_event_s!r} and {self.onset_gap_s!r}")
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
    onsets = _strongest_onsets(samples, sample_rate, sounding, settings)
    regions: list[tuple[float, float]] = []
    level = loudest * 10 ** (-settings.silence_db / 20)
    for first, last in spans:
        start_s, end_s = _edges(samples, first, last, level, sample_rate)
        inside = [frame * frame_s for frame in onsets if first < frame < last]
        for piece_start, piece_end in _pieces(start_s, end_s, inside, settings):
            event_end = _event_end(rms, piece_start, piece_end, frame_s, settings)
            regions.extend(_windows(piece_start, event_end, settings))
            longer = min(piece_start + settings.event_scale_s, end_s)
            if longer - event_end >= settings.min_region_s:  # the event and the bed after it
                regions.append((piece_start, longer))
            # The whole event, its later onsets (crackle, a bounce) included, up to its fade:
            # an explosion with five onsets in 1.5 s was otherwise found by its middle second,
            # 0.3 s after it starts.
            whole_end = _event_end(rms, piece_start, end_s, frame_s, settings)
            if (whole_end - event_end >= settings.min_event_s
                    and abs(whole_end - longer) >= settings.min_event_s):
                regions.append((piece_start, whole_end))
            if piece_end - event_end >= settings.min_region_s:  # the sound that goes on
                regions.extend(_windows(event_end, piece_end, settings))
    spans_s = np.asarray(regions, dtype=np.float64).reshape(-1, 2)
    return spans_s[np.argsort(spans_s[:, 0], kind="stable")]


def _event_end(rms: np.ndarray, start_s: float, end_s: float, frame_s: float,
               settings: RegionSettings) -> float:
    """Where the event starting at ``start_s`` has faded: the first frame, at least
    ``min_event_s`` and at most ``max_region_s`` after it, from which the RMS stays for
    ``fade_hold_s`` within 3 dB of the second before the onset (the bed it rose from) or 25 dB
    under the event's peak; ``end_s`` when it does not fade before then (a continuous sound:
    windows).

    Measured on seeded beds (benchmarks/regions.py): without it, an event in a continuous bed
    ran on to the next onset or ``max_region_s``, and a 0.2 s hit in a 4 s region sounded like
    the bed (planted-region recall@5 0.46 at 0 dB SNR); a region of at least 0.5 s instead of
    0.1 s held a 0.12 s hit in four times its length of bed (0.67 against 0.81)."""
    onset = round(start_s / frame_s)
    last = min(round(end_s / frame_s), onset + int(settings.max_region_s / frame_s),
               len(rms))
    first = onset + max(1, round(settings.min_event_s / frame_s))
    if first >= last:
        return end_s
    before = rms[max(0, onset - round(1.0 / frame_s)):onset]
    bed = float(np.median(before)) if len(before) else 0.0
    peak = float(rms[onset:last].max())
    threshold = max(bed * 10 ** (3 / 20), peak * 10 ** (-25 / 20))
    quiet = rms[first:last] <= threshold
    hold = max(1, round(settings.fade_hold_s / frame_s))
    # a run of ``hold`` quiet frames (or the quiet frames up to ``last``) starts at each True
    runs = np.convolve(quiet.astype(np.int32), np.ones(hold, np.int32))[hold - 1:]
    tail = np.minimum(hold, len(quiet) - np.arange(len(quiet)))
    faded = np.flatnonzero(quiet & (runs >= tail))
    return end_s if not len(faded) else min(end_s, (first + int(faded[0])) * frame_s)


def _strongest_onsets(samples: np.ndarray, sample_rate: int, sounding: np.ndarray,
                      settings: RegionSettings) -> np.ndarray:
    """Onset frames, strongest first kept, none within ``onset_gap_s`` of a stronger one
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
    # Measured where the file sounds: in a file mostly of silence the envelope's median and
    # MAD are 0, and every ripple inside a sound would stand out.
    heard = strength[sounding[:len(strength)]] if sounding[:len(strength)].any() else strength
    middle = float(np.median(heard))
    spread = float(np.median(np.abs(heard - middle))) or 1e-12
    rising = np.concatenate([[True], strength[1:] >= strength[:-1]])
    falling = np.concatenate([strength[:-1] > strength[1:], [True]])
    peaks = np.flatnonzero(rising & falling
                           & ((strength - middle) / spread >= settings.min_onset_z))
    spacing = settings.onset_gap_s * sample_rate / _HOP
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
    """A sounding span cut at its onsets (none closer than ``min_event_s`` to its edges); a
    span shorter than ``min_event_s`` is dropped."""
    if end_s - start_s < settings.min_event_s:
        return []
    cuts = [start_s] + [onset for onset in onsets_s
                        if start_s + settings.min_event_s <= onset
                        <= end_s - settings.min_event_s] + [end_s]
    return list(itertools.pairwise(cuts))


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
