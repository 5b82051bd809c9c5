"""Audio → :class:`SoundFeatures`: the only way a sound is analysed, for a build, on a Dask
worker and for a query.

An :class:`Analyzer` pairs an embedding model with :class:`AnalysisSettings`. The settings are
recorded in the library file's provenance, and every query of that library is analysed with
them, so a query is always heard the way its library was. :meth:`Analyzer.analyse_files`
decodes in background threads while the model embeds the previous batch, and computes the
classic descriptors from the same waveforms on the model's device.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from .analysis_records import (
    SHORTEST_SPAN_S,
    SILENCE_PEAK,
    THUMBNAIL_BINS,
    AnalysisSettings,
    Batch,
    Decoded,
    Failure,
    SoundFeatures,
    check_span,
    waveform_thumbnail,
)
from .audio import AudioSource, load, validate_waveform
from .audio import info as audio_info
from .descriptors import DESCRIPTOR_VERSION, FEATURE_NAMES
from .embedders import Embedder
from .errors import AudioError, EmbedderError
from .regions import Regions, embed_with_regions
from .scan import FileEntry
from .segmentation import find_regions

# The records live in analysis_records; they are imported from here as well.
__all__ = ["SHORTEST_SPAN_S", "SILENCE_PEAK", "THUMBNAIL_BINS", "AnalysisSettings", "Analyzer",
           "Batch", "Decoded", "Failure", "SoundFeatures", "check_span", "waveform_thumbnail"]


class Analyzer:
    """An embedding model and the settings it analyses sounds with.

    Args:
        embedder: the model (:func:`~soundslike_nb.embedders.get_embedder`).
        settings: see :class:`AnalysisSettings`.
        batch_files: files per batch while analysing files.
        batch_seconds: at most this many seconds of audio per batch (long files make smaller
            batches): with a batch decoded ahead, memory holds about twice this much audio
            (600 s at 44.1 kHz: 2 x 106 MB).
        decode_threads: threads decoding the next batch while the model runs.

    Example:
        >>> analyzer = Analyzer(get_embedder("aisfx"))  # doctest: +SKIP
        >>> analyzer.analyse("door.wav").embedding.shape  # doctest: +SKIP
        (512,)
    """

    def __init__(self, embedder: Embedder, settings: AnalysisSettings | None = None, *,
                 batch_files: int = 16, batch_seconds: float = 600.0,
                 decode_threads: int = 2) -> None:
        self.embedder = embedder
        self.settings = settings if settings is not None else AnalysisSettings()
        self.batch_files = max(1, int(batch_files))
        self.batch_seconds = float(batch_seconds)
        self.decode_threads = max(1, int(decode_threads))

    def __repr__(self) -> str:
        return f"Analyzer({self.embedder.id!r}, {self.settings})"

    @property
    def describes(self) -> bool:
        """Whether this version computes the descriptors the settings name."""
        return self.settings.descriptor_version == DESCRIPTOR_VERSION

    @property
    def provenance(self) -> dict[str, Any]:
        """What a library file records about its analysis: the model and the settings."""
        model = self.embedder.provenance
        return {"embedder": model,
                "analysis": {**self.settings.record(), "frontend": model.get("frontend")}}

    # -- one sound ---------------------------------------------------------------------------

    def analyse(self, source: AudioSource | np.ndarray, *, name: str | None = None,
                progress: Callable[[float], None] | None = None,
                span: tuple[float, float] | None = None) -> SoundFeatures:
        """Analyse one sound: a path, the bytes of a file, or a mono waveform at the model's
        rate. Raises :class:`AudioError` or :class:`EmbedderError` naming it.

        ``progress``, when given, is called with the share of the work done (0 to 1) as the
        analysis goes: after decoding, after each batch of the model, and at the end.
        ``span``: ``(start, end)`` in seconds: only that region of the sound is analysed, as
        a sound of its own (:func:`check_span` says which spans are refused).

        Example:
            >>> analyzer.analyse(b"RIFF...", name="upload.wav",  # doctest: +SKIP
            ...                  progress=lambda done: print(f"{done:.0%}"))
        """
        label = name or (os.fspath(source) if isinstance(source, (str, os.PathLike))
                         else "<query>")
        report = _Stages(progress)
        rate = self.embedder.sample_rate
        if isinstance(source, np.ndarray):
            waveform = validate_waveform(source, name=label)
            if span is not None:
                start, end = check_span(span, len(waveform) / rate, name=label,
                                        shortest_s=self.shortest_span_s)
                waveform = waveform[round(start * rate):round(end * rate)]
        elif span is None:
            waveform, _ = load(source, sample_rate=rate, name=name,
                               max_duration=self.settings.max_duration_s)
        else:  # only the span is decoded: a seek to its start
            if not isinstance(source, (str, os.PathLike)):
                source = _rewindable(source)
            start, end = check_span(span, audio_info(source, name=name).duration, name=label,
                                    shortest_s=self.shortest_span_s)
            waveform, _ = load(source, sample_rate=rate, name=name, start=start,
                               max_duration=end - start)
        report.decoded()
        try:
            embeddings = self._embed([waveform], progress=report.embedding)
            descriptors = self._describe([waveform]) if self.describes else None
            report.done()
        except EmbedderError:
            raise
        except Exception as exc:  # the model's own errors, said with the sound's name
            raise EmbedderError(f"{label!r}: analysis failed ({type(exc).__name__}: {exc})"
                                ) from exc
        if not np.isfinite(embeddings).all():
            raise EmbedderError(f"{label!r}: the model produced NaN or infinite values")
        return SoundFeatures(embeddings[0], None if descriptors is None else descriptors[0],
                             peak=float(np.abs(waveform).max()))

    @property
    def shortest_span_s(self) -> float:
        """The shortest region a query may be: :data:`SHORTEST_SPAN_S`, or the model's own
        minimum where it has a longer one (pyannote's receptive field)."""
        own = getattr(self.embedder, "min_samples", 0) / self.embedder.sample_rate
        return max(SHORTEST_SPAN_S, float(own))

    # -- many files --------------------------------------------------------------------------

    def analyse_files(self, entries: Sequence[FileEntry]) -> Iterator[Batch]:
        """Decode, embed and describe files, yielding one :class:`Batch` per ``batch_files``.

        Decoding (libsndfile and soxr release the GIL) runs in background threads one batch
        ahead of the model. A file that fails is a :class:`Failure` of its batch, never an
        exception; only a broken model (wrong output shape) stops the run.

        Example:
            >>> for batch in analyzer.analyse_files(entries):  # doctest: +SKIP
            ...     print(len(batch.decoded), batch.embeddings.shape)
        """
        with ThreadPoolExecutor(max_workers=self.decode_threads,
                                thread_name_prefix="decode") as pool:

            def submit(chunk: Sequence[FileEntry]) -> list[Future]:
                return [pool.submit(self._decode, entry) for entry in chunk]

            chunks = iter(self._chunks(entries))
            current = next(chunks, None)
            pending = submit(current) if current is not None else []
            while current is not None:
                following = next(chunks, None)
                ahead = submit(following) if following is not None else []
                batch = Batch()
                for entry, future in zip(current, pending):
                    outcome = future.result()
                    if isinstance(outcome, Failure):
                        batch.failures[entry.path] = outcome
                    else:
                        batch.decoded.append(outcome)
                        batch.audio_seconds += outcome.info.duration
                self._analyse_batch(batch)
                yield batch
                current, pending = following, ahead

    def _chunks(self, entries: Sequence[FileEntry]) -> Iterator[list[FileEntry]]:
        """Batches of at most ``batch_files`` files and ``batch_seconds`` of audio (as analysed:
        at most ``max_duration_s`` a file); a longer file makes a batch of its own."""
        chunk: list[FileEntry] = []
        seconds = 0.0
        for entry in entries:
            length = self._seconds_of(entry)
            if chunk and (len(chunk) >= self.batch_files or seconds + length > self.batch_seconds):
                yield chunk
                chunk, seconds = [], 0.0
            chunk.append(entry)
            seconds += length
        if chunk:
            yield chunk

    def _seconds_of(self, entry: FileEntry) -> float:
        """Seconds of audio a file will give, from its header; a file under 1 MiB is counted as
        short without opening it (its header is read when it is decoded)."""
        if entry.size < 2**20:
            return 0.0
        try:
            seconds = audio_info(entry.path).duration
        except AudioError:
            return 0.0  # decoding will say what is wrong with it
        limit = self.settings.max_duration_s
        return seconds if limit is None else min(seconds, limit)

    def _decode(self, entry: FileEntry) -> Decoded | Failure:
        try:
            waveform, info = load(entry.path, sample_rate=self.embedder.sample_rate,
                                  max_duration=self.settings.max_duration_s, keep_partial=True)
        except AudioError as exc:
            return Failure(str(exc).removeprefix(f"{entry.path!r}: "))
        except MemoryError:
            return Failure("out of memory while decoding", retry=True)
        return Decoded(entry=entry, info=info, waveform=waveform)

    def _analyse_batch(self, batch: Batch) -> None:
        """Fill ``batch.embeddings``, ``batch.descriptors`` and ``batch.regions``; a sound the
        model or the descriptors fail on becomes a retried failure, the others are kept."""
        try:
            embeddings, descriptors, regions = self._analyse_waveforms(
                [item.waveform for item in batch.decoded])
        except EmbedderError:
            raise
        except Exception:  # one bad sound (or a passing fault) must not cost the batch
            return self._analyse_one_by_one(batch)
        bad = ~np.isfinite(embeddings).all(axis=1)
        if len(regions):
            bad[np.unique(regions.owners[~np.isfinite(regions.embeddings).all(axis=1)])] = True
        for position in np.flatnonzero(bad):
            batch.failures[batch.decoded[position].entry.path] = Failure(
                "the model produced NaN or infinite values", retry=True)
        keep = ~bad
        batch.decoded = [item for item, kept in zip(batch.decoded, keep) if kept]
        batch.embeddings = embeddings[keep]
        batch.descriptors = None if descriptors is None else descriptors[keep]
        batch.regions = regions.kept(keep)
        batch.thumbnails = _thumbnails(batch.decoded)

    def _analyse_one_by_one(self, batch: Batch) -> None:
        kept, embeddings, descriptors, regions = [], [], [], []
        for item in batch.decoded:
            try:
                embedding, described, own = self._analyse_waveforms([item.waveform])
                if not (np.isfinite(embedding).all() and np.isfinite(own.embeddings).all()):
                    raise EmbedderError(f"{item.entry.path!r}: the model produced NaN or "
                                        "infinite values")
            except (EmbedderError, AudioError) as exc:
                reason = str(exc).removeprefix(f"{item.entry.path!r}: ")
                batch.failures[item.entry.path] = Failure(reason, retry=True)
                continue
            except Exception as exc:  # the model's own errors, said with the sound's name
                batch.failures[item.entry.path] = Failure(
                    f"analysis failed ({type(exc).__name__}: {exc})", retry=True)
                continue
            own.owners[:] = len(kept)
            kept.append(item)
            embeddings.append(embedding[0])
            descriptors.append(None if described is None else described[0])
            regions.append(own)
        batch.decoded = kept
        batch.embeddings = (np.stack(embeddings) if embeddings else
                            np.zeros((0, self.embedder.dimension), np.float32))
        batch.descriptors = (None if not self.describes else np.stack(descriptors)
                             if descriptors else np.zeros((0, len(FEATURE_NAMES)), np.float32))
        batch.regions = Regions.concat(regions, dimension=self.embedder.dimension,
                                       describes=self.describes,
                                       descriptor_count=len(FEATURE_NAMES))
        batch.thumbnails = _thumbnails(kept)

    def _analyse_waveforms(self, waveforms: list[np.ndarray]
                           ) -> tuple[np.ndarray, np.ndarray | None, Regions]:
        """Embeddings, descriptors (``None`` when not computed) and the regions of the long
        ones: a file with regions goes through the model alone (its regions come from the same
        pass, :func:`~soundslike_nb.regions.embed_with_regions`), the others together."""
        spans = self._regions_of(waveforms)
        plain = [index for index in range(len(waveforms)) if index not in spans]
        embeddings = np.zeros((len(waveforms), self.embedder.dimension), np.float32)
        if plain:
            embeddings[plain] = self._embed([waveforms[index] for index in plain])
        owners, region_spans, region_embeddings = [], [], []
        for index, file_spans in spans.items():
            embeddings[index], parts = embed_with_regions(self.embedder, waveforms[index],
                                                          file_spans)
            owners.append(np.full(len(file_spans), index, np.int64))
            region_spans.append(file_spans)
            region_embeddings.append(parts)
        descriptors = self._describe(waveforms) if self.describes else None
        if not spans:
            return embeddings, descriptors, Regions.empty(
                dimension=self.embedder.dimension, describes=self.describes,
                descriptor_count=len(FEATURE_NAMES))
        owner_array, span_array = np.concatenate(owners), np.concatenate(region_spans)
        rate = self.embedder.sample_rate
        region_descriptors = None
        if self.describes:
            region_descriptors = self._describe([
                waveforms[owner][int(start * rate):max(int(end * rate), int(start * rate) + 1)]
                for owner, (start, end) in zip(owner_array.tolist(), span_array.tolist())])
        return embeddings, descriptors, Regions(owner_array, span_array,
                                                np.concatenate(region_embeddings),
                                                region_descriptors)

    def _regions_of(self, waveforms: list[np.ndarray]) -> dict[int, np.ndarray]:
        """Where the long waveforms' regions are (waveform index → (n, 2) seconds); none
        unless the settings ask for regions."""
        settings = self.settings.regions
        if settings is None:
            return {}
        rate = self.embedder.sample_rate
        found = {index: find_regions(waveform, rate, settings=settings)
                 for index, waveform in enumerate(waveforms)
                 if len(waveform) > settings.min_file_s * rate}
        return {index: spans for index, spans in found.items() if len(spans)}

    def _embed(self, waveforms: list[np.ndarray], *,
               progress: Callable[[float], None] | None = None) -> np.ndarray:
        if not waveforms:
            return np.zeros((0, self.embedder.dimension), np.float32)
        if progress is not None and _hears_progress(self.embedder):
            output = self.embedder.embed(waveforms, progress=progress)
        else:
            output = self.embedder.embed(waveforms)
        vectors = np.asarray(output, dtype=np.float32)
        if vectors.shape != (len(waveforms), self.embedder.dimension):
            raise EmbedderError(
                f"embedder {self.embedder.id!r} returned shape {vectors.shape} for "
                f"{len(waveforms)} sounds; expected ({len(waveforms)}, "
                f"{self.embedder.dimension})")
        return vectors

    def _describe(self, waveforms: list[np.ndarray]) -> np.ndarray:
        from .descriptors import describe

        device = getattr(self.embedder, "device", None)  # the descriptors run beside the model
        return describe(waveforms, self.embedder.sample_rate,
                        device=None if device is None else str(device))


def _rewindable(source: AudioSource) -> AudioSource:
    """A source that can be opened twice (a stream's bytes; bytes and paths as they are)."""
    return source if isinstance(source, (bytes, bytearray, memoryview)) else source.read()


class _Stages:
    """Turns the stages of one sound's analysis into one share of the work done (0 to 1).

    The shares are measured (aisfx, 2 CPU cores, a 5-minute WAV at 44.1 kHz): decoding 1 % of
    the time (0.3 s), the model 93 % (38 s on busy cores), the descriptors 6 % (2.6 s).
    """

    DECODED, EMBEDDED = 0.02, 0.94

    def __init__(self, progress: Callable[[float], None] | None) -> None:
        self.progress = progress
        self.embedding = None if progress is None else self._embedding

    def decoded(self) -> None:
        if self.progress is not None:
            self.progress(self.DECODED)

    def _embedding(self, share: float) -> None:
        share = min(max(float(share), 0.0), 1.0)
        self.progress(self.DECODED + (self.EMBEDDED - self.DECODED) * share)

    def done(self) -> None:
        if self.progress is not None:
            self.progress(1.0)


def _hears_progress(embedder: Embedder) -> bool:
    """Whether ``embedder.embed`` takes the ``progress`` keyword (every shipped backend does;
    an embedder of the user's own may not)."""
    import inspect

    try:
        parameters = inspect.signature(embedder.embed).parameters
    except (TypeError, ValueError):
        return False
    return "progress" in parameters or any(
        parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values())


def _thumbnails(decoded: list[Decoded]) -> np.ndarray:
    if not decoded:
        return np.zeros((0, THUMBNAIL_BINS), np.uint8)
    return np.stack([waveform_thumbnail(item.waveform) for item in decoded])
