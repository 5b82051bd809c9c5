"""A long recording's background, estimated from itself and taken out of its regions (seeded
synthetic audio)."""

from __future__ import annotations

import numpy as np
import pytest

from soundslike_nb.background import noise_floor, suppressed
from soundslike_nb.errors import ParameterError
from soundslike_nb.regions import embed_with_regions, region_audio

RATE = 44100


def _brown(seconds: float, seed: int = 0) -> np.ndarray:
    walk = np.cumsum(np.random.default_rng(seed).standard_normal(int(seconds * RATE)))
    walk -= np.convolve(walk, np.ones(4410) / 4410, mode="same")
    return (0.05 * walk / np.sqrt(np.mean(walk**2))).astype(np.float32)


def _hit(seconds: float = 0.12, frequency: float = 900.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * frequency * t) * np.exp(-20 * t)).astype(np.float32)


def _planted(bed: np.ndarray, sound: np.ndarray, at_s: float) -> np.ndarray:
    """``sound`` added at ``at_s`` at 0 dB SNR against the bed over its own length."""
    take = bed.copy()
    first = int(at_s * RATE)
    stretch = take[first:first + len(sound)]
    gain = np.sqrt(np.mean(stretch**2) / np.mean(sound**2))
    take[first:first + len(sound)] += gain * sound
    return take


def _band_db(power: np.ndarray) -> np.ndarray:
    return 10 * np.log10(power[10:900].reshape(-1, 89).mean(axis=1))


def test_the_floor_is_the_bed_not_the_events_in_it():
    bed = _brown(30.0)
    take = bed.copy()
    for at_s in np.arange(1.0, 29.0, 2.0):  # a loud half-second event every two seconds
        take = _planted(take, 4 * _hit(0.5), at_s)
    alone, with_events = noise_floor(bed, RATE), noise_floor(take, RATE)
    assert with_events.shape == (1025,)
    assert np.abs(_band_db(with_events) - _band_db(alone)).max() < 1.5


def test_a_silent_file_has_no_floor_and_keeps_its_audio():
    take = np.zeros(10 * RATE, np.float32)
    take[3 * RATE:3 * RATE + 5292] = _hit()
    floor = noise_floor(take, RATE)
    assert not floor.any()
    np.testing.assert_array_equal(suppressed(take, RATE, 2.9, 3.2, floor),
                                  take[int(2.9 * RATE):int(3.2 * RATE)])


def test_the_bed_goes_down_and_the_event_stays():
    hit = _hit()
    take = _planted(_brown(20.0, seed=1), hit, 7.0)
    floor = noise_floor(take, RATE)
    bed_only = suppressed(take, RATE, 3.0, 3.5, floor)
    assert len(bed_only) == int(0.5 * RATE)
    assert np.std(bed_only) < 0.8 * np.std(take[3 * RATE:int(3.5 * RATE)])
    event = suppressed(take, RATE, 7.0, 7.12, floor)
    raw = take[7 * RATE:7 * RATE + len(hit)]
    assert len(event) == len(hit)

    def error(audio):  # what is not the hit, against the hit, at the best gain
        gain = float(audio @ hit / (hit @ hit))
        return float(np.sum((audio - gain * hit) ** 2) / np.sum(hit**2))

    assert error(event) < 0.5 * error(raw)


def test_spans_at_the_edges_and_shorter_than_a_frame():
    take = _brown(8.0)
    floor = noise_floor(take, RATE)
    assert len(suppressed(take, RATE, 7.9, 8.5, floor)) == int(0.1 * RATE)  # clipped
    assert len(suppressed(take, RATE, 0.0, 0.01, floor)) == 441
    assert len(suppressed(take, RATE, 3.0, 3.0, floor)) == 1  # at least one sample
    assert region_audio(take, RATE, np.zeros((0, 2))) == []


def test_bad_rates_are_refused_with_their_values():
    with pytest.raises(ParameterError, match=r"sample_rate > 0.*got 0"):
        noise_floor(np.zeros(RATE, np.float32), 0)


class _Recording:
    """An embedder of the user's own (no ``embed_regions``) that keeps what it was given."""

    id = "test-recording"
    sample_rate = RATE
    dimension = 2

    def __init__(self) -> None:
        self.heard: list[np.ndarray] = []

    def embed(self, waveforms):
        self.heard.extend(waveforms)
        return np.array([[np.sqrt(np.mean(w**2)), len(w)] for w in waveforms], np.float32)


def test_regions_are_embedded_from_their_audio_with_the_background_out():
    take = _planted(_brown(12.0, seed=2), _hit(), 5.0)
    embedder = _Recording()
    whole, parts = embed_with_regions(embedder, take, np.array([[2.0, 2.5], [5.0, 5.12]]))
    assert len(embedder.heard) == 3 and len(embedder.heard[0]) == len(take)  # the file as is
    np.testing.assert_allclose(whole, [np.sqrt(np.mean(take**2)), len(take)], rtol=1e-5)
    assert parts.shape == (2, 2)
    assert parts[0, 1] == int(0.5 * RATE) and parts[1, 1] == int(0.12 * RATE)
    assert parts[0, 0] < 0.8 * np.sqrt(np.mean(take[2 * RATE:int(2.5 * RATE)] ** 2))
