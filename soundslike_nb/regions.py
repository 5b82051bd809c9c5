"""Regions of analysed files: where each is (its file, start, end) and what it sounds like (an
embedding, descriptors), one row per region, as :class:`~soundslike_nb.analysis.Analyzer`
computes them beside the files' own rows.

Where regions are is :mod:`~soundslike_nb.segmentation`'s job; this module embeds them. An
embedder that can (the shipped aisfx CNN: ``embed_regions``) gives a file's embedding and its
longer regions' from one pass of its network; a region shorter than its block, and every region
with any other embedder, is embedded from its own audio as a sound, with the file's steady
background taken out (:mod:`~soundslike_nb.background`): a query is a clean sound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .embedders import Embedder

__all__ = ["Regions", "embed_with_regions", "region_audio"]


@dataclass
class Regions:
    """Regions of a list of files: ``owners`` (each region's file, an index into that list),
    ``spans_s`` (start and end in seconds), ``embeddings`` and ``descriptors`` (``None`` when
    not computed), one row per region, in file order then time order.

    Example:
        >>> regions = Regions.empty(dimension=4, describes=False)
        >>> len(regions), regions.embeddings.shape
        (0, (0, 4))
    """

    owners: np.ndarray
    spans_s: np.ndarray
    embeddings: np.ndarray
    descriptors: np.ndarray | None

    def __len__(self) -> int:
        return len(self.owners)

    @classmethod
    def empty(cls, *, dimension: int, describes: bool, descriptor_count: int = 0) -> Regions:
        """No regions (a batch of short files)."""
        return cls(np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros((0, dimension), np.float32),
                   np.zeros((0, descriptor_count), np.float32) if describes else None)

    @classmethod
    def concat(cls, parts: list[Regions], *, dimension: int, describes: bool,
               descriptor_count: int = 0) -> Regions:
        """Regions of several lists of files joined, owners counted on (each part's owners
        already index the joined list)."""
        if not parts:
            return cls.empty(dimension=dimension, describes=describes,
                             descriptor_count=descriptor_count)
        return cls(np.concatenate([part.owners for part in parts]),
                   np.concatenate([part.spans_s for part in parts]),
                   np.concatenate([part.embeddings for part in parts]),
                   None if not describes else
                   np.concatenate([part.descriptors for part in parts]))

    def kept(self, keep: np.ndarray) -> Regions:
        """The regions of the files with ``keep`` True, owners renumbered to index the kept
        files (``keep``: one bool per file of the list the owners index)."""
        keep = np.asarray(keep, dtype=bool)
        new_index = np.cumsum(keep) - 1
        mine = keep[self.owners] if len(self.owners) else np.zeros(0, bool)
        return Regions(new_index[self.owners[mine]], self.spans_s[mine], self.embeddings[mine],
                       None if self.descriptors is None else self.descriptors[mine])


def embed_with_regions(embedder: Embedder, waveform: np.ndarray, spans_s: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """A sound's embedding (as ``embedder.embed`` gives it) and its regions' (``(n, 2)`` start
    and end in seconds): from one network pass where the embedder can (``embed_regions``),
    else each region's audio (:func:`region_audio`: the file's background taken out)
    embedded as a sound of its own.

    Example:
        >>> whole, parts = embed_with_regions(aisfx, waveform, [[1.0, 2.5]])  # doctest: +SKIP
        >>> parts.shape  # doctest: +SKIP
        (1, 512)
    """
    spans = np.asarray(spans_s, dtype=np.float64).reshape(-1, 2)
    own = getattr(embedder, "embed_regions", None)
    shortest = getattr(embedder, "region_block_s", None)
    if own is None:
        alone = np.ones(len(spans), dtype=bool)
        whole = None
    else:
        # An event shorter than the model's block is embedded as a sound of its own (zero-
        # padded, as a short query is): from the file's blocks it would share them with 2 s of
        # whatever surrounds it (measured, benchmarks/regions.py: planted-region recall@5 at
        # 0 dB SNR 0.71 from blocks, 0.75 alone). Longer regions come from the blocks.
        alone = (spans[:, 1] - spans[:, 0] < shortest) if shortest else np.zeros(len(spans), bool)
        whole, from_blocks = own(waveform, spans[~alone])
    vectors = np.zeros((len(spans), embedder.dimension), np.float32)
    rate = embedder.sample_rate
    pieces = region_audio(waveform, rate, spans[alone])
    if whole is None:
        embedded = np.asarray(embedder.embed([waveform, *pieces]), dtype=np.float32)
        whole, vectors[alone] = embedded[0], embedded[1:]
    else:
        vectors[~alone] = from_blocks
        if pieces:
            vectors[alone] = np.asarray(embedder.embed(pieces), dtype=np.float32)
    return np.asarray(whole, np.float32), vectors


def region_audio(waveform: np.ndarray, sample_rate: int, spans_s: np.ndarray
                 ) -> list[np.ndarray]:
    """Each region's audio (``(n, 2)`` start and end in seconds) with the file's stationary
    background taken out (:func:`~soundslike_nb.background.suppressed`, one
    :func:`~soundslike_nb.background.noise_floor` for the file): what a region is embedded
    and described from.

    Measured (benchmarks/regions.py, chosen beds, 0 dB SNR): planted-region recall@5 0.81
    from the raw audio of the regions, 0.89 from this.

    Example:
        >>> rate = 44100
        >>> bed = 0.1 * np.random.default_rng(0).normal(size=6 * rate).astype("f4")
        >>> [len(piece) for piece in region_audio(bed, rate, np.array([[1.0, 1.5]]))]
        [22050]
    """
    from .background import noise_floor, suppressed

    spans = np.asarray(spans_s, dtype=np.float64).reshape(-1, 2)
    if not len(spans):
        return []
    floor = noise_floor(waveform, sample_rate)
    return [suppressed(waveform, sample_rate, start, end, floor) for start, end in spans]
