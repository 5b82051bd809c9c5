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


@pytest.fixture(scope="module")
def reference():
    """Made once by scripts/make_aisfx_reference.py with the aisfx package's own code
    (Essentia front end, its default and the ISMIR paper's) on every demo sound."""
    return np.load(FIXTURE, allow_pickle=False)


def _demo_waveform(demo_dir: Path, relative: str) -> np.ndarray:
    return load(demo_dir / relative, sample_rate=44100)[0]


@pytest.mark.parametrize("samples, frames", [(1, 2), (1023, 2), (1024, 2), (1025, 3),
                                             (10241, 12)])
def test_frame_count_is_essentias(samples, frames):
    assert aisfx_module.frame_count(samples) == frames
    spectrogram = aisfx_module.log_mel(torch.zeros(samples), aisfx_module.mel_filterbank())
    assert spectrogram.shape == (frames, 96)


def test_log_mel_equals_the_reference_spectrograms(reference, demo_dir):
    filters = aisfx_module.mel_filterbank()
    offsets = np.concatenate([[0], np.cumsum(reference["n_frames"])])
    errors = []
    for i, relative in enumerate(reference["paths"]):
        expected = reference["spectrograms"][offsets[i]:offsets[i + 1]]
        waveform = torch.from_numpy(_demo_waveform(demo_dir, str(relative)))
        ours = aisfx_module.log_mel(waveform, filters).numpy()
        assert ours.shape == expected.shape, relative
        errors.append(np.abs(ours - expected).max())
    # decoders differ by a few samples on one lossy file; the rest agree to float precision
    assert np.median(errors) < 1e-5 and np.quantile(errors, 0.9) < 1e-4


def test_mel_filters_sum_to_one_and_are_triangles():
    filters = aisfx_module.mel_filterbank().numpy()
    np.testing.assert_allclose(filters.sum(axis=0), 1.0, rtol=1e-5)
    peaks = filters.argmax(axis=0)
    assert (np.diff(peaks) >= 0).all()  # centres rise with the band index


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


def test_progress_is_reported_per_network_batch_and_changes_nothing(aisfx):
    waveforms = [tone(30.0, seed=3), tone(1.0, seed=4)]
    blocks = sum(len(aisfx.blocks(waveform)) for waveform in waveforms)
    shares: list[float] = []
    with_progress = aisfx.embed(waveforms, progress=shares.append)
    np.testing.assert_array_equal(with_progress, aisfx.embed(waveforms))
    assert len(shares) == -(-blocks // aisfx.max_batch_blocks) > 5
    assert shares == sorted(shares) and shares[-1] == 1.0 and 0 < shares[0] < 0.2


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


def test_matches_the_reference_pipeline_on_real_sounds(aisfx, demo_dir, reference):
    """The product's default embedder (bf16 where the CPU has it) against aisfx's own output."""
    ours = aisfx.embed([_demo_waveform(demo_dir, str(p)) for p in reference["paths"]])
    cosines = _cosine(ours, reference["embeddings"])
    assert cosines.mean() >= 0.999, f"mean cosine {cosines.mean():.5f}, min {cosines.min():.5f}"
    assert cosines.min() >= 0.99


def test_long_sound_blocks_match_the_reference(aisfx, demo_dir, reference):
    """The 53 demo WAVs end to end: 20 blocks, hop 50 frames, partial tail block dropped."""
    waveform = np.concatenate([_demo_waveform(demo_dir, str(p))
                               for p in reference["concat_paths"]])
    blocks = aisfx.blocks(waveform)
    assert blocks.shape[0] == len(reference["concat_block_embeddings"]) == 20
    ours = aisfx.embed([waveform])[0]
    assert _cosine(ours, reference["concat_embedding"]) >= 0.9999


def test_inference_network_equals_the_plain_network():
    """Folding batch norms and the channels-last layout change speed, not the function."""
    plain = aisfx_module.AisfxEmbedder(device="cpu", precision="fp32")
    network = aisfx_module.AisfxNet()
    from safetensors.torch import load_file

    weights = Path(aisfx_module.__file__).parent / "weights" / aisfx_module.WEIGHTS_FILE
    network.load_state_dict(load_file(weights))
    blocks = torch.from_numpy(np.random.default_rng(0).random((6, 100, 96), np.float32))
    with torch.inference_mode():
        expected = network.eval()(blocks).numpy()
        fused = plain.network(blocks).numpy()
    assert _cosine(expected, fused).min() > 0.999999
