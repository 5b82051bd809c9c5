"""Files → embeddings and descriptors: decode in background threads while the model embeds the
previous batch.

The library calls :func:`embed_files`; it yields one :class:`Batch` at a time so that the caller
can checkpoint and report progress, and memory holds at most two batches of waveforms. The classic
descriptors (``descriptors.py``) are computed from the same decoded waveforms, batch by batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .audio import AudioInfo, load
from .descriptors import FEATURE_NAMES, describe
from .embedders import Embedder
from .errors import AudioError, EmbedderError
from .scan import FileEntry

__all__ = ["Batch", "Decoded", "embed_files"]

#: Sounds longer than this are embedded from their first ten minutes (memory stays bounded);
#: their duration is still the full length read from the header.
DEFAULT_MAX_ANALYSIS_S = 600.0


@dataclass
class Decoded:
    """One file decoded to the embedder's rate (``waveform``), with its header facts."""

    entry: FileEntry
    info: AudioInfo
    waveform: np.ndarray


@dataclass
class Batch:
    """What one step of the pipeline produced: embedded files, their embeddings and descriptors
    (one row per item of ``decoded``), and failures (path → reason)."""

    decoded: list[Decoded] = field(default_factory=list)
    embeddings: np.ndarray | None = None
    descriptors: np.ndarray | None = None
    failures: dict[str, str] = field(default_factory=dict)
    audio_seconds: float = 0.0


def _decode(entry: FileEntry, sample_rate: int, max_duration: float | None) -> Decoded | str:
    try:
        waveform, info = load(entry.path, sample_rate=sample_rate, max_duration=max_duration)
    except AudioError as exc:
        return str(exc).removeprefix(f"{entry.path!r}: ")
    except MemoryError:
        return "out of memory while decoding"
    return Decoded(entry=entry, info=info, waveform=waveform)


def _chunks(entries: Sequence[FileEntry], size: int) -> Iterable[Sequence[FileEntry]]:
    for start in range(0, len(entries), size):
        yield entries[start:start + size]


def embed_files(
    entries: Sequence[FileEntry],
    embedder: Embedder,
    *,
    batch_files: int = 16,
    decode_threads: int = 2,
    max_duration: float | None = DEFAULT_MAX_ANALYSIS_S,
) -> Iterator[Batch]:
    """Decode, embed and describe files, yielding one :class:`Batch` per ``batch_files`` files.

    Decoding (libsndfile and soxr release the GIL) runs in ``decode_threads`` threads, one batch
    ahead of the model. A file that fails to decode, embed or describe becomes a failure, never
    an exception.

    Example:
        >>> for batch in embed_files(scan_folders(["data/demo"]).files, embedder):  # doctest: +SKIP
        ...     print(len(batch.decoded), batch.embeddings.shape, batch.descriptors.shape)
    """
    rate = embedder.sample_rate
    with ThreadPoolExecutor(max_workers=max(1, decode_threads),
                            thread_name_prefix="decode") as pool:

        def submit(chunk: Sequence[FileEntry]) -> list[Future]:
            return [pool.submit(_decode, entry, rate, max_duration) for entry in chunk]

        chunks = iter(_chunks(entries, batch_files))
        current = next(chunks, None)
        pending = submit(current) if current is not None else []
        while current is not None:
            following = next(chunks, None)
            ahead = submit(following) if following is not None else []
            batch = Batch()
            for entry, future in zip(current, pending):
                outcome = future.result()
                if isinstance(outcome, str):
                    batch.failures[entry.path] = outcome
                else:
                    batch.decoded.append(outcome)
                    batch.audio_seconds += outcome.info.duration
            batch.embeddings = _embed(embedder, batch)
            batch.descriptors = _describe(embedder, batch)
            yield batch
            current, pending = following, ahead


def _embed(embedder: Embedder, batch: Batch) -> np.ndarray:
    waveforms = [item.waveform for item in batch.decoded]
    if not waveforms:
        return np.zeros((0, embedder.dimension), np.float32)
    try:
        vectors = np.asarray(embedder.embed(waveforms), dtype=np.float32)
    except EmbedderError:
        raise
    except Exception:  # one bad sound must not cost the batch: retry one by one
        return _embed_one_by_one(embedder, batch)
    if vectors.shape != (len(waveforms), embedder.dimension):
        raise EmbedderError(
            f"embedder {embedder.id!r} returned shape {vectors.shape} for {len(waveforms)} "
            f"sounds; expected ({len(waveforms)}, {embedder.dimension})"
        )
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        _drop(batch, np.flatnonzero(bad), "the model produced NaN or infinite values")
        vectors = vectors[~bad]
    return vectors


def _embed_one_by_one(embedder: Embedder, batch: Batch) -> np.ndarray:
    kept, vectors, failed = [], [], []
    for position, item in enumerate(batch.decoded):
        try:
            vector = np.asarray(embedder.embed([item.waveform]), dtype=np.float32)[0]
        except Exception as exc:  # reported per file, the build goes on
            failed.append((position, f"embedding failed ({type(exc).__name__}: {exc})"))
            continue
        if not np.isfinite(vector).all():
            failed.append((position, "the model produced NaN or infinite values"))
            continue
        kept.append(position)
        vectors.append(vector)
    for position, reason in failed:
        batch.failures[batch.decoded[position].entry.path] = reason
    batch.decoded = [batch.decoded[position] for position in kept]
    if not vectors:
        return np.zeros((0, embedder.dimension), np.float32)
    return np.stack(vectors)


def _drop(batch: Batch, positions: np.ndarray, reason: str) -> None:
    dropped = set(int(position) for position in positions)
    for position in dropped:
        batch.failures[batch.decoded[position].entry.path] = reason
    batch.decoded = [item for position, item in enumerate(batch.decoded)
                     if position not in dropped]


def _describe(embedder: Embedder, batch: Batch) -> np.ndarray:
    """Descriptors of the batch's sounds, on the model's device; a sound they fail on (none is
    known to) is dropped from the batch with its embedding."""
    rate = embedder.sample_rate
    device = getattr(embedder, "device", None)
    device = None if device is None else str(device)
    waveforms = [item.waveform for item in batch.decoded]
    try:
        return describe(waveforms, rate, device=device)
    except Exception:  # find the one sound at fault, keep the others
        rows, failed = [], []
        for position, waveform in enumerate(waveforms):
            try:
                rows.append(describe([waveform], rate, device=device)[0])
            except Exception as exc:  # reported per file, the build goes on
                failed.append(position)
                batch.failures[batch.decoded[position].entry.path] = (
                    f"descriptors failed ({type(exc).__name__}: {exc})")
        keep = np.setdiff1d(np.arange(len(waveforms)), failed)
        batch.decoded = [batch.decoded[position] for position in keep]
        batch.embeddings = batch.embeddings[keep]
        return (np.stack(rows) if rows else
                np.zeros((0, len(FEATURE_NAMES)), np.float32))
