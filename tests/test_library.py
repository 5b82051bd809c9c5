"""The embedding library: build, incremental rescan, failures, atomic and resumable writes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import soundslike_nb as sl
from soundslike_nb import EmbedderError, LibraryError
from soundslike_nb.analysis import AnalysisSettings, Analyzer
from soundslike_nb.audio import info
from soundslike_nb.cli import main
from soundslike_nb.libfile import read_provenance, read_table
from soundslike_nb.library import Library


class CountingEmbedder:
    """Wraps a real embedder and counts what it embeds (and can stop a build midway)."""

    def __init__(self, inner, *, stop_after_calls: int | None = None) -> None:
        self.inner = inner
        self.id, self.sample_rate, self.dimension = inner.id, inner.sample_rate, inner.dimension
        self.embedded = 0
        self.calls = 0
        self.stop_after_calls = stop_after_calls

    @property
    def provenance(self):
        return self.inner.provenance

    def embed(self, waveforms):
        if self.stop_after_calls is not None and self.calls >= self.stop_after_calls:
            raise KeyboardInterrupt("killed by the test")
        self.calls += 1
        self.embedded += len(waveforms)
        return self.inner.embed(waveforms)


class OtherModel:
    """A different model (seeded random projection of a spectrum): a fixture, never a default."""

    id, sample_rate, dimension = "test-other-model", 16000, 8
    @property
    def provenance(self):
        return {"id": self.id, "dimension": 8, "sample_rate": 16000, "weights_sha256": "f" * 64}

    def embed(self, waveforms):
        rng = np.random.default_rng(0)
        projection = rng.standard_normal((64, 8))
        return np.stack([np.abs(np.fft.rfft(w, 126))[:64] @ projection for w in waveforms]
                        ).astype(np.float32)


def test_demo_library_has_every_sound(demo_library_file):
    lib = sl.load_library(demo_library_file)
    audio_files = [p for p in (demo_library_file.parent / "demo").rglob("*")
                   if p.suffix.lower() in {".wav", ".ogg", ".mp3"}]
    assert len(lib) == len(audio_files) >= 50
    assert list(lib.frame.columns) == ["name", "path", "duration", "sample_rate", "channels",
                                       "frames", "size", "mtime", "tags", "embedding",
                                       "descriptors", "thumbnail"]
    assert lib.frame["tags"].map(len).sum() == 0  # a new library: no labels yet
    assert lib.embeddings.shape == (len(lib), 512) and lib.embeddings.dtype == np.float32
    row = lib.frame[lib.frame["path"].str.endswith("coin1.wav")].iloc[0]
    assert row["name"] == "coin 1" and os.path.isabs(row["path"])
    assert row["duration"] == pytest.approx(info(row["path"]).duration)
    assert len(row["embedding"]) == 512
    provenance = read_provenance(demo_library_file)
    assert provenance["format_version"] == 1
    assert provenance["embedder"]["id"] == "aisfx-ismir2022"
    assert provenance["embedder"]["weights_sha256"]
    assert provenance["created"] and provenance["soundslike_nb_version"]
    assert not lib.failures


def test_rescan_embeds_only_what_changed(tmp_path, demo_dir, aisfx):
    folder = tmp_path / "lib"
    shutil.copytree(demo_dir / "kenney", folder, ignore=shutil.ignore_patterns("[e-z]*"))
    out = tmp_path / "lib.parquet"
    counting = CountingEmbedder(aisfx)
    first = sl.build_library(folder, out=out, embedder=counting, progress=False)
    assert counting.embedded == len(first) == 5

    again = sl.build_library(folder, out=out, progress=False)  # no model named: none loaded
    assert again.report.embedded == 0 and again.report.unchanged == len(first)
    np.testing.assert_array_equal(again.embeddings, first.embeddings)

    changed = folder / "coin1.wav"
    data, rate = sf.read(changed)
    sf.write(changed, data[: len(data) // 2], rate)
    (folder / "coin2.wav").unlink()
    shutil.copy(demo_dir / "kenney" / "explosion1.wav", folder / "new boom.wav")
    counting.embedded = 0
    third = sl.build_library(folder, out=out, embedder=counting, progress=False)
    assert counting.embedded == 2  # the changed file and the new one
    assert third.report.removed == 1 and len(third) == len(first)
    assert not third.rows["path"].str.endswith("coin2.wav").any()
    new_row = third.rows[third.rows["path"].str.endswith("new boom.wav")].iloc[0]
    assert new_row["name"] == "new boom"
    changed_row = third.rows[third.rows["path"].str.endswith("coin1.wav")].iloc[0]
    assert changed_row["duration"] == pytest.approx(len(data) // 2 / rate)
    _same_rows_as_a_fresh_build(third, folder, aisfx)


def _same_rows_as_a_fresh_build(lib, folder, aisfx) -> None:
    """Every row's embedding and descriptors are those of its own file, however it got there."""
    fresh = sl.build_library(folder, embedder=aisfx, progress=False)
    assert list(lib.rows["path"]) == list(fresh.rows["path"])
    np.testing.assert_allclose(lib.embeddings, fresh.embeddings, atol=1e-5)
    np.testing.assert_allclose(lib.descriptors, fresh.descriptors, rtol=1e-5, atol=1e-5)


