"""Cuts: a span of a sound file as its own WAV (rate, channels, sample format kept), its name,
and the spans refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from soundslike_nb.cuts import cut_name, cut_wav
from soundslike_nb.errors import AudioError, ParameterError


def _ramp(frames: int, channels: int) -> np.ndarray:
    """Samples that say where they are: channel c at frame i holds a distinct value."""
    rng = np.random.default_rng(3)
    data = rng.uniform(-0.9, 0.9, (frames, channels))
    data[:, 0] = np.linspace(-0.9, 0.9, frames)
    return data


@pytest.mark.parametrize(("rate", "channels", "subtype", "file_format", "expected_subtype"), [
    (48000, 2, "PCM_24", "WAV", "PCM_24"),
    (44100, 1, "PCM_16", "WAV", "PCM_16"),
    (96000, 6, "FLOAT", "WAV", "FLOAT"),
    (22050, 1, "PCM_U8", "WAV", "PCM_U8"),
    (32000, 2, "PCM_16", "FLAC", "PCM_16"),
    (44100, 2, "PCM_24", "AIFF", "PCM_24"),
    (44100, 1, "PCM_S8", "AIFF", "PCM_U8"),
    (44100, 2, "VORBIS", "OGG", "FLOAT"),
])
def test_a_cut_keeps_rate_channels_and_sample_format(tmp_path, rate, channels, subtype,
                                                     file_format, expected_subtype):
    path = tmp_path / f"take.{file_format.lower()}"
    data = _ramp(3 * rate, channels)
    sf.write(path, data, rate, subtype=subtype, format=file_format)
    cut = cut_wav(path, 1.25, 2.0)
    with sf.SoundFile(io.BytesIO(cut)) as made:
        assert (made.format, made.samplerate, made.channels, made.subtype) == (
            "WAV", rate, channels, expected_subtype)
        assert made.frames == round(0.75 * rate)
        samples = made.read(always_2d=True)
    original, _ = sf.read(path, always_2d=True)
    expected = original[round(1.25 * rate):round(2.0 * rate)]
    tolerance = 1e-6 if subtype != "VORBIS" else 1e-5
    np.testing.assert_allclose(samples, expected, atol=tolerance)


def test_integer_samples_are_copied_exactly(tmp_path):
    path = tmp_path / "hit.wav"
    ints = np.random.default_rng(0).integers(-2**15, 2**15, (44100, 2), dtype=np.int16)
    sf.write(path, ints, 44100, subtype="PCM_16")
    cut, _ = sf.read(io.BytesIO(cut_wav(path, 0.5, 0.75)), dtype="int16", always_2d=True)
    np.testing.assert_array_equal(cut, ints[22050:33075])


def test_a_span_ending_at_the_files_end_is_cut_to_its_last_frame(tmp_path):
    path = tmp_path / "tail.wav"
    sf.write(path, _ramp(16000, 1), 16000)
    duration = 1.0
    made = sf.info(io.BytesIO(cut_wav(path, 0.5, duration + 0.0004)))
    assert made.frames == 8000


def test_cut_name_has_the_stem_and_seconds_to_two_decimals():
    assert cut_name("/sfx/rain.wav", 12.345, 13.1) == "rain_12.35-13.10.wav"
    assert cut_name("/sfx/car pass.by.flac", 0, 61.004) == "car pass.by_0.00-61.00.wav"
    assert cut_name("take.aiff", 1, 2.5) == "take_1.00-2.50.wav"
    with pytest.raises(ParameterError, match="start"):
        cut_name("take.wav", float("nan"), 1)


@pytest.mark.parametrize(("start", "end", "message"), [
    (2.0, 2.0, r"'.*take\.wav': a cut needs start < end, got start 2 s and end 2 s"),
    (2.5, 1.0, r"start 2\.5 s and end 1 s"),
    (-0.5, 1.0, r"'.*take\.wav': the span -0\.5-1 s is outside the file \(0-3\.000 s\)"),
    (2.0, 3.5, r"the span 2-3\.5 s is outside the file \(0-3\.000 s\)"),
    (5.0, 6.0, r"outside the file"),
    (1.0, 1.00001, r"holds no whole frame at 8000 Hz"),
])
def test_bad_spans_are_parameter_errors_naming_the_file_and_values(tmp_path, start, end,
                                                                   message):
    path = tmp_path / "take.wav"
    sf.write(path, _ramp(3 * 8000, 1), 8000)
    with pytest.raises(ParameterError, match=message):
        cut_wav(path, start, end)


def test_unreadable_files_are_audio_errors_naming_them(tmp_path):
    with pytest.raises(AudioError, match=r"'.*gone\.wav': no such file"):
        cut_wav(tmp_path / "gone.wav", 0, 1)
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(AudioError, match=r"'.*notes\.wav': not a readable audio file"):
        cut_wav(bad, 0, 1)
