"""The Analyzer's one-sound path: progress while a long sound is analysed."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from soundslike_nb.analysis import Analyzer

from .conftest import tone


class PlainEmbedder:
    """An embedder of the user's own, whose ``embed`` takes no ``progress``."""

    id = "test-plain"
    sample_rate = 44100
    dimension = 4

    @property
    def provenance(self) -> dict:
        return {"id": self.id, "dimension": 4, "weights_sha256": "0" * 64, "sample_rate": 44100}

    def embed(self, waveforms):
        return np.ones((len(waveforms), self.dimension), np.float32)


def _wav(seconds: float) -> bytes:
    out = io.BytesIO()
    sf.write(out, tone(seconds, seed=5), 44100, format="WAV")
    return out.getvalue()


def test_a_long_sound_reports_its_progress_and_analyses_as_without(aisfx):
    analyzer = Analyzer(aisfx)
    shares: list[float] = []
    with_progress = analyzer.analyse(_wav(20.0), name="take.wav", progress=shares.append)
    without = analyzer.analyse(_wav(20.0), name="take.wav")
    np.testing.assert_array_equal(with_progress.embedding, without.embedding)
    np.testing.assert_array_equal(with_progress.descriptors, without.descriptors)
    from soundslike_nb.audio import load

    waveform, _ = load(_wav(20.0), sample_rate=aisfx.sample_rate)
    batches = -(-len(aisfx.blocks(waveform)) // aisfx.max_batch_blocks)
    # decoded, one share per model batch, done
    assert shares[0] == 0.02 and shares[-1] == 1.0 and len(shares) == batches + 2
    assert shares == sorted(shares) and 0.05 < shares[1] < shares[-2] <= 0.94


def test_an_embedder_without_progress_still_reports_its_stages():
    shares: list[float] = []
    features = Analyzer(PlainEmbedder()).analyse(_wav(1.0), name="one.wav",
                                                 progress=shares.append)
    assert features.embedding.shape == (4,) and shares == [0.02, 1.0]