def _bad_and_good_folder(folder, write_sound) -> dict[str, float]:
    """Writes every kind of bad file next to good files with odd names; returns good durations."""
    good = {
        "plain.wav": dict(seconds=0.5),
        "with spaces and 'quotes' \"double\".wav": dict(seconds=0.3),
        "ünïcödé 音.flac": dict(seconds=0.4, subtype="PCM_16"),
        "<tag> & amp.wav": dict(seconds=0.2),
        "-rf --leading-dashes.wav": dict(seconds=0.25),
        "surround 6ch.wav": dict(seconds=0.6, channels=6),
        "phone 8k.wav": dict(seconds=0.7, rate=8000),
        "hires 192k 24bit.wav": dict(seconds=0.35, rate=192000, subtype="PCM_24"),
        "tiny click.wav": dict(seconds=0.01),
    }
    for name, options in good.items():
        write_sound(name, folder=folder, **options)
    sf.write(folder / "silence.wav", np.zeros(22050, np.float32), 44100)
    (folder / "empty.wav").write_bytes(b"")
    sf.write(folder / "zero.wav", np.zeros((0, 1), np.float32), 44100)
    truncated = write_sound("truncated.wav", seconds=1.0, folder=folder)
    truncated.write_bytes(truncated.read_bytes()[:30000])
    (folder / "text.wav").write_text("just some text renamed to .wav\n")
    nan = np.full(4410, 0.1, np.float32)
    nan[10] = np.nan
    sf.write(folder / "nan.wav", nan, 44100, subtype="FLOAT")
    (folder / "x.wav").mkdir()
    (folder / "loop.wav").symlink_to(folder / "loop.wav")
    return {**{name: options["seconds"] for name, options in good.items()}, "silence.wav": 0.5}


BAD_REASONS = {
    "empty.wav": "empty file",
    "zero.wav": "0 samples",
    "truncated.wav": "truncated",
    "text.wav": "not a readable audio file",
    "nan.wav": "NaN or infinite",
    "x.wav": "is a directory",
    "loop.wav": "symbolic link loop",
}


def test_bad_files_are_reported_and_never_stop_the_build(tmp_path, write_sound, aisfx):
    folder = tmp_path / "messy"
    folder.mkdir()
    good = _bad_and_good_folder(folder, write_sound)
    out = tmp_path / "messy.parquet"
    lib = sl.build_library(folder, out=out, embedder=aisfx, progress=False)
    durations = {os.path.basename(p): d for p, d in zip(lib.rows["path"], lib.rows["duration"])}
    assert set(durations) == set(good)
    for name, seconds in good.items():
        assert durations[name] == pytest.approx(seconds, abs=1e-3), name
    failures = {os.path.basename(p): reason for p, reason in lib.failures.items()}
    assert set(failures) == set(BAD_REASONS)
    for name, fragment in BAD_REASONS.items():
        assert fragment in failures[name], (name, failures[name])
    assert np.isfinite(lib.embeddings).all()

    # failures are remembered: an unchanged bad file is not retried, a fixed one is
    counting = CountingEmbedder(aisfx)
    write_sound("empty.wav", seconds=0.2, folder=folder)
    again = sl.build_library(folder, out=out, embedder=counting, progress=False)
    assert counting.embedded == 1
    assert "empty.wav" not in {os.path.basename(p) for p in again.failures}
    assert len(again.failures) == len(BAD_REASONS) - 1


