"""Cutting long recordings into regions: seeded synthetic audio with events at known times."""

from __future__ import annotations

import numpy as np
import pytest

from soundslike_nb.errors import ParameterError
from soundslike_nb.segmentation import RegionSettings, find_regions

RATE = 44100


def _event(rng: np.random.Generator, seconds: float = 0.6, frequency: float = 600.0
           ) -> np.ndarray:
    """A struck sound: a decaying tone with a noisy attack, unit RMS."""
    t = np.arange(int(seconds * RATE)) / RATE
    sound = (np.sin(2 * np.pi * frequency * t) * np.exp(-6 * t)
             + 0.5 * rng.standard_normal(t.size) * np.exp(-20 * t))
    return (sound / np.sqrt(np.mean(sound**2))).astype(np.float32)


def _bed(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Continuous low-passed noise, unit RMS (an ambience with no silence in it)."""
    noise = np.convolve(rng.standard_normal(int(seconds * RATE)), np.ones(8) / 8, mode="same")
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)


def _planted(snr_db: float | None, *, seconds: float = 60.0, seed: int = 1
             ) -> tuple[np.ndarray, np.ndarray]:
    """Eight events at seeded times in a noise bed at ``snr_db`` (``None``: in silence)."""
    rng = np.random.default_rng(seed)
    starts_s = np.sort(rng.uniform(2, seconds - 3, 8))
    starts_s = starts_s[np.concatenate([[True], np.diff(starts_s) > 1.0])]  # apart
    waveform = np.zeros(int(seconds * RATE), np.float32) if snr_db is None else _bed(rng, seconds)
    gain = 1.0 if snr_db is None else 10 ** (snr_db / 20)
    for start_s in starts_s:
        event = gain * _event(rng)
        first = int(start_s * RATE)
        waveform[first:first + len(event)] += event
    return 0.1 * waveform, starts_s


@pytest.mark.parametrize("snr_db", [None, 10.0, 0.0])
def test_each_planted_event_starts_a_region_within_50_ms(snr_db):
    waveform, starts_s = _planted(snr_db)
    regions = find_regions(waveform, RATE)
    assert regions.shape[1] == 2 and (regions[:, 1] > regions[:, 0]).all()
    assert (np.diff(regions[:, 0]) >= 0).all()  # in time order
    errors = [np.abs(regions[:, 0] - start).min() for start in starts_s]
    assert max(errors) < 0.05, errors
    # Each event's region ends when it has faded back into the bed: not at the next onset.
    at_events = [regions[np.abs(regions[:, 0] - start).argmin()] for start in starts_s]
    assert all(end - start < 1.5 for start, end in at_events), at_events
    if snr_db is None:  # in silence: one region per event, ending where it fades out
        assert len(regions) == len(starts_s)
        assert (regions[:, 1] - regions[:, 0] < 1.0).all()


def test_a_continuous_sound_becomes_overlapping_windows():
    t = np.arange(20 * RATE) / RATE
    drone = (0.3 * np.sin(2 * np.pi * 110 * t)).astype(np.float32)
    regions = find_regions(drone, RATE, settings=RegionSettings(max_region_s=4.0,
                                                                window_hop_s=2.0))
    lengths = regions[:, 1] - regions[:, 0]
    np.testing.assert_allclose(lengths, 4.0)
    assert regions[0, 0] < 0.05 and regions[-1, 1] > 19.95
    assert np.allclose(np.diff(regions[:-1, 0]), 2.0)


def test_short_silent_and_broken_files_have_no_regions():
    rng = np.random.default_rng(0)
    assert find_regions(0.1 * _event(rng, 3.0), RATE).shape == (0, 2)  # short: one sound
    assert find_regions(np.zeros(30 * RATE, np.float32), RATE).shape == (0, 2)
    nan = np.full(10 * RATE, np.nan, np.float32)
    assert find_regions(nan, RATE).shape == (0, 2)


def test_fragments_join_and_quiet_gaps_split():
    rng = np.random.default_rng(3)
    silence = np.zeros(2 * RATE, np.float32)
    # Two hits 0.2 s apart are one region (closer than onset_gap_s); a hit 2 s later is a
    # region of its own.
    close = np.concatenate([_event(rng, 0.2), _event(rng, 0.6)])
    waveform = 0.1 * np.concatenate([silence, close, silence, _event(rng, 0.6), silence])
    regions = find_regions(waveform, RATE)
    assert len(regions) == 2
    assert abs(regions[0, 0] - 2.0) < 0.02 and abs(regions[1, 0] - 4.8) < 0.02


def test_a_short_hit_in_a_bed_gets_a_tight_region_and_a_longer_one():
    rng = np.random.default_rng(5)
    waveform = _bed(rng, 20.0)
    starts_s = [4.0, 9.3, 15.7]
    for start_s in starts_s:  # 0.12 s hits at 0 dB SNR over their own length
        hit = _event(rng, 0.12, frequency=1200.0)
        waveform[int(start_s * RATE):int(start_s * RATE) + len(hit)] += hit
    regions = find_regions(0.1 * waveform, RATE)
    for start_s in starts_s:
        mine = regions[np.abs(regions[:, 0] - start_s) < 0.05]
        lengths = sorted((mine[:, 1] - mine[:, 0]).round(2).tolist())
        assert lengths[0] < 0.3 and lengths[1] == 1.0, (start_s, mine)
    single = find_regions(0.1 * waveform, RATE, settings=RegionSettings(event_scale_s=0))
    assert len(single) < len(regions)
    assert not np.isclose(single[:, 1] - single[:, 0], 1.0).any()


def test_ripples_inside_a_sound_in_silence_are_no_onsets():
    rng = np.random.default_rng(4)
    silence = np.zeros(3 * RATE, np.float32)
    burst = rng.normal(size=2 * RATE).astype(np.float32)  # noise: flux ripples all through
    regions = find_regions(0.1 * np.concatenate([silence, burst, silence]), RATE)
    np.testing.assert_allclose(regions, [[3.0, 5.0]], atol=0.02)


@pytest.mark.parametrize("options, message", [
    ({"min_region_s": 0}, "min_region_s"),
    ({"min_region_s": 5, "max_region_s": 4}, "min_region_s <= max_region_s"),
    ({"window_hop_s": 5}, "window_hop_s"),
    ({"silence_db": float("nan")}, "silence_db"),
    ({"min_file_s": -1}, "min_file_s"),
    ({"min_event_s": 0}, "min_event_s > 0"),
    ({"onset_gap_s": 0}, "onset_gap_s > 0"),
])
def test_bad_settings_are_refused_with_their_values(options, message):
    with pytest.raises(ParameterError, match=message):
        RegionSettings(**options)


def test_the_settings_record_names_the_version():
    record = RegionSettings().record()
    assert record["version"] >= 1 and record["max_region_s"] == 4.0


def test_an_event_with_onsets_inside_it_gets_a_region_for_all_of_it():
    rng = np.random.default_rng(9)
    waveform = 0.05 * _bed(rng, 12.0)
    start = int(5.0 * RATE)
    for offset_s, frequency in ((0.0, 300.0), (0.4, 900.0), (0.8, 500.0), (1.2, 1400.0)):
        hit = _event(rng, 0.45, frequency=frequency)  # a crackling 1.65 s sound: four onsets
        first = start + int(offset_s * RATE)
        waveform[first:first + len(hit)] += hit
    regions = find_regions(0.1 * waveform, RATE)
    from_start = regions[np.abs(regions[:, 0] - 5.0) < 0.05]
    assert (from_start[:, 1] > 6.4).any(), from_start  # up to where the last hit fades
    assert (regions[:, 0] > 5.2).any()  # its inner onsets still start regions of their own
