"""Classic audio descriptors, grouped by what a listener hears: timbre, spectrum, envelope.

:func:`describe` turns decoded waveforms (the ones the embedder gets, in the same batch) into
one float32 row of :data:`FEATURE_NAMES` per sound. Spectral frames of all sounds in a batch share
one FFT call (torch), so many short sounds cost a few large operations, not many small ones.

- **timbre**: 13 MFCCs (c1-c13; c0, the level, is left out) and their deltas (slope over
  +-2 frames), each as mean and standard deviation over time;
- **spectrum**: centroid, bandwidth and roll-off (85 %) in octaves, flatness (log10), zero-crossing
  rate and contrast in 7 octave bands (dB), each as mean and standard deviation;
- **envelope**: log duration, log active duration (time above -20 dB of the peak), log attack
  time (20 % → 90 % of the peak), log decay time (last time above 80 % → last time above 10 %),
  the moments of the RMS envelope over time (centroid and spread as fractions of the duration,
  skewness, log kurtosis), onsets per second and the crest factor (peak / RMS, dB).

Time statistics are weighted by each frame's RMS amplitude, so that silence before and after a
sound does not count; a sound longer than a minute is described from five evenly spaced 12 s
excerpts (envelope descriptors from all of it), so the cost per sound stays bounded. Floors are
relative to the sound's own peak, so no descriptor changes when a sound is made louder (level is
left out on purpose: libraries are normalised every which way), and silence, a single sample or
ten minutes of audio all give finite values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from .errors import ParameterError

__all__ = ["ASPECTS", "ASPECT_SLICES", "DESCRIPTOR_VERSION", "FEATURE_NAMES", "describe",
           "fill_block"]

#: Bump when any descriptor's definition changes: stored descriptors of another version are stale.
DESCRIPTOR_VERSION = "1"

N_MFCC = 13
N_MELS = 64
CONTRAST_EDGES_HZ = (0.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0)
_SPECTRUM_FRAME = ("centroid", "bandwidth", "flatness", "rolloff", "zcr",
                   *(f"contrast{band}" for band in range(len(CONTRAST_EDGES_HZ))))
_ENVELOPE = ("log_duration", "log_active_duration", "log_attack", "log_decay", "env_centroid",
             "env_spread", "env_skewness", "env_log_kurtosis", "onset_rate", "crest_db")
_TIMBRE = tuple(f"{stat}{k}_{moment}" for stat in ("mfcc", "dmfcc") for moment in ("mean", "std")
                for k in range(1, N_MFCC + 1))

#: Aspect name → the names of its descriptors, in column order.
ASPECTS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "timbre": _TIMBRE,
    "spectrum": tuple(f"{name}_{moment}" for moment in ("mean", "std") for name in _SPECTRUM_FRAME),
    "envelope": _ENVELOPE,
})
#: Every descriptor's name, in the column order of :func:`describe`'s output.
FEATURE_NAMES: tuple[str, ...] = tuple(name for names in ASPECTS.values() for name in names)


def _slices() -> Mapping[str, slice]:
    slices, start = {}, 0
    for aspect, names in ASPECTS.items():
        slices[aspect] = slice(start, start + len(names))
        start += len(names)
    return MappingProxyType(slices)


#: Aspect name → its columns in :func:`describe`'s output.
ASPECT_SLICES: Mapping[str, slice] = _slices()

_CHUNK_FRAMES = 2048   # frames per FFT call: ~17 MB of float32 at n_fft 2048
_SEGMENT_FRAMES = 512   # a long sound is analysed in pieces of this many frames (12 s)...
_MAX_SEGMENTS = 5       # ...and at most this many of them (60 s), evenly spread
_TOP_DB = 80.0         # spectra are floored this far below a full-scale tone at the sound's peak
_DELTA_REACH = 2       # delta = regression slope over +-2 frames (+-46 ms)
_ONSET_MAX_REACH = 2   # an onset is the largest flux within +-2 frames (46 ms)...
_ONSET_MEAN_REACH = 4  # ...and _ONSET_DB above the mean flux within +-4 frames (93 ms)
_ONSET_DB = 4.0


class _Frames:
    """Framing parameters for one sample rate (46 ms windows every 23 ms, at any rate)."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.n_fft = 2 ** max(6, round(math.log2(0.0464 * sample_rate)))
        self.hop = self.n_fft // 2
        self.envelope_block = max(1, round(sample_rate / 344.5))  # ~2.9 ms


