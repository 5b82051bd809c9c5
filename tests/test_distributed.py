"""Indexing on a local Dask cluster: same rows as one process, and a dead worker loses nothing."""

from __future__ import annotations

import os

import numpy as np
import pytest

import soundslike_nb as sl
from soundslike_nb import SoundslikeError, distributed

pytestmark = pytest.mark.slow


class DiesOnce:
    """The real aisfx model, but the first worker to use it dies (a marker file makes it once)."""

    def __init__(self, marker: str) -> None:
        from soundslike_nb.embedders.aisfx import AisfxEmbedder

        self.marker = marker
        self.model = AisfxEmbedder(device="cpu")
        self.id, self.sample_rate, self.dimension = (self.model.id, self.model.sample_rate,
                                                     self.model.dimension)

    @property
    def provenance(self):
        return self.model.provenance

    def embed(self, waveforms):
        try:  # O_EXCL: of two workers starting at once, exactly one dies
            flag = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return self.model.embed(waveforms)
        os.write(flag, str(os.getpid()).encode())
        os.close(flag)
        os._exit(1)  # the worker process dies mid-chunk, as on a lost machine


@pytest.fixture(scope="module")
def client():
    with distributed.cluster_client(workers=2) as client:
        yield client


@pytest.fixture(scope="module")
def single_process(demo_dir, aisfx):
    return sl.build_library(demo_dir, embedder=aisfx, progress=False)


def _same_library(cluster_lib, single_lib) -> None:
    assert list(cluster_lib.rows["path"]) == list(single_lib.rows["path"])
    a, b = cluster_lib.embeddings, single_lib.embeddings
    cosines = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosines.min() >= 0.9999
    np.testing.assert_allclose(cluster_lib.descriptors, single_lib.descriptors,
                               rtol=1e-3, atol=1e-3)


def test_two_workers_match_one_process(client, demo_dir, single_process, tmp_path):
    out = tmp_path / "lib.parquet"
    lib = sl.build_library(demo_dir, out=out, client=client, progress=False, chunk_files=8)
    assert lib.report.embedded == len(single_process)
    _same_library(lib, single_process)
    again = sl.build_library(demo_dir, out=out, client=client, progress=False)
    assert again.report.embedded == 0 and again.report.unchanged == len(lib)


def test_a_killed_worker_loses_and_duplicates_nothing(client, demo_dir, single_process,
                                                       tmp_path):
    marker = tmp_path / "died"
    lib = sl.build_library(demo_dir, client=client, embedder=DiesOnce(str(marker)),
                           progress=False, chunk_files=8)
    assert marker.exists()  # a worker really died
    assert lib.rows["path"].is_unique
    _same_library(lib, single_process)


def test_connect_refuses_a_bad_scheduler_and_worker_count():
    with pytest.raises(sl.SoundslikeError, match="workers"):
        distributed.connect(workers=0)
    with pytest.raises(sl.SoundslikeError, match="scheduler"):
        distributed.connect(scheduler="tcp://127.0.0.1:9", timeout=2)


class AlwaysDies(DiesOnce):
    """Kills every worker that runs it: the cluster cannot finish the build."""

    def embed(self, waveforms):
        os._exit(1)


def test_a_cluster_that_cannot_finish_says_so(tmp_path, demo_dir):
    client = distributed.connect(workers=1)
    try:
        with pytest.raises(SoundslikeError, match="lost a chunk of files"):
            sl.build_library(demo_dir, out=tmp_path / "lib.parquet", client=client,
                             embedder=AlwaysDies(str(tmp_path / "unused")), progress=False)
    finally:
        client.close()
    assert not (tmp_path / "lib.parquet").exists()


def test_a_local_cluster_is_shut_down_with_its_client():
    with distributed.cluster_client(workers=1) as client:
        cluster = client.cluster
        assert client.submit(sum, [1, 2]).result() == 3
    assert client.status == "closed"
    assert cluster.status.name == "closed"  # its worker processes are gone too


def test_regions_are_analysed_on_the_workers_too(client, demo_dir, aisfx, tmp_path):
    import shutil

    import soundfile as sf

    folder = tmp_path / "sounds"
    folder.mkdir()
    for name in ("hit1.wav", "coin1.wav", "explosion2.wav"):
        shutil.copy(demo_dir / "kenney" / name, folder / name)
    take = np.zeros(12 * 44100, np.float32)
    for at_s, name in ((2.0, "hit1.wav"), (7.0, "explosion2.wav")):
        sound, _ = sf.read(demo_dir / "kenney" / name, dtype="float32", always_2d=True)
        take[int(at_s * 44100):int(at_s * 44100) + len(sound)] += sound.mean(axis=1)
    sf.write(folder / "take.wav", take, 44100)
    alone = sl.build_library(folder, embedder=aisfx, progress=False)
    cluster = sl.build_library(folder, out=tmp_path / "lib.parquet", client=client,
                               progress=False, chunk_files=2)
    _same_library(cluster, alone)
    assert len(alone.regions) and cluster.regions.equals(alone.regions)
    a, b = cluster.region_table.embeddings, alone.region_table.embeddings
    assert ((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min() > 0.9999
