"""Are two files the same recording? The audio check behind near-duplicate groups.

Distinct takes of one sound can sit as close as copies in embedding space, so a candidate pair
is confirmed on the signals themselves: both decoded to mono at one low common rate, then the
peak of their normalised cross-correlation over a small window of lags. A copy that went
through an MP3 or Ogg round trip, a resampling, a gain change, a few milliseconds of trimming
or a mono/stereo conversion keeps a peak near 1; another take, even of the same kind of sound,
does not line up sample by sample and stays far below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import ParameterError

__all__ = ["Match", "MatchSettings", "correlation", "decode_for_match"]

_TAPS = 16  # half-width of the interpolation kernel between integer lags


@dataclass(frozen=True)
class MatchSettings:
    """How two recordings are compared.

    Args:
        sample_rate: the common rate both are decoded to (Hz). Measured on renderings of the
            demo sounds (benchmarks/organise.py): copies' lowest correlation 0.937 at 8 kHz,
            0.968 at 16 kHz, 0.965 at 22.05 kHz; distinct takes' highest 0.893, 0.876, 0.876.
        max_seconds: compare at most this much from the start of each file (bounds the cost of
            long files; a copy differs from its source from the first seconds on or not at all).
        max_lag_s: how far one signal may be shifted against the other (trimmed starts, codec
            delays of MP3 encoders).
        upsample: round the peak, the correlation is also evaluated at this many fractions
            of a sample, so a fractional-sample offset does not lower it.
        min_correlation: the correlation at or above which two files are the same recording
            (between those two measured values).
        min_overlap: the share of each file's energy that must lie in the part both share (a
            short sound that matches a piece of a long one is not its copy).
        low_band_hz, min_low_band_correlation, min_low_band_share: a second chance for a pair
            that fails ``min_correlation``: the same measure below ``low_band_hz`` only, where
            low-bitrate MP3s keep noisy sounds (rumbles, machines) that they garble above it;
            it counts when both files hold at least ``min_low_band_share`` of their energy
            there. Distinct takes of the demo sounds reach 0.939 in that band (copies failing
            the full band: 0.96-0.99 in lincity-ng's 11/22 kHz MP3s), hence 0.96.

    Example:
        >>> MatchSettings().min_correlation
        0.92
    """

    sample_rate: int = 16000
    max_seconds: float = 30.0
    max_lag_s: float = 0.25
    upsample: int = 4
    min_correlation: float = 0.92
    min_overlap: float = 0.5
    low_band_hz: float = 2000.0
    min_low_band_correlation: float = 0.96
    min_low_band_share: float = 0.2

    def __post_init__(self) -> None:
        if not (isinstance(self.sample_rate, int) and 1000 <= self.sample_rate <= 48000):
            raise ParameterError(f"sample_rate must be an int in [1000, 48000], got "
                                 f"{self.sample_rate!r}")
        for name in ("max_seconds", "max_lag_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ParameterError(f"{name} must be a number > 0, got {value!r}")
        if not (isinstance(self.upsample, int) and 1 <= self.upsample <= 16):
            raise ParameterError(f"upsample must be an int in [1, 16], got {self.upsample!r}")
        if not 0 < float(self.min_correlation) <= 1:
            raise ParameterError(f"min_correlation must be in (0, 1], got "
                                 f"{self.min_correlation!r}")
        if not 0 <= float(self.min_overlap) <= 1:
            raise ParameterError(f"min_overlap must be in [0, 1], got {self.min_overlap!r}")
        if not 0 < float(self.low_band_hz) <= self.sample_rate / 2:
            raise ParameterError(f"low_band_hz must be in (0, {self.sample_rate / 2}], got "
                                 f"{self.low_band_hz!r}")
        for name in ("min_low_band_correlation", "min_low_band_share"):
            if not 0 <= float(getattr(self, name)) <= 1:
                raise ParameterError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")


def decode_for_match(path: str | os.PathLike, settings: MatchSettings) -> np.ndarray:
    """The mono waveform ``correlation`` compares: ``settings.sample_rate``, at most
    ``max_seconds``, mean removed. Raises :class:`~soundslike_nb.errors.AudioError`.

    Example:
        >>> decode_for_match("data/demo/kenney/coin1.wav", MatchSettings()).dtype
        dtype('float32')
    """
    from .audio import load

    waveform, _ = load(path, sample_rate=settings.sample_rate, max_duration=settings.max_seconds)
    return (waveform - waveform.mean()).astype(np.float32)


@dataclass(frozen=True)
class Match:
    """How well two recordings line up.

    ``correlation``: normalised cross-correlation over the part they share, at the best lag
    (1.0 for the same signal whatever its gain or polarity, ~0 for unrelated ones, 0.0 when
    either is silent); ``lag_s``: that lag in seconds (positive: the second starts later in
    the recording, i.e. it was trimmed at the start); ``overlap``: the smaller share of either
    signal's energy inside the shared part (1.0 unless one is cut); ``low_band``: the
    correlation below ``settings.low_band_hz`` (NaN when the full band passed, or the low band
    holds too little of either file's energy).
    """

    correlation: float
    lag_s: float
    overlap: float
    low_band: float = float("nan")

    def same_recording(self, settings: MatchSettings) -> bool:
        """Whether the two are copies of one recording by ``settings``' thresholds."""
        if self.overlap < settings.min_overlap:
            return False
        return (self.correlation >= settings.min_correlation
                or self.low_band >= settings.min_low_band_correlation)


def correlation(first: np.ndarray, second: np.ndarray, settings: MatchSettings) -> Match:
    """Line up two waveforms (from :func:`decode_for_match`) and measure how alike they are.

    The lag is the peak of their cross-correlation within ``settings.max_lag_s``
    (interpolated ``settings.upsample`` times between samples); the correlation is then
    normalised by the energies of the overlapping parts, so a copy with a few milliseconds
    trimmed still scores ~1. A pair below ``min_correlation`` is measured again below
    ``low_band_hz`` (``Match.low_band``).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> noise = rng.standard_normal(8000).astype(np.float32)
        >>> match = correlation(noise, -0.5 * noise[80:], MatchSettings())
        >>> round(match.correlation, 3), match.lag_s, round(match.overlap, 3)
        (1.0, 0.005, 0.991)
        >>> correlation(noise, rng.standard_normal(8000), MatchSettings()).correlation < 0.2
        True
    """
    first = np.asarray(first, np.float64)
    second = np.asarray(second, np.float64)
    match = _aligned(first, second, settings)
    if match.same_recording(settings) or match.overlap < settings.min_overlap:
        return match
    low_first, low_second = (_low_band(signal, settings) for signal in (first, second))
    shares = [_share(low, signal) for low, signal in ((low_first, first), (low_second, second))]
    if min(shares) < settings.min_low_band_share:
        return match
    low = _aligned(low_first, low_second, settings)
    return Match(match.correlation, match.lag_s, match.overlap, low.correlation)


def _low_band(signal: np.ndarray, settings: MatchSettings) -> np.ndarray:
    from scipy.fft import irfft, next_fast_len, rfft

    size = next_fast_len(len(signal), real=True)
    spectrum = rfft(signal, size)
    spectrum[np.fft.rfftfreq(size, 1 / settings.sample_rate) > settings.low_band_hz] = 0
    return irfft(spectrum, size)[:len(signal)]


def _share(part: np.ndarray, whole: np.ndarray) -> float:
    total = float(np.dot(whole, whole))
    return float(np.dot(part, part)) / total if total > 0 else 0.0


def _aligned(first: np.ndarray, second: np.ndarray, settings: MatchSettings) -> Match:
    """Full-band alignment and correlation (see :func:`correlation`)."""
    energy_first, energy_second = float(np.dot(first, first)), float(np.dot(second, second))
    if not (energy_first > 0 and energy_second > 0):
        return Match(0.0, 0.0, 0.0)
    from scipy.fft import irfft, next_fast_len, rfft

    reach = min(round(settings.max_lag_s * settings.sample_rate),
                max(len(first), len(second)))
    # Long enough that no lag within reach wraps round; a size FFTs are fast at.
    size = next_fast_len(max(len(first), len(second)) + reach + 1, real=True)
    spectrum = rfft(first, size) * np.conj(rfft(second, size))
    dense = irfft(spectrum, size)
    # dense[m] is sum_n first[n + m] * second[n]: lags m > 0 (second trimmed at the start) sit
    # at the front, negative lags wrap round to the back.
    lags = np.arange(-reach, reach + 1)
    window = dense[lags]
    # Normalise each lag by the energies of the parts that overlap there, so that a trimmed
    # copy scores ~1 at its true lag (and a periodic sound cannot win at the wrong one).
    shared_first = _shared_energy(first, lags, len(second))
    shared_second = _shared_energy(second, -lags, len(first))
    overlap = np.minimum(shared_first / energy_first, shared_second / energy_second)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.abs(window) / np.sqrt(shared_first * shared_second)
    values[~(overlap >= settings.min_overlap) | ~np.isfinite(values)] = 0.0
    best = int(np.argmax(values))
    if values[best] <= 0:
        return Match(0.0, 0.0, float(overlap[best]))
    # Between samples: the band-limited correlation at fractions of a sample round the peak,
    # so that a copy offset by half a sample (a resampled or trimmed one) is not marked down.
    offsets = np.linspace(-1, 1, 2 * settings.upsample + 1)
    taps = np.arange(-_TAPS, _TAPS + 1)
    around = dense[(lags[best] + taps) % size]
    # A Hann-windowed sinc over the integer lags: the band-limited value between samples.
    kernel = np.sinc(offsets[:, None] - taps[None, :]) * np.cos(
        np.pi * (offsets[:, None] - taps[None, :]) / (2 * _TAPS + 2)) ** 2
    refined = np.abs(kernel @ around)
    fractions = lags[best] + offsets
    finest = int(np.argmax(refined))
    value = max(float(refined[finest]), abs(float(window[best])))
    value /= np.sqrt(shared_first[best] * shared_second[best])
    lag_s = float(fractions[finest] if refined[finest] >= abs(window[best]) else lags[best])
    return Match(float(min(value, 1.0)), lag_s / settings.sample_rate, float(overlap[best]))


def _shared_energy(signal: np.ndarray, shifts: np.ndarray, other_length: int) -> np.ndarray:
    """Energy of ``signal[shift : shift + other_length]`` (clipped to the signal) per shift."""
    cumulative = np.concatenate([[0.0], np.cumsum(signal * signal)])
    start = np.clip(shifts, 0, len(signal))
    stop = np.clip(shifts + other_length, 0, len(signal))
    return np.maximum(cumulative[stop] - cumulative[start], 0.0)