def describe(waveforms: Sequence[np.ndarray], sample_rate: int, *,
             device: str | None = None) -> np.ndarray:
    """Describe mono waveforms → (n, len(FEATURE_NAMES)) float32, columns as in :data:`ASPECTS`.

    Args:
        waveforms: mono float waveforms (any length >= 1), e.g. the embedder's batch.
        sample_rate: their rate in Hz (every descriptor is in seconds or Hz, so any rate works).
        device: torch device for the spectral part (default: the CPU).

    Example:
        >>> rows = describe([np.ones(4410, np.float32)], 44100)
        >>> rows.shape, bool(np.isfinite(rows).all())
        ((1, 86), True)
    """
    if sample_rate < 1000:
        raise ParameterError(f"sample_rate must be >= 1000 Hz, got {sample_rate}")
    sounds = []
    for position, waveform in enumerate(waveforms):
        array = np.asarray(waveform, dtype=np.float32)
        if array.ndim != 1 or array.size == 0:
            raise ParameterError(
                f"waveform {position}: expected a non-empty mono array, got shape {array.shape}")
        sounds.append(np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0))
    rows = np.zeros((len(sounds), len(FEATURE_NAMES)), np.float32)
    if not sounds:
        return rows
    frames = _Frames(sample_rate)
    spectral = _spectral(sounds, frames, device)
    envelope = np.stack([_envelope(sound, frames) for sound in sounds])
    onset_rate = spectral.pop("onsets") / np.array([len(s) / sample_rate for s in sounds])
    envelope[:, _ENVELOPE.index("onset_rate")] = np.log1p(onset_rate)
    rows[:, ASPECT_SLICES["timbre"]] = spectral["timbre"]
    rows[:, ASPECT_SLICES["spectrum"]] = spectral["spectrum"]
    rows[:, ASPECT_SLICES["envelope"]] = envelope
    return np.nan_to_num(rows, nan=0.0, posinf=0.0, neginf=0.0)


