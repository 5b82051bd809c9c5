"""Candidate near-duplicates from the vectors alone: the fast first stage of ``find_duplicates``.

Each sound is linked to its nearest neighbours (cosine of the embeddings) that are at least
``threshold`` alike *and* about as long (copies differ by milliseconds of trimming or codec
padding, not by seconds). Rows are sorted by duration, so for most libraries only a narrow band
of rows around each one is compared, exactly; when durations bunch up so much that the band
costs more than ``exact_budget`` comparisons, a clustered join (faiss k-means, then one matrix
product per cluster and its nearest clusters) finds the neighbours instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError

__all__ = ["CandidateSettings", "candidate_pairs", "components"]

_BLOCK = 512
_PROBES = 8  # lists each list is joined with in the approximate path


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
        local, column = np.nonzero(sims >= settings.threshold)  # few: test only those
        row, other = local + start, column + start
        usable = (other > row) & (other < stops[row])
        found.append(_best(row[usable], other[usable], sims[local[usable], column[usable]],
                           settings.neighbours))
    return _joined(found)


def _approximate(unit: np.ndarray, sorted_s: np.ndarray, settings: CandidateSettings
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered join: k-means (faiss) splits the rows into lists; each list's rows are
    compared, in one matrix product, with the rows of the ``_PROBES`` lists whose centres are
    nearest its own (itself included). Copies (cosine >= 0.9) share a list or sit in
    neighbouring ones; the products run at BLAS speed, unlike a per-query IVF scan."""
    import faiss

    count, dimension = unit.shape
    lists = max(1, min(int(np.sqrt(count)), count // 39))
    rng = np.random.default_rng(0)
    kmeans = faiss.Kmeans(dimension, lists, niter=10, spherical=True, seed=1234,
                          max_points_per_centroid=40)
    kmeans.train(unit[rng.choice(count, size=min(count, 40 * lists), replace=False)])
    centres = kmeans.centroids
    assignment = np.empty(count, np.int64)
    for start in range(0, count, 16384):
        assignment[start:start + 16384] = np.argmax(unit[start:start + 16384] @ centres.T,
                                                    axis=1)
    members = [np.flatnonzero(assignment == list_id) for list_id in range(lists)]
    probes = min(lists, _PROBES)
    nearest = np.argsort(-(centres @ centres.T), axis=1)[:, :probes]
    found = []
    for list_id, rows in enumerate(members):
        if not len(rows):
            continue
        pool = np.concatenate([members[other] for other in nearest[list_id]])
        sims = unit[rows] @ unit[pool].T
        local, column = np.nonzero(sims >= settings.threshold)  # few: test only those
        row, other = rows[local], pool[column]
        usable = (row != other) & _compatible(sorted_s[row], sorted_s[other], settings)
        found.append(_best(row[usable], other[usable], sims[local[usable], column[usable]],
                           settings.neighbours))
    first, second, sims = _joined(found)
    if len(first):  # each pair once
        low, high = np.minimum(first, second), np.maximum(first, second)
        _, keep = np.unique(low * count + high, return_index=True)
        first, second, sims = low[keep], high[keep], sims[keep]
    return first, second, sims


def _best(rows: np.ndarray, others: np.ndarray, sims: np.ndarray, neighbours: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of the pairs ``(rows[i], others[i])``, the ``neighbours`` most similar of each row."""
    order = np.lexsort((-sims, rows))
    rows, others, sims = rows[order], others[order], sims[order]
    first_of_row = np.searchsorted(rows, rows, side="left")
    keep = np.arange(len(rows)) - first_of_row < neighbours
    return rows[keep], others[keep], sims[keep]


def _joined(found: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return tuple(np.concatenate(part) for part in zip(*found))  # type: ignore[return-value]
