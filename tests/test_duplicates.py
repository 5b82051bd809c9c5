"""Near-duplicate groups: planted copies (codecs, resampling, gain, trims, stereo) are grouped,
distinct takes of one kind of sound are not, and the keeper is the best copy, with its reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from soundslike_nb.audio_match import MatchSettings, correlation, decode_for_match
from soundslike_nb.duplicate_candidates import CandidateSettings, candidate_pairs, components
from soundslike_nb.duplicates import DUPLICATE_COLUMNS, group_duplicates
from soundslike_nb.errors import ParameterError

KENNEY = Path(__file__).resolve().parent.parent / "data" / "demo" / "kenney"


def _render(source: Path, folder: Path) -> list[Path]:
    """The source and six renderings of it: MP3, Ogg, 22.05 kHz, -6 dB, 5+3 ms trimmed,
    stereo."""
    import soundfile as sf
    import soxr

    data, rate = sf.read(source, always_2d=True, dtype="float32")
    mono = data.mean(axis=1)
    folder.mkdir(parents=True, exist_ok=True)
    copies = [folder / f"original{source.suffix}"]
    shutil.copy(source, copies[0])
    renderings = {
        "mp3 copy.mp3": (mono, rate, {"format": "MP3"}),
        "ogg copy.ogg": (mono, rate, {"format": "OGG", "subtype": "VORBIS"}),
        "22k.wav": (soxr.resample(mono, rate, 22050), 22050, {"subtype": "PCM_16"}),
        "quieter.wav": (0.5 * mono, rate, {"subtype": "PCM_16"}),
        "trimmed.wav": (mono[int(0.005 * rate):len(mono) - int(0.003 * rate)], rate,
                        {"subtype": "PCM_24"}),
        "stereo.wav": (np.stack([mono, mono], axis=1), rate, {"subtype": "PCM_16"}),
    }
    for name, (samples, sample_rate, options) in renderings.items():
        sf.write(folder / name, samples, sample_rate, **options)
        copies.append(folder / name)
    return copies


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Two families of distinct takes (hit1/hit2, jump3/jump4), each take rendered 7 ways."""
    root = tmp_path_factory.mktemp("planted")
    return {stem: _render(KENNEY / f"{stem}.wav", root / stem)
            for stem in ("hit1", "hit2", "jump3", "jump4")}


def _grouped(takes: dict[str, list[Path]], **options):
    """Every file of every take gets the *same* vector and duration: the vectors cannot tell
    copies from other takes, so the audio check alone must."""
    paths = [str(path) for files in takes.values() for path in files]
    embeddings = np.ones((len(paths), 8), np.float32)
    return group_duplicates(paths, embeddings, np.ones(len(paths)), **options)


def test_planted_copies_group_and_distinct_takes_do_not(planted):
    table = _grouped(planted)
    assert list(table.columns) == DUPLICATE_COLUMNS
    groups = {frozenset(Path(path).parent.name for path in members["path"])
              for _, members in table.groupby("group")}
    assert groups == {frozenset({stem}) for stem in planted}, groups
    assert table.groupby("group").size().tolist() == [7, 7, 7, 7]
    assert (table.groupby("group")["keep"].sum() == 1).all()
    assert table["correlation"].min() >= 0.92
    assert table.attrs["unreadable"] == {}


def test_the_keeper_is_the_best_copy_and_says_why(planted):
    table = _grouped({"hit1": planted["hit1"]})
    keeper = table[table["keep"]].iloc[0]
    # hit1.wav is 16-bit 44.1 kHz; the trimmed copy is 24-bit but shorter: bit depth first.
    assert Path(keeper["path"]).name == "trimmed.wav"
    assert "higher bit depth" in keeper["reason"] and keeper["bit_depth"] == 24
    reasons = dict(zip(table["path"].map(lambda p: Path(p).name), table["reason"]))
    assert "lossy MP3" in reasons["mp3 copy.mp3"]
    assert "lossy OGG" in reasons["ogg copy.ogg"]
    assert "22050 Hz" in reasons["22k.wav"]
    assert reasons["quieter.wav"].startswith("copy of 'trimmed.wav'")


