"""The Analyzer: progress while a long sound is analysed; regions of long files."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from soundslike_nb.analysis import AnalysisSettings, Analyzer
from soundslike_nb.errors import ParameterError
from soundslike_nb.scan import FileEntry
from soundslike_nb.segmentation import RegionSettings

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


# --- regions ---------------------------------------------------------------------------------


def _take(tmp_path, name: str, events_s: list[float], seconds: float = 30.0) -> FileEntry:
    """A long take: struck tones at ``events_s`` in silence, written as a WAV file."""
    waveform = np.zeros(int(seconds * 44100), np.float32)
    for index, start in enumerate(events_s):
        hit = tone(0.8, seed=index, frequency=300.0 + 200 * index)
        first = int(start * 44100)
        waveform[first:first + len(hit)] += hit
    path = tmp_path / name
    sf.write(path, waveform, 44100)
    return FileEntry(str(path), path.stat().st_size, path.stat().st_mtime)


def test_long_files_get_regions_from_the_same_pass(aisfx, tmp_path):
    events_s = [3.0, 11.5, 20.25]
    entries = [_take(tmp_path, "take.wav", events_s), _take(tmp_path, "short.wav", [0.5], 3.0),
               _take(tmp_path, "other take.wav", [5.0, 15.0])]
    analyzer = Analyzer(aisfx, AnalysisSettings(regions=RegionSettings()))
    (batch,) = list(analyzer.analyse_files(entries))
    regions = batch.regions
    assert [item.entry.path for item in batch.decoded] == [entry.path for entry in entries]
    assert regions.owners.tolist() == [0, 0, 0, 2, 2]  # the 3 s file has none
    np.testing.assert_allclose(regions.spans_s[:3, 0], events_s, atol=0.03)
    assert (regions.spans_s[:, 1] - regions.spans_s[:, 0] < 1.0).all()
    assert regions.embeddings.shape == (5, 512) and np.isfinite(regions.embeddings).all()
    assert regions.descriptors.shape == (5, batch.descriptors.shape[1])
    # The files' own embeddings are what they are without regions.
    (plain,) = list(Analyzer(aisfx, AnalysisSettings(regions=None)).analyse_files(entries))
    assert len(plain.regions) == 0
    cosine = np.sum(batch.embeddings * plain.embeddings, axis=1) / (
        np.linalg.norm(batch.embeddings, axis=1) * np.linalg.norm(plain.embeddings, axis=1))
    assert cosine.min() > 0.9999
    # A region sounds like its own sound more than like the take's other sounds.
    alone = aisfx.embed([tone(0.8, seed=1, frequency=500.0)])[0]
    similarity = regions.embeddings[:3] @ alone / np.linalg.norm(regions.embeddings[:3], axis=1)
    assert similarity.argmax() == 1


def test_an_embedder_without_embed_regions_embeds_each_region_as_a_sound(tmp_path):
    entries = [_take(tmp_path, "take.wav", [2.0, 7.0], 12.0)]
    analyzer = Analyzer(PlainEmbedder(), AnalysisSettings(regions=RegionSettings()))
    (batch,) = list(analyzer.analyse_files(entries))
    assert batch.regions.owners.tolist() == [0, 0]
    assert batch.regions.embeddings.shape == (2, 4)


def test_region_settings_are_recorded_only_when_there_are_regions():
    assert "regions" not in AnalysisSettings(regions=None).record()  # as files written before
    assert AnalysisSettings().regions == RegionSettings()  # a new library has regions
    settings = AnalysisSettings(regions=RegionSettings(max_region_s=3.0))
    again = AnalysisSettings.from_record(settings.record())
    assert again.regions == settings.regions and again.record() == settings.record()
    assert AnalysisSettings.from_record({"max_duration_s": 600.0}).regions is None
    with pytest.raises(ParameterError, match="RegionSettings"):
        AnalysisSettings(regions={"max_region_s": 3})
