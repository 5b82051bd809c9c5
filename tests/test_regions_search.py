"""Regions in the library: stored with their files, kept by rebuilds, searched with the files
(per_file, start/end, duration of what is found), and queried by a span of a file."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import soundslike_nb as sl
from soundslike_nb import ParameterError
from soundslike_nb.analysis import AnalysisSettings
from soundslike_nb.cli import main
from soundslike_nb.libfile import LibraryTable, concat_tables, read_table, write_table
from soundslike_nb.regions import Regions
from soundslike_nb.searcher import distinct_moments

PLANTED_AT_S = 6.0
KNOWN = "explosion1.wav"


def _bed(seconds: float, *, seed: int) -> np.ndarray:
    """A quiet, slowly moving noise bed (an ambience) at 44.1 kHz."""
    rng = np.random.default_rng(seed)
    noise = np.cumsum(rng.standard_normal(int(seconds * 44100))).astype(np.float32)
    noise -= np.convolve(noise, np.ones(2048) / 2048, mode="same")
    return 0.01 * noise / (np.abs(noise).max() + 1e-9)


def _plant(bed: np.ndarray, sound_path, at_s: float) -> None:
    sound, rate = sf.read(sound_path, dtype="float32", always_2d=True)
    assert rate == 44100
    start = int(at_s * rate)
    bed[start:start + len(sound)] += sound.mean(axis=1)[:len(bed) - start]


@pytest.fixture(scope="module")
def sounds(tmp_path_factory, demo_dir):
    """A folder of demo sounds and a 16 s take with the known sound planted at 6 s."""
    folder = tmp_path_factory.mktemp("regions") / "sounds"
    folder.mkdir()
    for name in ("explosion2.wav", "hit1.wav", "jump1.wav", "coin2.wav", "error1.wav"):
        shutil.copy(demo_dir / "kenney" / name, folder / name)
    take = _bed(16.0, seed=1)
    _plant(take, demo_dir / "kenney" / KNOWN, PLANTED_AT_S)
    _plant(take, demo_dir / "kenney" / "coin1.wav", 11.0)
    sf.write(folder / "field take.wav", take, 44100)
    return folder


@pytest.fixture(scope="module")
def library(sounds, aisfx):
    return sl.build_library(sounds, out=sounds.parent / "lib.parquet", embedder=aisfx,
                            progress=False)


def test_long_files_get_regions_stored_with_the_library(library, sounds):
    regions = library.regions
    take = library.position_of(sounds / "field take.wav")
    assert set(regions["file"]) == {take}  # only the file longer than 4 s
    assert (regions["path"] == str(sounds / "field take.wav")).all()
    assert (regions["end"] > regions["start"]).all() and regions["end"].max() <= 16.0 + 1e-6
    assert np.isclose(regions["start"], PLANTED_AT_S, atol=0.1).any()  # the event's onset
    reopened = sl.load_library(library.path)
    pd.testing.assert_frame_equal(reopened.regions, regions)
    np.testing.assert_array_equal(reopened.region_table.embeddings,
                                  library.region_table.embeddings)
    assert reopened.region_features(0).descriptors.shape == library.descriptors[0].shape
    assert library.provenance["analysis"]["regions"]["min_file_s"] == 4.0


def test_the_known_sound_finds_the_moment_inside_the_long_take(library, demo_dir, sounds):
    found = library.search(demo_dir / "kenney" / KNOWN, k=5)
    assert list(found.columns[:6]) == ["rank", "name", "path", "start", "end", "duration"]
    take = found[found["path"] == str(sounds / "field take.wav")]
    assert len(take) == 1 and take.index[0] <= 2  # among the first three, once (per_file 1)
    assert abs(take["start"].iloc[0] - PLANTED_AT_S) < 0.1  # where the sound starts
    assert np.isclose(take["duration"].iloc[0], take["end"].iloc[0] - take["start"].iloc[0])
    files = found[found["start"].isna()]
    assert (files["duration"] == [library.rows["duration"][library.position_of(path)]
                                  for path in files["path"]]).all()


def test_the_command_line_lists_the_long_file_with_its_start(library, demo_dir, capsys):
    assert main(["search", library.path, str(demo_dir / "kenney" / KNOWN), "--json",
                 "-k", "5"]) == 0
    records = json.loads(capsys.readouterr().out)
    take = [record for record in records if record["name"] == "field take"]
    assert len(take) == 1 and abs(take[0]["start"] - PLANTED_AT_S) < 0.1
    assert all(record["start"] is None and record["end"] is None
               for record in records if record["name"] != "field take")


def test_per_file_limits_the_results_of_one_file(library, sounds):
    take = library.position_of(sounds / "field take.wav")
    features = library.region_features(0)

    def same_moment(one, other) -> bool:
        return min(one[1], other[1]) - max(one[0], other[0]) >= 0.5 * min(
            one[1] - one[0], other[1] - other[0])

    every = library.regions[["start", "end"]].to_numpy()
    for limit in (1, 2, None):
        found = library.search_features(features, k=len(library.regions) + 10, per_file=limit)
        mine = found[found["path"] == str(sounds / "field take.wav")]
        listed = mine.dropna(subset=["start"])[["start", "end"]].to_numpy()
        assert found["similarity"].is_monotonic_decreasing
        # each moment once: no two listed regions of the take overlap by half ...
        assert not any(same_moment(one, other) for index, one in enumerate(listed)
                       for other in listed[:index])
        if limit is None:  # ... and every region of the take is listed or one listed holds it
            assert mine["start"].isna().sum() == 1  # the take itself too
            assert all(any(same_moment(region, shown) for shown in listed) for region in every)
            assert 2 <= len(listed) < len(every)  # the fixture's regions do overlap
        else:
            assert len(mine) == limit
    assert library.rows["path"][take] == str(sounds / "field take.wav")
    with pytest.raises(ParameterError, match="per_file"):
        library.search_features(features, per_file=0)


def test_distinct_moments_lists_each_moment_of_a_file_once():
    owners = np.array([0, 0, 1, 0, 0, 0, 1])
    spans = np.array([[1.0, 2.0], [1.5, 2.5], [1.0, 2.0], [np.nan, np.nan], [3.0, 4.0],
                      [1.9, 2.9], [np.nan, np.nan]])
    # 1.5-2.5 overlaps 1.0-2.0 by half of the shorter: the same moment; another file's
    # 1.0-2.0 is its own; a whole file overlaps nothing; 1.9-2.9 overlaps 1.0-2.0 by 0.1 s
    assert distinct_moments(owners, spans, per_file=None).tolist() == [
        True, False, True, True, True, True, True]
    assert distinct_moments(owners, spans, per_file=2).tolist() == [
        True, False, True, True, False, False, True]
    assert distinct_moments(owners[:0], spans[:0], per_file=1).tolist() == []


def test_the_duration_range_applies_to_what_is_returned(library):
    features = library.region_features(0)
    found = library.search_features(features, k=50, per_file=None, duration=(0.0, 1.5))
    assert len(found) and (found["duration"] <= 1.5).all()
    assert found["start"].notna().any()  # short regions of the 16 s take are in
    assert found.loc[found["start"].isna(), "duration"].le(1.5).all()


def test_more_like_this_leaves_out_the_file_and_its_regions(library, sounds):
    take = library.position_of(sounds / "field take.wav")
    found = library.similar_to(take, k=20, per_file=None)
    assert str(sounds / "field take.wav") not in set(found["path"])


def test_a_region_of_a_file_is_a_query(library, sounds, demo_dir, tmp_path):
    take = sounds / "field take.wav"
    span = (PLANTED_AT_S, PLANTED_AT_S + 1.4)
    found = library.search(take, region=span, k=10, per_file=None)
    mine = found[found["path"] == str(take)]
    # Its own regions overlapping the span, and the whole take, are left out.
    assert not ((mine["start"] < span[1]) & (mine["end"] > span[0])).any()
    assert mine["start"].notna().all()
    # The span is analysed as a sound of its own: like the same cut saved as a file.
    audio, rate = sf.read(take, dtype="float32")
    cut = tmp_path / "cut.wav"
    sf.write(cut, audio[int(span[0] * rate):int(span[1] * rate)], rate)
    alone = library.features_of(cut)
    region = library.features_of(take, region=span)
    cosine = alone.embedding @ region.embedding / (
        np.linalg.norm(alone.embedding) * np.linalg.norm(region.embedding))
    assert cosine > 0.999
    # The query's region sounds like the planted explosion: the other explosion ranks high.
    assert "explosion 2" in list(found["name"][:3])


@pytest.mark.parametrize(("span", "message"), [
    ((3.0, 2.0), "must start before it ends"),
    ((15.0, 17.5), "ends after the sound"),
    ((5.0, 5.01), "needs at least 50 ms"),
    ((-1.0, 2.0), "cannot start before 0"),
    (("a", 2.0), r"is \(start, end\)"),
])
def test_a_bad_region_names_the_values(library, sounds, span, message):
    with pytest.raises(ParameterError, match=message) as caught:
        library.search(sounds / "field take.wav", region=span)
    assert "field take.wav" in str(caught.value)


def test_the_command_line_searches_by_a_region(library, sounds, capsys):
    take = str(sounds / "field take.wav")
    assert main(["search", library.path, take, "--start", "6", "--end", "7.4", "--json",
                 "--per-file", "0"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert records and all(record["path"] != take or record["start"] is not None
                           for record in records)
    assert main(["search", library.path, take, "--start", "6"]) == 2
    assert "needs both --start and --end" in capsys.readouterr().err
    assert main(["search", library.path, take, "--start", "6", "--end", "99"]) == 2
    assert "ends after the sound" in capsys.readouterr().err


def test_rebuilds_keep_regions_and_tags_keep_them(library, sounds, aisfx, demo_dir):
    before = library.region_table
    shutil.copy(demo_dir / "kenney" / "hurt1.wav", sounds / "hurt1.wav")
    second = sl.build_library(sounds, out=library.path, embedder=aisfx, progress=False)
    assert second.report.embedded == 1 and second.report.unchanged == len(library)
    np.testing.assert_array_equal(second.region_table.embeddings, before.embeddings)
    np.testing.assert_array_equal(second.region_table.spans_s, before.spans_s)
    assert set(second.regions["path"]) == {str(sounds / "field take.wav")}
    second.tag([str(sounds / "field take.wav")], "ambience")
    tagged = sl.load_library(library.path)
    np.testing.assert_array_equal(tagged.region_table.embeddings, before.embeddings)
    found = tagged.search_features(tagged.region_features(0), k=5, tags="ambience")
    assert set(found["path"]) == {str(sounds / "field take.wav")}
    os.remove(sounds / "hurt1.wav")


def test_a_library_without_regions_opens_and_searches_as_before(sounds, aisfx, tmp_path,
                                                                demo_dir):
    plain = sl.build_library(sounds, out=tmp_path / "plain.parquet", embedder=aisfx,
                             progress=False, settings=AnalysisSettings(regions=None))
    assert plain.region_table is None and plain.regions.empty
    assert "regions" not in plain.provenance["analysis"]
    assert "region_start" not in read_table(plain.path).rows.columns
    found = plain.search(demo_dir / "kenney" / KNOWN, k=3)
    assert found["start"].isna().all() and len(found) == 3
    assert not any(name.endswith("region-index") for name in os.listdir(tmp_path))


def test_regions_follow_their_rows_through_subset_and_concat():
    rows = pd.DataFrame({"name": list("abc"), "path": ["/a", "/b", "/c"],
                         "duration": [9.0, 1.0, 8.0], "sample_rate": 44100, "channels": 1,
                         "frames": 1, "size": 1, "mtime": 0.0})
    regions = Regions(np.array([0, 0, 2]), np.array([[0.0, 1], [1, 2], [3, 4]]),
                      np.arange(12, dtype=np.float32).reshape(3, 4), None)
    table = LibraryTable(rows, np.eye(3, 4, dtype=np.float32), regions=regions)
    flipped = table.subset(np.array([2, 1, 0]))
    assert flipped.regions.owners.tolist() == [0, 2, 2]
    assert flipped.regions.spans_s[0].tolist() == [3, 4]
    joined = concat_tables([table, flipped], empty=table)
    assert joined.regions.owners.tolist() == [0, 0, 2, 3, 5, 5]
    with pytest.raises(sl.LibraryError, match="regions must belong"):
        LibraryTable(rows.iloc[:2], np.eye(2, 4, dtype=np.float32), regions=regions)


def test_region_columns_round_trip_through_the_file(tmp_path):
    rows = pd.DataFrame({"name": ["a", "b"], "path": ["/a", "/b"], "duration": [9.0, 1.0],
                         "sample_rate": 44100, "channels": 1, "frames": 1, "size": 1,
                         "mtime": 0.0})
    regions = Regions(np.array([0, 0]), np.array([[0.5, 1.25], [2.0, 6.0]]),
                      np.ones((2, 4), np.float32), np.full((2, 86), 2.0, np.float32))
    table = LibraryTable(rows, np.eye(2, 4, dtype=np.float32),
                         descriptors=np.zeros((2, 86), np.float32), regions=regions)
    write_table(table, tmp_path / "x.parquet")
    again = read_table(tmp_path / "x.parquet").regions
    assert again.owners.tolist() == [0, 0]
    np.testing.assert_array_equal(again.spans_s, regions.spans_s)
    np.testing.assert_array_equal(again.descriptors, regions.descriptors)
    empty = LibraryTable(rows, np.eye(2, 4, dtype=np.float32), regions=Regions.empty(
        dimension=4, describes=False))
    write_table(empty, tmp_path / "y.parquet")
    assert len(read_table(tmp_path / "y.parquet").regions) == 0


def test_a_file_that_fails_part_way_keeps_what_was_read(tmp_path, aisfx, capsys):
    folder = tmp_path / "sounds"
    folder.mkdir()
    rate = 44100
    waveform = np.zeros(12 * rate, np.float32)
    hit = 0.5 * np.sin(2 * np.pi * 330 * np.arange(int(0.8 * rate)) / rate)
    for at_s in (1.0, 3.0, 9.0):
        waveform[int(at_s * rate):int(at_s * rate) + len(hit)] = hit
    sf.write(folder / "long.flac", waveform, rate)
    damaged = bytearray((folder / "long.flac").read_bytes())
    middle = len(damaged) * 2 // 3
    damaged[middle:middle + 4000] = b"\x00" * 4000  # a broken stretch: the decoder loses sync
    (folder / "long.flac").write_bytes(bytes(damaged))
    out = tmp_path / "lib.parquet"
    assert main(["index", str(folder), "-o", str(out), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "long.flac: decoding failed at" in printed.err and "1 read in part" in printed.out
    assert re.search(r": 1 sounds, [1-9]\d* regions; ", printed.out), printed.out
    library = sl.load_library(out)
    reason = library.read_in_part[str(folder / "long.flac")]
    stopped = float(reason.split("decoding failed at ")[1].split(" s")[0])
    assert 4.0 < stopped < 12.0 and not library.failures
    assert np.isclose(library.rows["duration"][0], stopped, atol=0.01)
    assert (library.regions["end"] <= stopped + 1e-6).all()
    assert np.isclose(library.regions["start"], [1.0, 3.0], atol=0.05).sum() >= 2
    again = sl.build_library(folder, out=out, embedder=aisfx, progress=False)
    assert again.report.unchanged == 1 and again.read_in_part == library.read_in_part


def test_a_zip_of_results_holds_each_region_as_its_cut(library, sounds):
    import io
    import zipfile

    from soundslike_nb.exports import zip_bytes

    found = library.search_features(library.region_features(0), k=4, per_file=None)
    regions = found[found["start"].notna()]
    assert len(regions) and found["start"].isna().any()
    archive = zipfile.ZipFile(io.BytesIO(zip_bytes(found["path"], manifest=found)))
    manifest = pd.read_csv(archive.open("sounds.csv"))
    assert manifest["file"].is_unique and len(manifest) == len(found)
    for row in manifest.itertuples():
        data = archive.read(row.file)
        if pd.isna(row.start):
            assert data == (sounds / os.path.basename(row.path)).read_bytes()
        else:
            assert row.file.startswith("field take_") and row.file.endswith(".wav")
            cut = sf.info(io.BytesIO(data))
            assert abs(cut.duration - (row.end - row.start)) < 0.01
            assert cut.samplerate == 44100


def test_a_region_late_in_a_file_is_decoded_from_its_start(library, tmp_path):
    rate = 22050
    waveform = 0.05 * np.random.default_rng(3).standard_normal(90 * rate).astype(np.float32)
    waveform[80 * rate:81 * rate] += np.sin(2 * np.pi * 500 * np.arange(rate) / rate)
    path = tmp_path / "long.flac"
    sf.write(path, waveform, rate)
    late = library.features_of(path, region=(79.5, 81.5))
    sf.write(tmp_path / "cut.wav", waveform[int(79.5 * rate):int(81.5 * rate)], rate)
    alone = library.features_of(tmp_path / "cut.wav")
    cosine = late.embedding @ alone.embedding / (
        np.linalg.norm(late.embedding) * np.linalg.norm(alone.embedding))
    assert cosine > 0.999
    from_bytes = library.features_of(path.read_bytes(), region=(79.5, 81.5), name="long.flac")
    np.testing.assert_allclose(from_bytes.embedding, late.embedding, atol=1e-5)
    with pytest.raises(ParameterError, match="ends after the sound"):
        library.features_of(path.read_bytes(), region=(89.0, 91.0), name="long.flac")