@pytest.mark.slow
def test_a_twenty_minute_file_is_indexed_with_its_duration(tmp_path, write_sound, aisfx):
    write_sound("ambience 20min.flac", seconds=20 * 60, rate=8000, subtype="PCM_16",
                folder=tmp_path / "long")
    lib = sl.build_library(tmp_path / "long", embedder=aisfx, progress=False)
    assert lib.rows["duration"].iloc[0] == pytest.approx(1200.0)
    assert np.isfinite(lib.embeddings).all()


@pytest.mark.parametrize("checkpoint_seconds", [0.0, 3600.0])  # each batch, or only at the kill
def test_killed_build_keeps_the_old_library_and_resumes(tmp_path, demo_dir, aisfx,
                                                        checkpoint_seconds):
    folder = tmp_path / "lib"
    shutil.copytree(demo_dir / "kenney", folder, ignore=shutil.ignore_patterns("[h-z]*"))
    out = tmp_path / "lib.parquet"
    old = sl.build_library(folder / "coin1.wav", out=out, embedder=aisfx, progress=False)
    before = out.read_bytes()
    dying = CountingEmbedder(aisfx, stop_after_calls=1)
    with pytest.raises(KeyboardInterrupt):
        sl.build_library(folder, out=out, embedder=dying, progress=False,
                         checkpoint_every_s=checkpoint_seconds)
    assert out.read_bytes() == before  # the previous library is intact
    assert len(old) == 1
    finished_before_kill = dying.embedded
    assert finished_before_kill > 0

    counting = CountingEmbedder(aisfx)
    lib = sl.build_library(folder, out=out, embedder=counting, progress=False)
    total = len(list(folder.glob("*.wav")))
    assert len(lib) == total
    assert counting.embedded == total - finished_before_kill - 1  # nothing finished is redone
    assert lib.report.resumed == finished_before_kill
    assert not (tmp_path / ".lib.parquet.partial").exists()
    _same_rows_as_a_fresh_build(lib, folder, aisfx)


def test_a_library_refuses_another_model(demo_library_file):
    with pytest.raises(EmbedderError) as caught:
        sl.load_library(demo_library_file, embedder=OtherModel())
    assert "aisfx-ismir2022" in str(caught.value) and "test-other-model" in str(caught.value)
    with pytest.raises(EmbedderError, match="test-other-model"):
        Library(read_table(demo_library_file), analyzer=Analyzer(OtherModel()))


def test_building_on_a_library_of_another_model_is_refused(tmp_path, write_sound, aisfx):
    write_sound("a.wav", folder=tmp_path / "sounds")
    out = tmp_path / "lib.parquet"
    sl.build_library(tmp_path / "sounds", out=out, embedder=aisfx, progress=False)
    with pytest.raises(EmbedderError, match="aisfx-ismir2022"):
        sl.build_library(tmp_path / "sounds", out=out, embedder=OtherModel(), progress=False)


