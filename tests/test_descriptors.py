"""Classic descriptors: finite on odd input, batch-independent, and they move the way ears do."""

from __future__ import annotations

import numpy as np
import pytest

from soundslike_nb import ParameterError
from soundslike_nb.descriptors import (
    ASPECT_SLICES,
    ASPECTS,
    FEATURE_NAMES,
    describe,
    fill_block,
)

RATE = 44100


def _column(name: str) -> int:
    return FEATURE_NAMES.index(name)


def _noise(seconds: float, *, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(round(seconds * RATE)).astype(np.float32)


def _sine(seconds: float, frequency: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_aspects_partition_the_columns():
    assert list(ASPECTS) == ["timbre", "spectrum", "envelope"]
    for aspect, names in ASPECTS.items():
        assert FEATURE_NAMES[ASPECT_SLICES[aspect]] == names
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES) == 86


def test_odd_sounds_give_finite_rows():
    sounds = [np.zeros(1, np.float32), np.ones(1, np.float32), np.zeros(RATE, np.float32),
              np.full(300, 0.9, np.float32), _noise(0.01), 0.2 * _noise(70.0, seed=1)]
    rows = describe(sounds, RATE)
    assert rows.shape == (len(sounds), len(FEATURE_NAMES))
    assert rows.dtype == np.float32
    assert np.isfinite(rows).all()
    assert rows[-1, _column("log_duration")] == pytest.approx(np.log(70.0), abs=1e-3)
    # Steady noise: its start is the one onset, none is made up where long sounds are excerpted.
    assert np.expm1(rows[-1, _column("onset_rate")]) < 0.03


def test_batched_equals_one_by_one():
    # 70 s spans several analysis segments and FFT chunks; short ones share a chunk with it.
    sounds = [_noise(0.2, seed=2), _noise(70.0, seed=3) * 0.1, _sine(0.5, 700.0)]
    together = describe(sounds, RATE)
    alone = np.concatenate([describe([sound], RATE) for sound in sounds])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-4)


def test_level_does_not_change_any_descriptor():
    sound = _sine(0.8, 440.0) * np.exp(-np.linspace(0, 5, round(0.8 * RATE))).astype(np.float32)
    sound += 0.01 * _noise(0.8, seed=4)
    loud, quiet = describe([sound, sound * 0.01], RATE)
    np.testing.assert_allclose(loud, quiet, atol=1e-3)


def test_brighter_sound_has_higher_centroid_and_rolloff():
    dull, bright = describe([_sine(1.0, 300.0), _sine(1.0, 5000.0)], RATE)
    for name in ("centroid_mean", "rolloff_mean"):
        assert bright[_column(name)] > dull[_column(name)] + 2  # octaves
    assert bright[_column("zcr_mean")] > dull[_column("zcr_mean")]


def test_noise_is_flatter_than_a_tone():
    tone, noise = describe([_sine(1.0, 440.0), 0.1 * _noise(1.0, seed=5)], RATE)
    assert noise[_column("flatness_mean")] > tone[_column("flatness_mean")] + 2  # log10 units


def test_longer_sound_has_larger_log_duration():
    short, long = describe([_noise(0.3, seed=6), _noise(1.2, seed=6)], RATE)
    assert long[_column("log_duration")] - short[_column("log_duration")] == pytest.approx(
        np.log(4.0), abs=1e-3)


def test_sharp_attack_is_shorter_than_a_swell():
    t = np.linspace(0, 1, RATE, dtype=np.float32)
    carrier = 0.1 * _noise(1.0, seed=7)
    hit = carrier * np.exp(-8 * t)            # full level at once, then decays
    swell = carrier * np.minimum(t / 0.6, 1)  # 600 ms fade-in
    hit_row, swell_row = describe([hit, swell], RATE)
    attack = _column("log_attack")
    assert np.exp(swell_row[attack]) > 10 * np.exp(hit_row[attack])
    assert np.exp(swell_row[attack]) == pytest.approx(0.7 * 0.6, rel=0.25)  # 20 % → 90 %
    assert hit_row[_column("log_decay")] > swell_row[_column("log_decay")]
    assert hit_row[_column("env_centroid")] < 0.3 < swell_row[_column("env_centroid")]


def test_onset_rate_counts_hits():
    def clicks(per_second: int) -> np.ndarray:
        sound = 0.001 * _noise(2.0, seed=8)
        burst = 0.5 * _noise(0.02, seed=9) * np.exp(-np.linspace(0, 6, round(0.02 * RATE)))
        for start in np.arange(0, 2.0, 1 / per_second):
            at = round(start * RATE)
            sound[at:at + len(burst)] += burst.astype(np.float32)[:len(sound) - at]
        return sound

    rows = describe([clicks(1), clicks(4)], RATE)
    rates = np.expm1(rows[:, _column("onset_rate")])
    assert rates[0] == pytest.approx(1.0, abs=0.6)
    assert rates[1] == pytest.approx(4.0, abs=1.0)


def test_other_sample_rates_agree_on_the_physics():
    rate = 16000
    t = np.arange(rate) / rate
    row = describe([(0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)], rate)[0]
    assert 2 ** row[_column("centroid_mean")] - 50 == pytest.approx(1000, rel=0.1)


@pytest.mark.parametrize("bad", [np.zeros(0, np.float32), np.zeros((2, 10), np.float32)])
def test_bad_waveforms_are_refused(bad):
    with pytest.raises(ParameterError, match="waveform 0"):
        describe([bad], RATE)


def test_bad_rate_and_empty_batch():
    with pytest.raises(ParameterError, match="sample_rate must be >= 1000 Hz, got 100"):
        describe([np.ones(10, np.float32)], 100)
    assert describe([], RATE).shape == (0, len(FEATURE_NAMES))


def test_fill_block_repeats_short_sounds_only():
    short = np.arange(1, 4, dtype=np.float32)
    assert fill_block(short, length=8).tolist() == [1, 2, 3, 1, 2, 3, 1, 2]
    long = np.arange(10, dtype=np.float32)
    assert fill_block(long, length=8) is long
    with pytest.raises(ParameterError, match="length must be >= 1, got 0"):
        fill_block(short, length=0)
