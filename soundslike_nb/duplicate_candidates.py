"""Candidate near-duplicates from the vectors alone: the fast first stage of ``find_duplicates``.

Each sound is linked to its nearest neighbours (cosine of the embeddings) that are at least
``threshold`` alike *and* about as long (copies differ by milliseconds of trimming or codec
padding, not by seconds). Rows are sorted by duration, so for most libraries only a narrow band
of rows around each one is compared, exactly; when durations bunch up so much that the band
costs more than ``exact_budget`` comparisons, a faiss IVF index finds the neighbours instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError

__all__ = ["CandidateSettings", "candidate_pairs", "components"]

_BLOCK = 512


@dataclass(frozen=True)
class CandidateSettings:
    """Which pairs of sounds are worth an audio check.

    Args:
        threshold: lowest cosine of the embeddings. Measured on renderings of the demo sounds
            (MP3 / Ogg round trips, resampled, +-6 dB, trimmed, stereo): copies' cosines go
            down to 0.93 (0.95 at the 1st percentile), so 0.9 keeps them all; distinct takes
            of one kind reach 0.99, which is why the audio decides.
        neighbours: at most this many candidates per sound (a group larger than that is still
            found whole: its members link up through each other).
        tolerance_s, tolerance: two sounds are "about as long" when their durations differ by
            at most ``max(tolerance_s, tolerance * longer)``.
        exact_budget: most row comparisons (pairs) the exact band may cost before faiss is used.

    Example:
        >>> CandidateSettings(threshold=0.95).neighbours
        10
    """

    threshold: float = 0.9
    neighbours: int = 10
    tolerance_s: float = 0.05
    tolerance: float = 0.02
    exact_budget: int = 2_000_000_000

    def __post_init__(self) -> None:
        if not -1 <= float(self.threshold) <= 1:
            raise ParameterError(f"threshold must be a cosine in [-1, 1], got {self.threshold!r}")
        if not (isinstance(self.neighbours, (int, np.integer)) and self.neighbours >= 1):
            raise ParameterError(f"neighbours must be an int >= 1, got {self.neighbours!r}")
        if not float(self.tolerance_s) >= 0 or not 0 <= float(self.tolerance) < 1:
            raise ParameterError(f"tolerance_s must be >= 0 and tolerance in [0, 1), got "
                                 f"{self.tolerance_s!r} and {self.tolerance!r}")


def candidate_pairs(embeddings: np.ndarray, durations_s: np.ndarray, *,
                    settings: CandidateSettings | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                         np.ndarray]:
    """Pairs of rows alike enough in vectors and durations to be copies of one sound.

    Returns:
        ``(first, second, similarities)``: row positions (``first < second``) and cosines,
        each pair once.

    Example:
        >>> vectors = np.array([[1, 0], [1, 0.05], [0, 1], [1, 0.01]], np.float32)
        >>> first, second, sims = candidate_pairs(vectors, np.array([1.0, 1.01, 1.0, 9.0]))
        >>> first.tolist(), second.tolist()
        ([0], [1])
    """
    settings = settings or CandidateSettings()
    vectors = np.asarray(embeddings, np.float32)
    durations_s = np.asarray(durations_s, np.float64)
    if vectors.ndim != 2 or len(durations_s) != len(vectors):
        raise ParameterError(f"embeddings must be (n, d) with n durations, got {vectors.shape} "
                             f"and {durations_s.shape}")
    norms = np.linalg.norm(vectors, axis=1)
    valid = np.flatnonzero((norms > 0) & np.isfinite(norms) & np.isfinite(durations_s))
    order = valid[np.argsort(durations_s[valid], kind="stable")]
    unit = vectors[order] / norms[order, None]
    sorted_s = durations_s[order]
    upper = _upper_bounds(sorted_s, settings)
    stops = np.searchsorted(sorted_s, upper, side="right")
    cost = int(np.sum(stops - np.arange(len(order))))
    if cost <= settings.exact_budget:
        first, second, sims = _banded(unit, sorted_s, stops, settings)
    else:
        first, second, sims = _approximate(unit, sorted_s, settings)
    first, second = order[first], order[second]
    swap = first > second
    first[swap], second[swap] = second[swap], first[swap]
    return first.astype(np.int64), second.astype(np.int64), sims.astype(np.float32)


def components(count: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Connected components of a graph on ``count`` nodes: one label per node (the smallest
    node of its component).

    Example:
        >>> components(5, np.array([0, 3]), np.array([1, 4])).tolist()
        [0, 0, 2, 3, 3]
    """
    parent = np.arange(count)

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in zip(first.tolist(), second.tolist()):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([root(node) for node in range(count)], np.int64)


