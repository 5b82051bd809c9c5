"""Embedding a library on a Dask cluster: one model per worker, chunks of files as tasks.

The client (the process running ``build_library``) stays the single writer: workers only decode
and embed, and send back rows and vectors. A chunk is a task, so a worker that dies costs only
its chunk, which Dask reruns elsewhere; a chunk's result arrives once, so rows are neither lost
nor duplicated. Files must be readable at the same path on every worker (a shared filesystem).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .analysis import THUMBNAIL_BINS, AnalysisSettings, Analyzer, Batch
from .descriptors import FEATURE_NAMES
from .embedders import Embedder, get_embedder
from .errors import SoundslikeError
from .regions import Regions
from .scan import FileEntry

__all__ = ["analyse_on_cluster", "cluster_client", "connect"]

_ANALYZERS: dict[tuple, Analyzer] = {}  # per worker process: the one model, loaded once


@contextlib.contextmanager
def cluster_client(*, workers: int | None = None, scheduler: str | None = None,
                   timeout: float = 20.0) -> Iterator[Any]:
    """:func:`connect`, closed on exit together with the local cluster it started (if any).

    Example:
        >>> with cluster_client(workers=2) as client:  # doctest: +SKIP
        ...     build_library("sfx", out="sfx.parquet", client=client)
    """
    client = connect(workers=workers, scheduler=scheduler, timeout=timeout)
    cluster = client.cluster if scheduler is None else None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def connect(*, workers: int | None = None, scheduler: str | None = None,
            timeout: float = 20.0):
    """A ``dask.distributed.Client``: on an existing cluster, or on a local one of N processes
    (close it with ``client.cluster.close()``, or use :func:`cluster_client`).

    ``timeout`` is how many seconds to wait for an existing scheduler to answer.

    Example:
        >>> client = connect(workers=2)  # doctest: +SKIP
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - a dependency of soundslike_nb
        raise SoundslikeError("Dask is missing: pip install 'dask[distributed]'") from exc
    if scheduler is not None:
        try:
            return Client(scheduler, timeout=f"{timeout}s")
        except OSError as exc:
            raise SoundslikeError(
                f"cannot reach the Dask scheduler {scheduler!r} ({exc})") from None
    if workers is None or workers < 1:
        raise SoundslikeError(f"--workers must be >= 1, got {workers}")
    # Each worker is a process with one thread for Dask; torch and decoding use their own.
    threads = max(1, (os.cpu_count() or 1) // workers)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, env={"OMP_NUM_THREADS": str(threads)})
    return Client(cluster)


def _worker_analyzer(model: Embedder | tuple, settings: AnalysisSettings) -> Analyzer:
    if not isinstance(model, tuple):
        return Analyzer(model, settings)
    spec = (*model, settings)
    analyzer = _ANALYZERS.get(spec)
    if analyzer is None:
        name, token = model
        _ANALYZERS.clear()
        embedder = get_embedder(name, token=token, device=settings.device)
        analyzer = _ANALYZERS[spec] = Analyzer(embedder, settings)
    return analyzer


def _analyse_chunk(model: Embedder | tuple, entries: Sequence[FileEntry],
                   settings: AnalysisSettings) -> Batch:
    """Runs on a worker: analyse one chunk; return it without the waveforms."""
    analyzer = _worker_analyzer(model, settings)
    merged = Batch()
    vectors, descriptors, thumbnails, regions = [], [], [], []
    for batch in analyzer.analyse_files(entries):
        for item in batch.decoded:
            item.waveform = item.waveform[:0]  # only the facts travel back
        if batch.regions is not None:  # owners counted on past the files merged so far
            regions.append(replace(batch.regions,
                                   owners=batch.regions.owners + len(merged.decoded)))
        merged.decoded.extend(batch.decoded)
        merged.failures.update(batch.failures)
        merged.audio_seconds += batch.audio_seconds
        vectors.append(batch.embeddings)
        descriptors.append(batch.descriptors)
        thumbnails.append(batch.thumbnails)
    merged.embeddings = (np.concatenate(vectors) if vectors else
                         np.zeros((0, analyzer.embedder.dimension), np.float32))
    merged.descriptors = (np.concatenate(descriptors) if descriptors else
                          np.zeros((0, len(FEATURE_NAMES)), np.float32))
    merged.thumbnails = (np.concatenate(thumbnails) if thumbnails else
                         np.zeros((0, THUMBNAIL_BINS), np.uint8))
    merged.regions = Regions.concat(regions, dimension=analyzer.embedder.dimension,
                                    describes=analyzer.describes,
                                    descriptor_count=len(FEATURE_NAMES))
    return merged


def analyse_on_cluster(
    client,
    entries: Sequence[FileEntry],
    embedder: str | os.PathLike | Embedder,
    *,
    token: str | None = None,
    settings: AnalysisSettings | None = None,
    chunk_files: int = 64,
) -> Iterator[Batch]:
    """Yield one :class:`~soundslike_nb.analysis.Batch` per chunk, as the workers finish them.

    ``embedder`` is a model name/checkpoint (each worker loads it once into its one
    :class:`~soundslike_nb.analysis.Analyzer`) or an :class:`Embedder` object (sent to each
    worker once). ``chunk_files`` files make a task: enough to keep a worker's model busy, few
    enough that a lost worker costs little and that progress moves.

    Example:
        >>> for batch in analyse_on_cluster(client, entries, "aisfx"):  # doctest: +SKIP
        ...     print(len(batch.decoded))
    """
    from concurrent.futures import CancelledError

    from distributed import KilledWorker, as_completed

    settings = settings if settings is not None else AnalysisSettings()
    if isinstance(embedder, (str, os.PathLike)):
        model: Any = (os.fspath(embedder), token)
    else:
        model = client.scatter(embedder, broadcast=True, hash=False)
    futures = [
        client.submit(_analyse_chunk, model, list(entries[start:start + chunk_files]),
                      settings, retries=2, pure=False)
        for start in range(0, len(entries), max(1, int(chunk_files)))
    ]
    try:
        for future in as_completed(futures):
            try:
                yield future.result()
            except (CancelledError, KilledWorker) as exc:
                raise SoundslikeError(
                    f"the Dask cluster lost a chunk of files and could not redo it ({exc}); the "
                    "chunks finished so far are checkpointed: run the same build again to go on"
                ) from None
    finally:
        for future in futures:
            future.cancel()