def test_unreadable_library_files_are_library_errors(tmp_path):
    with pytest.raises(LibraryError, match="no such library"):
        sl.load_library(tmp_path / "absent.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(LibraryError, match="not a readable Parquet"):
        sl.load_library(junk)
    plain = tmp_path / "plain.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(plain)
    with pytest.raises(LibraryError, match="not a soundslike_nb library"):
        sl.load_library(plain)


def _legacy_file(path, embedding_type, values) -> None:
    """A library file as other writers make it: nullable vectors, maybe not fixed-size."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from soundslike_nb.libfile import ROW_COLUMNS

    rows = {name: [0] * len(values) for name in ROW_COLUMNS}
    rows.update(name=["a", "b", "c"][:len(values)], path=["/a", "/b", "/c"][:len(values)],
                duration=[1.0] * len(values), mtime=[0.0] * len(values))
    table = pa.table({**rows, "embedding": pa.array(values, type=embedding_type)})
    provenance = {"format_version": 1, "embedder": {"id": "x", "dimension": 2}}
    pq.write_table(table.replace_schema_metadata({"soundslike_nb": json.dumps(provenance)}), path,
                   row_group_size=2)


def test_vectors_are_read_from_files_of_other_writers(tmp_path):
    import pyarrow as pa

    nullable = tmp_path / "nullable.parquet"  # as pandas/pyarrow write by default, 2 row groups
    _legacy_file(nullable, pa.list_(pa.float32(), 2), [[1, 2], [3, 4], [5, 6]])
    table = read_table(nullable)
    np.testing.assert_array_equal(table.embeddings, [[1, 2], [3, 4], [5, 6]])
    assert table.descriptors is None and list(table.rows["name"]) == ["a", "b", "c"]

    ragged = tmp_path / "ragged.parquet"
    _legacy_file(ragged, pa.list_(pa.float32()), [[1, 2], [3, 4, 5]])
    with pytest.raises(LibraryError, match="'embedding' must be a fixed-size list of floats"):
        read_table(ragged)
    holes = tmp_path / "holes.parquet"
    _legacy_file(holes, pa.list_(pa.float32(), 2), [[1, 2], None, [5, 6]])
    with pytest.raises(LibraryError, match="'embedding' has missing values"):
        read_table(holes)


class FlakyEmbedder(CountingEmbedder):
    """The real model, but it fails (as out of memory would) on sounds longer than a limit."""

    def __init__(self, inner, *, fail_longer_than: int) -> None:
        super().__init__(inner)
        self.fail_longer_than = fail_longer_than

    def embed(self, waveforms):
        if any(len(waveform) > self.fail_longer_than for waveform in waveforms):
            raise MemoryError("out of memory (simulated)")
        return super().embed(waveforms)


def test_an_analysis_failure_is_retried_but_an_undecodable_file_is_not(tmp_path, write_sound,
                                                                        aisfx):
    folder = tmp_path / "sounds"
    write_sound("short.wav", 0.5, folder=folder)
    write_sound("long.wav", 3.0, folder=folder)
    (folder / "broken.wav").write_bytes(b"RIFF not really a wave file")
    out = tmp_path / "lib.parquet"
    flaky = FlakyEmbedder(aisfx, fail_longer_than=44100)
    first = sl.build_library(folder, out=out, embedder=flaky, progress=False)
    assert set(first.rows["name"]) == {"short"}
    assert set(first.failures) == {str(folder / "long.wav"), str(folder / "broken.wav")}
    assert "out of memory" in first.failures[str(folder / "long.wav")]
    records = read_provenance(out)["failures"]
    assert records[str(folder / "long.wav")]["retry"] is True
    assert records[str(folder / "broken.wav")]["retry"] is False

    counting = CountingEmbedder(aisfx)
    second = sl.build_library(folder, out=out, embedder=counting, progress=False)
    assert set(second.rows["name"]) == {"short", "long"}  # the passing failure was retried
    assert counting.embedded == 1 and second.report.unchanged == 1
    assert list(second.failures) == [str(folder / "broken.wav")]  # still remembered...
    third = sl.build_library(folder, out=out, embedder=counting, progress=False)
    assert counting.embedded == 1 and third.report.embedded == 0  # ...and not tried again


def test_two_writers_never_lose_an_update(tmp_path, write_sound, aisfx):
    import threading

    from filelock import FileLock

    write_sound("a.wav", 0.5, folder=tmp_path / "first")
    write_sound("b.wav", 0.5, folder=tmp_path / "second", seed=1)
    out = tmp_path / "lib.parquet"
    outcome = {}
    lock = FileLock(tmp_path / ".lib.parquet.lock")
    lock.acquire()  # another writer is busy with the library
    waiting = threading.Thread(target=lambda: outcome.update(lib=sl.build_library(
        tmp_path / "second", out=out, embedder=aisfx, progress=False)))
    waiting.start()
    waiting.join(timeout=3.0)
    assert waiting.is_alive()  # it waits for the other writer...
    assert not out.exists()
    # the other writer writes its library, then lets go
    written = sl.build_library(tmp_path / "first", out=tmp_path / "other.parquet", embedder=aisfx,
                               progress=False)
    os.replace(tmp_path / "other.parquet", out)
    assert len(written) == 1
    assert list(sl.load_library(out).rows["name"]) == ["a"]  # a reader is never blocked
    lock.release()
    waiting.join(timeout=120)
    # ...then starts from what it wrote: both sounds are there
    assert sorted(outcome["lib"].rows["name"]) == ["a", "b"]
    assert sorted(sl.load_library(out).rows["name"]) == ["a", "b"]


def test_a_library_never_loads_a_model_nobody_named(tmp_path, demo_library_file, monkeypatch):
    table = read_table(demo_library_file)
    foreign = dict(table.provenance, embedder={**table.provenance["embedder"],
                                               "id": "pyannote/embedding",
                                               "source": "pyannote/embedding"})
    out = tmp_path / "foreign.parquet"
    from soundslike_nb.libfile import LibraryTable, write_table

    write_table(LibraryTable(table.rows, table.embeddings, foreign, table.descriptors), out)
    loaded = []
    import soundslike_nb.model_choice as model_choice

    monkeypatch.setattr(model_choice, "get_embedder",
                        lambda *args, **kwargs: loaded.append(args) or pytest.fail("loaded"))
    lib = sl.load_library(out)
    assert len(lib.similar_to(0, k=3)) == 3  # stored rows need no model
    for attempt in (lambda: lib.search(np.zeros(44100, np.float32)),
                    lambda: sl.build_library(tmp_path / "nothing-here", out=out,
                                             progress=False)):
        (tmp_path / "nothing-here").mkdir(exist_ok=True)
        (tmp_path / "nothing-here" / "new.wav").write_bytes(
            (Path(table.rows["path"][0])).read_bytes())
        with pytest.raises(EmbedderError, match="loads only when you name it") as caught:
            attempt()
        assert "--embedder pyannote/embedding" in str(caught.value)
    assert loaded == []
    assert main(["search", str(out), str(table.rows["path"][0]), "-k", "2"]) == 0  # a row
    assert main(["search", str(out), str(tmp_path / "nothing-here" / "new.wav")]) == 2


def test_queries_are_analysed_with_the_librarys_recorded_settings(tmp_path, write_sound, aisfx):
    write_sound("long.wav", 8.0, folder=tmp_path / "sounds", frequency=220.0)
    out = tmp_path / "lib.parquet"
    built = sl.build_library(tmp_path / "sounds", out=out, embedder=aisfx, progress=False,
                             settings=AnalysisSettings(max_duration_s=2.0))
    assert read_provenance(out)["analysis"]["max_duration_s"] == 2.0
    lib = sl.load_library(out)
    assert lib.settings.max_duration_s == 2.0 and lib.analyzer.settings.max_duration_s == 2.0
    # the same file as an upload (bytes: no row to reuse) is analysed like the library's row
    features = lib.features_of((tmp_path / "sounds" / "long.wav").read_bytes(), name="long.wav")
    np.testing.assert_allclose(features.embedding, built.embeddings[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(features.descriptors, built.descriptors[0], rtol=1e-3, atol=1e-3)
    with pytest.raises(LibraryError, match="analysed with"):
        sl.build_library(tmp_path / "sounds", out=out, embedder=aisfx, progress=False,
                         settings=AnalysisSettings(max_duration_s=5.0))


def test_each_sound_knows_its_folder_within_the_library(tmp_path, write_sound, aisfx):
    root = tmp_path / "sfx"
    write_sound("top.wav", 0.3, folder=root)
    write_sound("byebye.wav", 0.3, folder=root / "voices" / "female")
    write_sound("byebye.wav", 0.3, folder=root / "voices" / "male", seed=1)
    lib = sl.build_library(root, out=tmp_path / "lib.parquet", embedder=aisfx, progress=False)
    folders = dict(zip(lib.rows["path"], sl.load_library(tmp_path / "lib.parquet").folders))
    assert folders == {str(root / "top.wav"): "",
                       str(root / "voices" / "female" / "byebye.wav"): "voices/female",
                       str(root / "voices" / "male" / "byebye.wav"): "voices/male"}


def test_a_rescan_that_changes_nothing_leaves_the_file_alone(tmp_path, write_sound, aisfx):
    write_sound("a.wav", 0.3, folder=tmp_path / "sounds")
    (tmp_path / "sounds" / "bad.wav").write_bytes(b"not audio")
    out = tmp_path / "lib.parquet"
    sl.build_library(tmp_path / "sounds", out=out, embedder=aisfx, progress=False)
    before = (os.stat(out).st_mtime_ns, out.read_bytes())
    again = sl.build_library(tmp_path / "sounds", out=out, embedder=aisfx, progress=False)
    assert again.report.unchanged == 1 and len(again.failures) == 1
    assert (os.stat(out).st_mtime_ns, out.read_bytes()) == before
    write_sound("b.wav", 0.3, folder=tmp_path / "sounds", seed=2)
    changed = sl.build_library(tmp_path / "sounds", out=out, embedder=aisfx, progress=False)
    assert changed.report.embedded == 1 and os.stat(out).st_mtime_ns != before[0]


def test_progress_counts_bytes_of_audio_not_files(tmp_path, write_sound, aisfx, capsys):
    short = write_sound("short.wav", 0.2, folder=tmp_path / "sounds")
    long = write_sound("long.wav", 6.0, folder=tmp_path / "sounds")
    sl.build_library(tmp_path / "sounds", out=tmp_path / "lib.parquet", embedder=aisfx,
                     progress=True)
    bar = capsys.readouterr().err
    total_kib = (short.stat().st_size + long.stat().st_size) / 1024
    assert "analysing 2 files" in bar and "2/2 files" in bar
    assert f"{total_kib:.0f}k/{total_kib:.0f}k" in bar.replace(".0k", "k"), bar[-300:]


def test_long_files_make_smaller_batches(tmp_path, write_sound, aisfx):
    from soundslike_nb.scan import scan_folders

    folder = tmp_path / "takes"
    for name in ("a.wav", "b.wav"):  # 10 s of stereo: over 1 MiB, so their headers are read
        write_sound(name, 10.0, channels=2, folder=folder)
    write_sound("c.wav", 0.5, folder=folder)
    entries = scan_folders([folder]).files
    batches = list(Analyzer(aisfx, batch_seconds=15.0).analyse_files(entries))
    assert [len(batch.decoded) for batch in batches] == [1, 2]
    assert [len(batch.decoded) for batch in Analyzer(aisfx).analyse_files(entries)] == [3]


def test_each_sound_keeps_a_waveform_thumbnail(tmp_path, write_sound, aisfx):
    from soundslike_nb.libfile import LibraryTable, write_table

    folder = tmp_path / "sounds"
    write_sound("a.wav", 2.0, folder=folder)
    out = tmp_path / "lib.parquet"
    built = sl.build_library(folder, out=out, embedder=aisfx, progress=False)
    thumbnail = built.thumbnails[0]
    assert built.thumbnails.shape == (1, 64) and built.thumbnails.dtype == np.uint8
    assert thumbnail.max() == 255 and thumbnail[0] > thumbnail[-1]  # a decaying tone
    np.testing.assert_array_equal(sl.load_library(out).thumbnails, built.thumbnails)
    assert list(sl.load_library(out).frame["thumbnail"][0]) == list(thumbnail)

    # A library written before thumbnails existed opens without them; new files get theirs.
    old = read_table(out)
    write_table(LibraryTable(old.rows, old.embeddings, old.provenance, old.descriptors), out)
    assert sl.load_library(out).thumbnails is None
    write_sound("b.wav", 1.0, folder=folder, seed=3)
    grown = sl.build_library(folder, out=out, embedder=aisfx, progress=False)
    by_name = dict(zip(grown.rows["name"], sl.load_library(out).thumbnails))
    assert not by_name["a"].any() and by_name["b"].max() == 255


def test_a_library_analyses_queries_with_its_own_settings_whatever_analyzer_it_is_given(
        tmp_path, write_sound, aisfx):
    write_sound("a.wav", 1.0, folder=tmp_path / "sounds")
    out = tmp_path / "lib.parquet"
    sl.build_library(tmp_path / "sounds", out=out, embedder=aisfx, progress=False,
                     settings=AnalysisSettings(max_duration_s=30.0))
    other = Analyzer(aisfx, AnalysisSettings(max_duration_s=2.0, device="cpu"))
    lib = Library(read_table(out), path=out, analyzer=other)
    assert lib.analyzer.settings.max_duration_s == 30.0 and lib.analyzer.embedder is aisfx
    assert lib.analyzer.settings.device == "cpu"
