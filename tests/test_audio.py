"""Audio input: decoding, mixing, resampling, and a clear error for each kind of bad file."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from soundslike_nb import AudioError
from soundslike_nb.audio import info, load, validate_waveform


def test_info_reads_header_without_decoding(write_sound):
    path = write_sound("door creak-03.wav", seconds=1.5, rate=48000, channels=2)
    meta = info(path)
    assert (meta.sample_rate, meta.channels, meta.frames) == (48000, 2, 72000)
    assert meta.duration == pytest.approx(1.5)


@pytest.mark.parametrize("extension, subtype", [
    ("wav", "PCM_16"), ("flac", "PCM_24"), ("ogg", "VORBIS"), ("aiff", "PCM_16"),
    ("mp3", "MPEG_LAYER_III"),
])
def test_decodes_each_format_to_mono_float32(write_sound, extension, subtype):
    path = write_sound(f"tone.{extension}", seconds=1.0, rate=44100, channels=2, subtype=subtype)
    waveform, meta = load(path)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert meta.duration == pytest.approx(1.0, abs=0.06)  # mp3 frames pad the end a little
    assert np.abs(waveform).max() > 0.1


@pytest.mark.parametrize("rate, subtype", [(8000, "PCM_16"), (192000, "PCM_24")])
def test_resamples_odd_rates_to_the_requested_rate(write_sound, rate, subtype):
    path = write_sound("odd.wav", seconds=2.0, rate=rate, subtype=subtype, frequency=1000.0)
    waveform, meta = load(path, sample_rate=44100)
    assert meta.sample_rate == rate
    assert len(waveform) == pytest.approx(2 * 44100, abs=2)
    # the 1 kHz tone survives resampling: its spectrum peaks at 1 kHz
    spectrum = np.abs(np.fft.rfft(waveform[:44100]))
    assert np.argmax(spectrum) == pytest.approx(1000, abs=2)


def test_six_channels_are_averaged(tmp_path):
    data = np.zeros((4410, 6), np.float32)
    data[:, 5] = 0.6  # only the last channel has signal
    path = tmp_path / "surround.wav"
    sf.write(path, data, 44100, subtype="FLOAT")
    waveform, meta = load(path)
    assert meta.channels == 6
    np.testing.assert_allclose(waveform, 0.1, atol=1e-6)


def test_max_duration_stops_decoding_but_keeps_true_duration(write_sound):
    path = write_sound("long.wav", seconds=5.0, rate=8000)
    waveform, meta = load(path, sample_rate=8000, max_duration=1.0)
    assert len(waveform) == 8000
    assert meta.duration == pytest.approx(5.0)


def test_in_memory_bytes_are_accepted(write_sound):
    path = write_sound("upload.wav", seconds=0.5)
    waveform, meta = load(path.read_bytes(), name="upload.wav")
    assert meta.path == "upload.wav" and len(waveform) == 22050


def _expect(path, fragment: str) -> None:
    with pytest.raises(AudioError) as caught:
        load(path)
    message = str(caught.value)
    assert os.fspath(path) in message and fragment in message, message


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    _expect(path, "empty file")


def test_zero_samples(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros((0, 1), np.float32), 44100)
    _expect(path, "0 samples")


def test_truncated_wav(write_sound):
    path = write_sound("cut.wav", seconds=1.0, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _expect(path, "truncated")


def test_header_only_wav(write_sound):
    path = write_sound("header.wav", seconds=1.0)
    path.write_bytes(path.read_bytes()[:30])
    _expect(path, "not a readable audio file")


def test_text_renamed_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    _expect(path, "not a readable audio file")


def test_nan_and_inf_samples(tmp_path):
    for bad in (np.nan, np.inf):
        path = tmp_path / f"bad-{bad}.wav"
        data = np.full(1000, 0.1, np.float32)
        data[500] = bad
        sf.write(path, data, 8000, subtype="FLOAT")
        _expect(path, "NaN or infinite")


def test_directory_named_like_audio(tmp_path):
    folder = tmp_path / "x.wav"
    folder.mkdir()
    _expect(folder, "is a directory")


def test_missing_file_and_symlink_loop(tmp_path):
    _expect(tmp_path / "nope.wav", "no such file")
    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop)
    _expect(loop, "symbolic link loop")


def test_silence_is_a_valid_sound(tmp_path):
    path = tmp_path / "room tone.wav"
    sf.write(path, np.zeros(4410, np.float32), 44100)
    waveform, _ = load(path)
    assert not waveform.any()


def test_validate_waveform_errors():
    assert validate_waveform(np.ones((2, 5))).shape == (5,)
    with pytest.raises(AudioError, match="0 samples"):
        validate_waveform(np.zeros(0))
    with pytest.raises(AudioError, match="NaN"):
        validate_waveform(np.array([0.0, np.nan]))
    with pytest.raises(AudioError, match="shape"):
        validate_waveform(np.zeros((1, 2, 3)))


def test_unreadable_file(write_sound, tmp_path):
    """chmod 000 stops a normal user; root reads anyway, so as root the check runs in a
    subprocess whose capability bounding set lacks the permission overrides (setpriv)."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    path = write_sound("locked.wav", seconds=0.2)
    os.chmod(path, 0o000)
    code = ("import sys; from soundslike_nb.audio import load\n"
            "try: load(sys.argv[1])\nexcept Exception as e: print(type(e).__name__, e)")
    command = [sys.executable, "-c", code, str(path)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    output = subprocess.run(command, capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parent.parent)
    assert output.stdout.startswith("AudioError"), output.stdout + output.stderr
    assert "locked.wav" in output.stdout and "permission denied" in output.stdout