def test_the_longest_copy_wins_when_formats_tie(tmp_path):
    import soundfile as sf

    data, rate = sf.read(KENNEY / "coin1.wav", dtype="float32")
    sf.write(tmp_path / "full.wav", data, rate, subtype="PCM_16")
    sf.write(tmp_path / "cut.wav", data[int(0.004 * rate):], rate, subtype="PCM_16")
    table = group_duplicates([str(tmp_path / "cut.wav"), str(tmp_path / "full.wav")],
                             np.ones((2, 4)), np.ones(2))
    keeper = table[table["keep"]].iloc[0]
    assert Path(keeper["path"]).name == "full.wav" and "longer" in keeper["reason"]
    cut = table[~table["keep"]].iloc[0]
    assert "4 ms more trimmed" in cut["reason"], cut["reason"]


def test_without_the_audio_check_the_vectors_decide(planted):
    table = _grouped(planted, check_audio=False)
    assert table["group"].nunique() == 1 and len(table) == 28
    assert table["correlation"][~table["keep"]].isna().all()


def test_a_vanished_file_is_reported_not_fatal(planted, tmp_path):
    copies = [shutil.copy(path, tmp_path / path.name) for path in planted["hit2"][:3]]
    gone = tmp_path / "gone.wav"
    paths = [*map(str, copies), str(gone)]
    table = group_duplicates(paths, np.ones((4, 4)), np.ones(4))
    assert len(table) == 3 and str(gone) not in set(table["path"])
    assert table.attrs["unreadable"] == {str(gone): "no such file"}


def test_candidates_need_close_vectors_and_durations():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((50, 16)).astype(np.float32)
    vectors = np.concatenate([base, base[:10] + 0.01 * rng.standard_normal((10, 16))])
    durations = np.concatenate([rng.uniform(0.5, 5, 50), np.zeros(10)])
    durations[50:55] = durations[:5] + 0.01          # copies: about as long
    durations[55:60] = durations[5:10] + 1.0         # alike vectors, a second longer
    first, second, sims = candidate_pairs(vectors, durations)
    assert sorted(zip(first.tolist(), second.tolist())) == [(i, 50 + i) for i in range(5)]
    assert (sims > 0.99).all()


def test_banded_and_faiss_candidates_agree():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((400, 32)).astype(np.float32)
    vectors = np.concatenate([base, base[:100] + 0.02 * rng.standard_normal((100, 32))])
    durations = np.concatenate([rng.uniform(0.2, 20, 400), np.zeros(100)])
    durations[400:] = durations[:100]
    exact = candidate_pairs(vectors, durations)
    approximate = candidate_pairs(vectors, durations,
                                  settings=CandidateSettings(exact_budget=0))
    assert set(zip(*exact[:2])) == set(zip(*approximate[:2]))
    assert len(exact[0]) == 100


def test_components_and_bad_settings():
    assert components(4, np.array([2]), np.array([3])).tolist() == [0, 1, 2, 2]
    with pytest.raises(ParameterError, match="threshold"):
        CandidateSettings(threshold=2)
    with pytest.raises(ParameterError, match="min_correlation"):
        MatchSettings(min_correlation=0)


def test_correlation_ignores_gain_and_polarity_but_not_another_take():
    settings = MatchSettings()
    hit = decode_for_match(KENNEY / "hit1.wav", settings)
    other = decode_for_match(KENNEY / "hit2.wav", settings)
    assert correlation(hit, -0.25 * hit, settings).correlation == pytest.approx(1.0)
    assert correlation(hit, other, settings).correlation < 0.8
    assert correlation(hit, np.zeros_like(hit), settings).correlation == 0.0


def test_a_copy_garbled_above_the_low_band_is_still_a_copy():
    """What a low-bitrate MP3 does to a noisy sound: the top is replaced, the bottom kept."""
    from scipy.signal import butter, sosfilt

    rng = np.random.default_rng(5)
    settings = MatchSettings()
    low = butter(8, 1500, "low", fs=settings.sample_rate, output="sos")
    high = butter(8, 3000, "high", fs=settings.sample_rate, output="sos")
    envelope = np.exp(-np.linspace(0, 4, 16000))
    rumble = sosfilt(low, rng.standard_normal(16000)) * envelope
    original = rumble + 0.6 * sosfilt(high, rng.standard_normal(16000)) * envelope
    garbled = rumble + 0.6 * sosfilt(high, rng.standard_normal(16000)) * envelope
    other_take = sosfilt(low, rng.standard_normal(16000)) * envelope + (original - rumble)
    copy = correlation(original, garbled, settings)
    assert copy.correlation < settings.min_correlation and copy.low_band > 0.99
    assert copy.same_recording(settings)
    take = correlation(original, other_take, settings)
    assert not take.same_recording(settings) and take.low_band < 0.5
