"""Embedding a library on a Dask cluster: one model per worker, chunks of files as tasks.

The client (the process running ``build_library``) stays the single writer: workers only decode
and embed, and send back rows and vectors. A chunk is a task, so a worker that dies costs only
its chunk, which Dask reruns elsewhere; a chunk's result arrives once, so rows are neither lost
nor duplicated. Files must be readable at the same path on every worker (a shared filesystem).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .descriptors import FEATURE_NAMES
from .embedders import Embedder, get_embedder
from .errors import SoundslikeError
from .pipeline import DEFAULT_MAX_ANALYSIS_S, Batch, embed_files
from .scan import FileEntry

__all__ = ["connect", "embed_on_cluster"]

#: Files per task: large enough to keep a worker's model busy, small enough that a lost worker
#: costs little and that progress moves.
CHUNK_FILES = 64

_MODELS: dict[tuple, Embedder] = {}  # per worker process: the one model, loaded once


def connect(*, workers: int | None = None, scheduler: str | None = None,
            timeout: float = 20.0):
    """A ``dask.distributed.Client``: on an existing cluster, or on a local one of N processes.

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


def _worker_embedder(spec: tuple) -> Embedder:
    model = _MODELS.get(spec)
    if model is None:
        name, token, device = spec
        _MODELS.clear()
        model = _MODELS[spec] = get_embedder(name, token=token, device=device)
    return model


def _embed_chunk(model: Embedder | tuple, entries: Sequence[FileEntry],
                 max_duration: float | None) -> Batch:
    """Runs on a worker: decode, embed and describe one chunk; return it without the waveforms."""
    embedder = _worker_embedder(model) if isinstance(model, tuple) else model
    merged = Batch()
    vectors, descriptors = [], []
    for batch in embed_files(entries, embedder, max_duration=max_duration):
        for item in batch.decoded:
            item.waveform = item.waveform[:0]  # only the facts travel back
        merged.decoded.extend(batch.decoded)
        merged.failures.update(batch.failures)
        merged.audio_seconds += batch.audio_seconds
        vectors.append(batch.embeddings)
        descriptors.append(batch.descriptors)
    merged.embeddings = (np.concatenate(vectors) if vectors else
                         np.zeros((0, embedder.dimension), np.float32))
    merged.descriptors = (np.concatenate(descriptors) if descriptors else
                          np.zeros((0, len(FEATURE_NAMES)), np.float32))
    return merged


def embed_on_cluster(
    client,
    entries: Sequence[FileEntry],
    embedder: str | os.PathLike | Embedder,
    *,
    token: str | None = None,
    device: str | None = None,
    max_duration: float | None = DEFAULT_MAX_ANALYSIS_S,
    chunk_files: int | None = None,
) -> Iterator[Batch]:
    """Yield one :class:`~soundslike_nb.pipeline.Batch` per chunk, as the workers finish them.

    ``embedder`` is a model name/checkpoint (each worker loads it once) or an :class:`Embedder`
    object (sent to each worker once).

    Example:
        >>> for batch in embed_on_cluster(client, entries, "aisfx"):  # doctest: +SKIP
        ...     print(len(batch.decoded))
    """
    from concurrent.futures import CancelledError

    from distributed import KilledWorker, as_completed

    if isinstance(embedder, (str, os.PathLike)):
        model: Any = (os.fspath(embedder), token, device)
    else:
        model = client.scatter(embedder, broadcast=True, hash=False)
    chunk_files = chunk_files or CHUNK_FILES
    futures = [
        client.submit(_embed_chunk, model, list(entries[start:start + chunk_files]),
                      max_duration, retries=2, pure=False)
        for start in range(0, len(entries), chunk_files)
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