def _mel_filters(frames: _Frames) -> np.ndarray:
    """(bins, N_MELS) triangles evenly spaced in HTK mel from 20 Hz to Nyquist, unit area."""
    nyquist = frames.sample_rate / 2
    mel_edges = np.linspace(_hz_to_mel(20.0), _hz_to_mel(nyquist), N_MELS + 2)
    hz_edges = 700.0 * (10.0 ** (mel_edges / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(frames.n_fft, 1.0 / frames.sample_rate)
    low, centre, high = hz_edges[:-2], hz_edges[1:-1], hz_edges[2:]
    rising = (bins[:, None] - low) / (centre - low)
    falling = (high - bins[:, None]) / (high - centre)
    filters = np.clip(np.minimum(rising, falling), 0.0, None)
    return filters * (2.0 / (high - low))  # Slaney-style: equal area per band


def _hz_to_mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II, (n_in, n_out) columns k = 1..n_out (c0 dropped)."""
    k = np.arange(1, n_out + 1)
    n = np.arange(n_in)[:, None]
    return np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))


def _segments(sounds: list[np.ndarray], frames: _Frames, analysed: np.ndarray):
    """Yield chunks: (framed audio views, owner, frames, whether it starts its sound) per segment.

    A sound longer than _MAX_SEGMENTS segments is analysed in that many evenly spaced excerpts
    (time statistics settle long before; the cost per sound stays bounded). ``analysed`` gets
    the fraction of each sound's frames that were kept.
    """
    import torch
    from torch.nn import functional

    half = frames.n_fft // 2
    views, owners, lengths, firsts, total = [], [], [], [], 0
    for owner, sound in enumerate(sounds):
        padded = functional.pad(torch.from_numpy(sound)[None], (half, half))[0]
        framed = padded.unfold(0, frames.n_fft, frames.hop)  # a view: 1 + len // hop frames
        starts = range(0, len(framed), _SEGMENT_FRAMES)
        if len(starts) > _MAX_SEGMENTS:
            starts = [starts[i] for i in np.linspace(0, len(starts) - 1, _MAX_SEGMENTS).round()
                      .astype(int)]
        kept = 0
        for start in starts:
            piece = framed[start:start + _SEGMENT_FRAMES]
            if total + len(piece) > _CHUNK_FRAMES and views:
                yield views, owners, lengths, firsts
                views, owners, lengths, firsts, total = [], [], [], [], 0
            views.append(piece)
            firsts.append(start == 0)
            owners.append(owner)
            lengths.append(len(piece))
            total += len(piece)
            kept += len(piece)
        analysed[owner] = kept / len(framed)
    if views:
        yield views, owners, lengths, firsts


def _spectral(sounds: list[np.ndarray], frames: _Frames, device: str | None) -> dict:
    """Weighted mean/std of the per-frame timbre and spectrum descriptors, and onset counts."""
    import torch

    device = torch.device(device or "cpu")
    count = len(sounds)
    # The mel filters and a column of ones: band powers and the frame's energy in one product.
    filters = _mel_filters(frames)
    mel = torch.from_numpy(np.hstack([filters, np.ones((len(filters), 1))])).float().to(device)
    dct = torch.from_numpy(_dct_matrix(N_MELS, N_MFCC)).float().to(device)
    window = torch.hann_window(frames.n_fft, periodic=True, device=device)
    # A full-scale sine at the sound's peak gives power (peak * sum(window) / 2) ** 2 in its bin.
    peaks = np.array([float(np.abs(s).max()) for s in sounds])
    reference = (peaks * float(window.sum()) / 2) ** 2
    floors = torch.from_numpy(np.maximum(reference * 10 ** (-_TOP_DB / 10), 1e-20)).float()
    floors = floors.to(device)
    n_frame_features = 2 * N_MFCC + len(_SPECTRUM_FRAME)
    # Per sound: sum of weights, of weighted features and squares, and the onset count.
    totals = torch.zeros(count, 2 + 2 * n_frame_features, dtype=torch.float64, device=device)
    analysed = np.ones(count)
    bins_hz = torch.fft.rfftfreq(frames.n_fft, 1.0 / frames.sample_rate).to(device)
    band_bins = _contrast_bands(bins_hz, frames.sample_rate)
    with torch.inference_mode():
        for views, owners, lengths, firsts in _segments(sounds, frames, analysed):
            framed = torch.cat(views).to(device)
            owner = torch.repeat_interleave(torch.tensor(owners, device=device),
                                            torch.tensor(lengths, device=device))
            start, stop = _segment_bounds(lengths, device)
            opens = torch.repeat_interleave(torch.tensor(firsts, device=device),
                                            torch.tensor(lengths, device=device))
            floor = floors[owner][:, None]
            fourier = torch.fft.rfft(framed * window)
            power = fourier.real.square() + fourier.imag.square()
            bands = power @ mel
            mel_power = torch.maximum(bands[:, :-1], floor)
            mel_db = 10 * torch.log10(mel_power)
            mfcc = mel_db @ dct
            delta = _delta(mfcc, start, stop)
            shape = _spectrum_frame(power, mel_db, framed, bins_hz, band_bins, floor)
            features = torch.cat([mfcc, delta, shape], dim=1).double()
            # Each frame counts by its RMS amplitude: silence weighs (almost) nothing.
            weight = bands[:, -1:].double().clamp_min(0).sqrt() + 1e-30
            onsets = _onsets(mel_db, floor, start, stop, opens).double()[:, None]
            columns = torch.cat([weight, weight * features, weight * features.square(), onsets], 1)
            # A chunk's owners are consecutive: sum its frames per owner with one product.
            first, width = owners[0], owners[-1] - owners[0] + 1
            members = torch.arange(first, first + width, device=device)[:, None] == owner
            totals[first:first + width] += members.double() @ columns
    weight_sums, onsets = totals[:, :1], totals[:, -1]
    mean = totals[:, 1:1 + n_frame_features] / weight_sums
    squares = totals[:, 1 + n_frame_features:1 + 2 * n_frame_features] / weight_sums
    std = (squares - mean.square()).clamp_min(0).sqrt()
    mean, std = mean.float().cpu().numpy(), std.float().cpu().numpy()
    timbre = np.concatenate([mean[:, :N_MFCC], std[:, :N_MFCC],
                             mean[:, N_MFCC:2 * N_MFCC], std[:, N_MFCC:2 * N_MFCC]], axis=1)
    spectrum = np.concatenate([mean[:, 2 * N_MFCC:], std[:, 2 * N_MFCC:]], axis=1)
    return {"timbre": timbre, "spectrum": spectrum,
            "onsets": onsets.cpu().numpy() / analysed}


def _segment_bounds(lengths: list[int], device):
    """For every frame of a chunk: the first and one-past-last frame of its own segment."""
    import torch

    sizes = torch.tensor(lengths, device=device)
    ends = torch.cumsum(sizes, 0)
    return (torch.repeat_interleave(ends - sizes, sizes), torch.repeat_interleave(ends, sizes))


def _neighbours(values, start, stop, reach: int):
    """(frames, 2 * reach + 1, ...) values of each frame's neighbours, edges repeated."""
    import torch

    index = torch.arange(len(values), device=values.device)
    offsets = torch.arange(-reach, reach + 1, device=values.device)
    gathered = torch.minimum(torch.maximum(index[:, None] + offsets, start[:, None]),
                             stop[:, None] - 1)
    return values[gathered]


def _delta(mfcc, start, stop):
    """Regression slope over +-_DELTA_REACH frames of the same segment, per frame."""
    import torch

    offsets = torch.arange(-_DELTA_REACH, _DELTA_REACH + 1, device=mfcc.device, dtype=mfcc.dtype)
    around = _neighbours(mfcc, start, stop, _DELTA_REACH)  # (frames, 5, 13)
    return (around * offsets[None, :, None]).sum(1) / offsets.square().sum()


def _onsets(mel_db, floor, start, stop, opens):
    """1 for frames where the spectral flux (mean dB rise over mel bands) peaks, else 0.

    A sound starts from silence (its first frame may be an onset); a later excerpt of a long
    sound starts from itself (no onset made up at the cut).
    """
    import torch

    index = torch.arange(len(mel_db), device=mel_db.device)
    before_start = torch.where(opens[:, None], 10 * torch.log10(floor), mel_db)
    previous = torch.where((index > start)[:, None], mel_db[(index - 1).clamp_min(0)],
                           before_start)
    flux = (mel_db - previous).clamp_min(0).mean(1)
    local_max = _neighbours(flux, start, stop, _ONSET_MAX_REACH).amax(1)
    local_mean = _neighbours(flux, start, stop, _ONSET_MEAN_REACH).mean(1)
    return ((flux >= local_max) & (flux >= local_mean + _ONSET_DB)).to(mel_db.dtype)


def _contrast_bands(bins_hz, sample_rate: int) -> list[tuple[int, int, int]]:
    """(first bin, one past the last, bins averaged as peak/valley) per contrast band."""
    import torch

    edges = [*CONTRAST_EDGES_HZ, sample_rate / 2]
    bands = []
    for low, high in itertools.pairwise(edges):
        inside = torch.nonzero((bins_hz >= low) & (bins_hz < max(high, low))).flatten()
        if len(inside) == 0:
            bands.append((0, 0, 0))
            continue
        first, last = int(inside[0]), int(inside[-1]) + 1
        bands.append((first, last, max(1, round(0.02 * (last - first)))))
    return bands


def _spectrum_frame(power, mel_db, framed, bins_hz, band_bins, floor):
    """Per-frame centroid, bandwidth, flatness, roll-off, ZCR, band contrasts."""
    import torch

    magnitude = power.sqrt()
    moments = magnitude @ torch.stack([torch.ones_like(bins_hz), bins_hz, bins_hz.square()], 1)
    total = moments[:, 0].clamp_min(1e-20)
    centroid = moments[:, 1] / total
    bandwidth = (moments[:, 2] / total - centroid.square()).clamp_min(0).sqrt()
    # Flatness (geometric / arithmetic mean) over the mel bands: white noise is flat there too.
    flatness = mel_db.mean(1) / 10 - torch.log10((10 ** (mel_db / 10)).mean(1))
    cumulative = magnitude.cumsum(1)
    rolloff_bin = torch.searchsorted(cumulative, 0.85 * cumulative[:, -1:]).clamp_max(
        len(bins_hz) - 1)
    rolloff = bins_hz[rolloff_bin[:, 0]]
    zcr = (framed[:, 1:] * framed[:, :-1] < 0).sum(1) / (framed.shape[1] - 1)
    contrasts = []
    for first, last, take in band_bins:
        if take == 0:
            contrasts.append(torch.zeros_like(zcr))
            continue
        band = power[:, first:last]
        peak = torch.maximum(band.topk(take, dim=1).values.mean(1), floor[:, 0])
        valley = torch.maximum(band.topk(take, dim=1, largest=False).values.mean(1), floor[:, 0])
        contrasts.append(10 * torch.log10(peak / valley))
    octaves = [torch.log2(hz + 50.0) for hz in (centroid, bandwidth, rolloff)]
    return torch.stack([octaves[0], octaves[1], flatness, octaves[2], zcr, *contrasts], dim=1)


def _envelope(sound: np.ndarray, frames: _Frames) -> np.ndarray:
    """The envelope descriptors of one sound (onset rate is filled in from the spectral pass)."""
    rate, block = frames.sample_rate, frames.envelope_block
    duration = len(sound) / rate
    padded = np.zeros(-(-len(sound) // block) * block, np.float32)
    padded[:len(sound)] = sound
    blocks = padded.reshape(-1, block)
    energy = np.einsum("ij,ij->i", blocks, blocks).astype(np.float64)  # no float64 copy
    # RMS over 4 blocks (~11.6 ms), one value per block (~2.9 ms).
    envelope = np.sqrt(np.convolve(energy, np.ones(4) / (4 * block), mode="same"))
    peak_sample = float(np.abs(sound).max())
    features = np.zeros(len(_ENVELOPE))
    features[0] = math.log(duration)
    if peak_sample == 0.0 or envelope.max() <= 0.0:
        features[1] = math.log(duration)
        features[2:4] = math.log(1e-3)
        features[4:8] = (0.5, 1 / math.sqrt(12), 0.0, math.log(1.8))  # a flat envelope's
        return features
    step = block / rate
    peak = envelope.max()
    above_tenth = np.flatnonzero(envelope >= 0.1 * peak)
    attack_start = int(np.argmax(envelope >= 0.2 * peak))
    attack_end = int(np.argmax(envelope >= 0.9 * peak))
    decay_start = int(np.flatnonzero(envelope >= 0.8 * peak)[-1])
    features[1] = math.log(min(duration, (above_tenth[-1] - above_tenth[0] + 1) * step))
    features[2] = math.log(max(attack_end - attack_start, 0) * step + 1e-3)
    features[3] = math.log((above_tenth[-1] - decay_start) * step + 1e-3)
    times = (np.arange(len(envelope)) + 0.5) / len(envelope)  # fractions of the duration
    weights = envelope / envelope.sum()
    centroid = float((weights * times).sum())
    variance = float((weights * (times - centroid) ** 2).sum())
    spread = math.sqrt(variance)
    features[4:6] = (centroid, spread)
    if variance > 1e-12:
        features[6] = math.asinh(float((weights * (times - centroid) ** 3).sum()) / spread ** 3)
        features[7] = math.log(float((weights * (times - centroid) ** 4).sum()) / variance ** 2)
    rms = math.sqrt(float(energy.sum()) / len(sound))
    features[9] = 20 * math.log10(peak_sample / rms)
    return features


def fill_block(waveform: np.ndarray, *, length: int) -> np.ndarray:
    """Repeat a sound shorter than ``length`` samples back to back until it fills them.

    For the CNN, whose 100-frame block (101 376 samples at 44.1 kHz) a short sound would
    otherwise fill with zeros. Longer sounds come back unchanged.

    Example:
        >>> fill_block(np.array([1, 2, 3], np.float32), length=7).tolist()
        [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0]
    """
    if length < 1:
        raise ParameterError(f"length must be >= 1, got {length}")
    samples = np.asarray(waveform, dtype=np.float32)
    if samples.ndim != 1 or samples.size == 0:
        raise ParameterError(f"expected a non-empty mono waveform, got shape {samples.shape}")
    if samples.size >= length:
        return samples
    return np.tile(samples, -(-length // samples.size))[:length]
