"""How the app shows numbers to people: durations, the duration slider's log scale, similarity
in percent, a library's title. No widgets and no state here."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..library import Library

__all__ = ["ASPECT_LABELS", "DurationRange", "DurationScale", "format_duration", "library_title",
           "similarity_percent"]

DurationRange = tuple[float | None, float | None]
#: Slider label and tooltip of each aspect (what it means to a listener).
ASPECT_LABELS = {
    "cnn": ("overall", "overall character: what the sound-effects CNN hears (source, texture)"),
    "timbre": ("timbre", "tone colour: MFCCs and how they move"),
    "spectrum": ("spectrum", "brightness, noisiness and the balance of low and high bands"),
    "envelope": ("envelope", "length, attack, decay and rhythm of the loudness over time"),
}


@dataclass(frozen=True)
class DurationScale:
    """A log scale over the library's durations, for a range slider usable at both ends
    (a 0.05 s click and a 10-minute ambience in one library).

    Slider positions are ``log10(seconds)``; a position at either end means "no limit".

    Example:
        >>> scale = DurationScale.of([0.05, 1.0, 600.0])
        >>> scale.seconds(scale.position(2.0))
        2.0
        >>> scale.to_range((scale.low, scale.position(10.0)))
        (None, 10.0)
    """

    low: float
    high: float

    @classmethod
    def of(cls, durations_s) -> DurationScale:
        """The scale spanning ``durations_s`` (padded a little so its ends are not rows)."""
        values = np.asarray(durations_s, dtype=np.float64)
        values = values[np.isfinite(values) & (values > 0)]
        shortest, longest = (values.min(), values.max()) if len(values) else (0.1, 1.0)
        low, high = math.log10(shortest) - 0.01, math.log10(longest) + 0.01
        if high - low < 0.1:  # one duration, or all nearly the same
            low, high = low - 0.05, high + 0.05
        return cls(low=low, high=high)

    @property
    def step(self) -> float:
        return (self.high - self.low) / 500

    def position(self, seconds: float) -> float:
        return min(max(math.log10(seconds), self.low), self.high)

    def seconds(self, position: float) -> float:
        return float(f"{10 ** position:.3g}")

    def to_range(self, positions: tuple[float, float]) -> DurationRange:
        """Slider positions → ``(min_s, max_s)``, ``None`` where a handle is at its end."""
        low, high = positions
        tolerance = self.step / 2
        return (None if low <= self.low + tolerance else self.seconds(low),
                None if high >= self.high - tolerance else self.seconds(high))

    def to_positions(self, duration: DurationRange) -> tuple[float, float]:
        low, high = duration
        return (self.low if low is None else self.position(low),
                self.high if high is None else self.position(high))


def format_duration(seconds: float | None) -> str:
    """Seconds as people read them: ``0.05 s``, ``1.6 s``, ``42 s``, ``10 min``, ``1 h 05 min``.

    Example:
        >>> format_duration(0.05), format_duration(95), format_duration(600)
        ('0.05 s', '1 min 35 s', '10 min')
    """
    if seconds is None:
        return "any"
    if seconds < 10:
        return f"{seconds:.2g} s" if seconds < 1 else f"{seconds:.3g} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def similarity_percent(similarity: float) -> int:
    """A result's similarity as people read it: 100 (%) for the same sound, 0 for a sound
    unrelated to the query, or further from it than that.

    Example:
        >>> similarity_percent(0.873), similarity_percent(1.0), similarity_percent(-0.31)
        (87, 100, 0)
    """
    # The similarity is a weighted mean of cosines in the library's centred space, the weights
    # taken as shares: 1 is the same sound at any weighting, 0 no more alike than the library's
    # sounds are on average. Below 0 a sound is further from the query than a typical one, which
    # tells a listener nothing more than "unrelated", so the scale stops at 0; the exact value
    # stays in state.results and in the cell's tooltip.
    if not math.isfinite(similarity):
        return 0
    return round(100 * min(max(float(similarity), 0.0), 1.0))


def library_title(library: Library) -> str:
    """``demo.parquet: 56 sounds, aisfx-ismir2022`` (for headings)."""
    where = os.path.basename(library.path) if library.path else "in-memory library"
    return f"{where}: {len(library)} sounds, {library.embedder_id}"