def _upper_bounds(sorted_s: np.ndarray, settings: CandidateSettings) -> np.ndarray:
    """The longest duration each row may be paired with."""
    return np.maximum(sorted_s + settings.tolerance_s, sorted_s / (1 - settings.tolerance))


def _compatible(short_s: np.ndarray, long_s: np.ndarray, settings: CandidateSettings
                ) -> np.ndarray:
    longer = np.maximum(short_s, long_s)
    return np.abs(long_s - short_s) <= np.maximum(settings.tolerance_s,
                                                  settings.tolerance * longer) + 1e-9


def _banded(unit: np.ndarray, sorted_s: np.ndarray, stops: np.ndarray,
            settings: CandidateSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact: each row against the rows after it (in duration order) that are about as long."""
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for start in range(0, len(unit), _BLOCK):
        end = min(start + _BLOCK, len(unit))
        stop = int(stops[end - 1])
        if stop <= start + 1:
            continue
        sims = unit[start:end] @ unit[start:stop].T
        rows = np.arange(start, end)[:, None]
        columns = np.arange(start, stop)[None, :]
        usable = (columns > rows) & (columns < stops[start:end, None]) & (
            sims >= settings.threshold)
        sims = np.where(usable, sims, -np.inf)
        found.append(_best(sims, start, start, settings.neighbours))
    return _joined(found)


def _approximate(unit: np.ndarray, sorted_s: np.ndarray, settings: CandidateSettings
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """faiss IVF neighbours (more than needed, as the duration check drops some afterwards)."""
    import faiss

    count, dimension = unit.shape
    lists = max(1, min(4 * int(np.sqrt(count)), count // 39))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, lists,
                               faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    sample = unit[rng.choice(count, size=min(count, 40 * lists), replace=False)]
    index.cp.niter = 10
    index.train(sample)
    index.add(unit)
    index.nprobe = min(lists, 16)
    fetch = min(count, 4 * settings.neighbours + 1)
    found = []
    for start in range(0, count, 8192):
        sims, ids = index.search(unit[start:start + 8192], fetch)
        rows = np.arange(start, start + len(ids))[:, None]
        safe = np.maximum(ids, 0)
        usable = ((ids >= 0) & (ids != rows) & (sims >= settings.threshold)
                  & _compatible(sorted_s[rows], sorted_s[safe], settings))
        sims = np.where(usable, sims, -np.inf)
        first, column, values = _best(sims, start, 0, settings.neighbours)
        found.append((first, safe[first - start, column], values))
    first, second, sims = _joined(found)
    if len(first):  # each pair once
        low, high = np.minimum(first, second), np.maximum(first, second)
        _, keep = np.unique(low * count + high, return_index=True)
        first, second, sims = low[keep], high[keep], sims[keep]
    return first, second, sims


def _best(sims: np.ndarray, row_offset: int, column_offset: int, neighbours: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (at most ``neighbours``) finite entries of each row of ``sims``, largest first."""
    if sims.shape[1] > neighbours:
        top = np.argpartition(-sims, neighbours - 1, axis=1)[:, :neighbours]
        values = np.take_along_axis(sims, top, axis=1)
    else:
        top = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        values = sims
    rows, slots = np.nonzero(np.isfinite(values))
    return (rows + row_offset, top[rows, slots] + column_offset, values[rows, slots])


def _joined(found: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return tuple(np.concatenate(part) for part in zip(*found))  # type: ignore[return-value]
