"""Players' previews of long files, and the upload button's accepted extensions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundslike_nb.app.media import PREVIEW_SECONDS
from soundslike_nb.app.upload_button import SoundUpload
from soundslike_nb.audio import AUDIO_EXTENSIONS

from .conftest import tone

RATE = 44100

# Run in a child process: libsndfile crashing on a long Vorbis write is a segfault, which
# would take pytest down with it instead of failing one test.
_PREVIEW_SCRIPT = """
import sys
from soundslike_nb.app.media import player_source

source = player_source(sys.argv[1])
with open(sys.argv[2], "wb") as handle:
    handle.write(source.data)
print(source.format)
print(source.note)
"""


def _write_long_sound(path: Path, seconds: int, *, file_format: str) -> Path:
    """A seeded tone-and-noise file written a second at a time, so memory stays small."""
    with sf.SoundFile(path, "w", RATE, 1, format=file_format, subtype="PCM_16") as sound:
        for second in range(seconds):
            sound.write(tone(1.0, rate=RATE, frequency=220.0 + second % 7 * 110, seed=second))
    return path


def _preview_in_subprocess(sound: Path, preview: Path) -> tuple[str, str]:
    """``player_source(sound)`` in a child process: (format, note); fails on a crash."""
    done = subprocess.run([sys.executable, "-c", _PREVIEW_SCRIPT, str(sound), str(preview)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (f"player_source({sound.name!r}) exited {done.returncode} "
                                  f"(negative: killed by that signal, -11 is a segfault)\n"
                                  f"{done.stderr[-2000:]}")
    sound_format, note = done.stdout.splitlines()
    return sound_format, note


@pytest.mark.slow
@pytest.mark.parametrize(("name", "seconds", "file_format", "expected_note"), [
    ("long take.wav", 15 * 60, "WAV", "large file: preview of the first 60 s"),
    ("room tone.aiff", 48, "AIFF", "converted for the browser"),
])
def test_long_files_get_a_vorbis_preview_without_crashing(tmp_path, name, seconds, file_format,
                                                          expected_note):
    sound = _write_long_sound(tmp_path / name, seconds, file_format=file_format)
    preview = tmp_path / "preview.ogg"

    sound_format, note = _preview_in_subprocess(sound, preview)

    assert (sound_format, note) == ("ogg", expected_note)
    assert preview.read_bytes()[:4] == b"OggS"
    waveform, rate = sf.read(preview, dtype="float32")
    assert rate == RATE and waveform.ndim == 1
    assert len(waveform) / rate == pytest.approx(min(seconds, PREVIEW_SECONDS), abs=0.05)
    assert 0.01 < abs(waveform).max() < 1.0  # sound, not silence or noise blown past full scale


def test_upload_accepts_every_audio_extension():
    accepted = SoundUpload().accept.split(",")

    assert set(AUDIO_EXTENSIONS) <= set(accepted)
    assert "audio/*" in accepted


def test_a_lazy_player_sends_audio_only_when_played(tmp_path):
    from soundslike_nb.app.media import LazyPlayer

    path = tmp_path / "door 1.wav"
    sf.write(path, np.zeros(4410, np.float32), 44100)
    player = LazyPlayer(str(path))
    state = player.get_state()
    assert not any(isinstance(value, (bytes, memoryview)) for value in state.values())
    sent = []
    player.send = lambda content, buffers=None: sent.append((content, buffers))
    player._handle_message(player, {"event": "load"}, [])
    (content, buffers), = sent
    assert content["event"] == "audio" and content["mime"] == "audio/wav"
    assert bytes(buffers[0]) == path.read_bytes()

    missing = LazyPlayer(str(tmp_path / "gone.wav"))
    missing.send = lambda content, buffers=None: sent.append((content, buffers))
    missing._handle_message(missing, {"event": "load"}, [])
    assert sent[-1][0]["event"] == "error" and "cannot play" in sent[-1][0]["message"]


def test_a_player_plays_when_the_kernel_asks_and_says_when_it_starts_and_stops(tmp_path):
    from soundslike_nb.app.media import LazyPlayer

    player = LazyPlayer(str(tmp_path / "door.wav"))
    heard = []
    player.on_playing(heard.append)
    player.set_playing(True)  # the kernel asks: the browser fetches if needed, then plays
    assert player.playing and player.get_state()["playing"] is True and heard == []
    player.playing = False  # as the browser's pause or end sets it
    assert heard == [False]
    script = LazyPlayer._esm
    for needle in ('model.on("change:playing"', 'addEventListener("ended"',
                   'addEventListener("pause"', 'addEventListener("play"', "other.pause()",
                   "save_changes"):
        assert needle in script, needle
