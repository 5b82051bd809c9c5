"""The shipped sound-effects CNN: front end as published, weights verified, batched = one by one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from soundslike_nb import EmbedderError, get_embedder
from soundslike_nb.audio import load
from soundslike_nb.embedders import aisfx as aisfx_module

from .conftest import tone

FIXTURE = Path(__file__).parent / "fixtures" / "aisfx_reference.npz"


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def test_mel_filters_equal_librosa_htk_l1():
    librosa = pytest.importorskip("librosa")
    reference = librosa.filters.mel(sr=44100, n_fft=2048, n_mels=96, fmin=0.0, fmax=22050.0,
                                    htk=True, norm=1)
    ours = aisfx_module.mel_filterbank().numpy().T
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=2e-6)


def test_log_mel_equals_librosa_pipeline():
    librosa = pytest.importorskip("librosa")
    waveform = tone(1.3, seed=3)
    peak = waveform / np.abs(waveform).max()
    power = librosa.feature.melspectrogram(y=peak, sr=44100, n_fft=2048, hop_length=1024,
                                           n_mels=96, fmin=0.0, fmax=22050.0, htk=True, norm=1,
                                           power=2.0, pad_mode="constant")
    expected = (np.log10(1e4 * power + 1) / aisfx_module.LOG_MEL_MAX).T
    ours = aisfx_module.log_mel(torch.from_numpy(waveform), aisfx_module.mel_filterbank())
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("frames, blocks", [(1, 1), (99, 1), (100, 1), (149, 1), (150, 2),
                                            (251, 4)])
def test_blocks_pad_short_and_drop_partial_tail(frames, blocks):
    spectrogram = torch.arange(frames * 96, dtype=torch.float32).reshape(frames, 96)
    split = aisfx_module.split_blocks(spectrogram)
    assert split.shape == (blocks, 100, 96)
    assert torch.equal(split[0, : min(frames, 100)], spectrogram[:100])
    if frames >= 150:
        assert torch.equal(split[1], spectrogram[50:150])


def test_shape_dtype_and_determinism(aisfx):
    waveforms = [tone(0.05, seed=1), tone(3.0, seed=2), np.zeros(4410, np.float32)]
    first = aisfx.embed(waveforms)
    assert first.shape == (3, 512) and first.dtype == np.float32 and np.isfinite(first).all()
    np.testing.assert_array_equal(first, aisfx.embed(waveforms))


def test_batched_equals_one_by_one(aisfx):
    waveforms = [tone(s, seed=i, frequency=200 + 300 * i) for i, s in
                 enumerate([0.2, 2.5, 7.0, 0.9])]
    batched = aisfx.embed(waveforms)
    single = np.concatenate([aisfx.embed([w]) for w in waveforms])
    assert _cosine(batched, single).min() > 0.9999


def test_bf16_matches_fp32():
    fp32 = aisfx_module.AisfxEmbedder(device="cpu", precision="fp32")
    bf16 = aisfx_module.AisfxEmbedder(device="cpu", precision="bf16")
    waveforms = [tone(1.0, seed=i, frequency=300 * (i + 1)) for i in range(3)]
    assert _cosine(fp32.embed(waveforms), bf16.embed(waveforms)).min() > 0.999


def test_provenance_names_the_weights(aisfx):
    provenance = aisfx.provenance
    assert provenance["id"] == "aisfx-ismir2022" and provenance["dimension"] == 512
    assert provenance["weights_sha256"] == aisfx_module.WEIGHTS_SHA256
    assert provenance["sample_rate"] == 44100


def test_a_corrupted_weights_file_is_refused(monkeypatch):
    monkeypatch.setattr(aisfx_module, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(EmbedderError, match="SHA-256"):
        aisfx_module.AisfxEmbedder(device="cpu")


def test_unknown_names_and_options_are_refused():
    with pytest.raises(EmbedderError, match="unknown embedder"):
        get_embedder("nonsense")
    with pytest.raises(EmbedderError, match="precision"):
        aisfx_module.AisfxEmbedder(precision="fp8")
    with pytest.raises(EmbedderError, match="no token"):
        get_embedder("aisfx", token="hf_x")


def test_siblings_are_closer_than_strangers(aisfx, demo_dir):
    """Real sounds: each coin sound is nearer the other coins than the explosions."""
    paths = sorted((demo_dir / "kenney").glob("coin*.wav")) + sorted(
        (demo_dir / "kenney").glob("explosion*.wav"))
    vectors = aisfx.embed([load(p, sample_rate=44100)[0] for p in paths])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    coins = [i for i, p in enumerate(paths) if p.name.startswith("coin")]
    booms = [i for i, p in enumerate(paths) if p.name.startswith("explosion")]
    within = similarity[np.ix_(coins, coins)][~np.eye(len(coins), dtype=bool)].mean()
    across = similarity[np.ix_(coins, booms)].mean()
    assert within > across + 0.05


@pytest.mark.skipif(not FIXTURE.exists(), reason="reference fixture not generated")
def test_matches_the_reference_pipeline_on_real_sounds(aisfx, demo_dir):
    """Reference vectors: the aisfx package's own code (scripts/make_aisfx_reference.py)."""
    reference = np.load(FIXTURE, allow_pickle=False)
    paths = [demo_dir / str(p) for p in reference["paths"]]
    ours = aisfx.embed([load(p, sample_rate=44100)[0] for p in paths])
    cosines = _cosine(ours, reference["embeddings"])
    assert cosines.mean() >= 0.999, f"mean cosine {cosines.mean():.5f}, min {cosines.min():.5f}"
