"""Labels that spread: suggest labels for untagged sounds from the tagged sounds near them.

For each untagged sound, its ``neighbours`` nearest TAGGED sounds in the library's search space
(found in batches: exactly while few sounds are tagged, else through the index with the tagged
rows as its allowed rows) vote for their labels,
each with weight ``exp(sharpness * (cosine - 1))``. A suggestion's **confidence** is the winning
label's share of the vote times how close the voters are: 1 when the nearest tagged sound is at
least as near as the sound's own ``reach``-th nearest neighbour (any sound, tagged or not), less
the further it lies beyond. So with a single label in the library (a lasso round one cluster),
only the sounds near that cluster get a confident suggestion; a share alone would be 1 everywhere.

Each sound's ``reach``-th neighbour comes from the library's neighbour graph, kept beside the
library file and keyed by its content: adding labels never recomputes it.

The method and its defaults were chosen with ``benchmarks/labels.py`` (tag 5 % of each category,
predict the rest, against the majority class) on other collections than those it reports on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import ParameterError
from .tags import TagChange, check_labels

__all__ = ["DEFAULT_MIN_CONFIDENCE", "SpreadSettings", "accepted_changes", "map_labels",
           "neighbour_graph", "suggest_labels", "vote"]

#: The confidence at which suggestions are accepted unless told otherwise: the lowest at which
#: the selection collections of benchmarks/labels.py reach a mean accuracy of 0.8 (0.85 there;
#: 0.94 and 0.97 on the held-out ones, covering 21 % and 16 % of their untagged sounds).
DEFAULT_MIN_CONFIDENCE = 0.6
GRAPH_FORMAT = 1
_QUERY_CHUNK = 2048
# Tagged sounds up to which the vote scores them all exactly (faiss.knn) rather than through the
# index: at 100k rows x 512 with 1,000 tagged, suggesting took 86 s through the masked IVF index
# (it probes list after list to find enough allowed rows), 8 s exactly (benchmarks/labels.py
# --costs; 5,000 tagged: 19 s). Past sqrt(2000 n) tagged, the index's masked scan is cheaper.
_EXACT_VOTERS = 4096
_EXACT_RATIO = 2000


@dataclass(frozen=True)
class SpreadSettings:
    """How labels spread (defaults measured by ``benchmarks/labels.py``).

    Args:
        neighbours: how many of the nearest tagged sounds vote.
        sharpness: a voter's weight is ``exp(sharpness * (cosine - 1))``: 0 counts the
            ``neighbours`` alike, higher favours the closest.
        reach: the closeness scale: a sound whose nearest tagged sound is at least as near
            as its own ``reach``-th nearest neighbour gets its full vote share as confidence;
            further, the share is scaled by ``exp(sharpness * (cosine - reach cosine))``.

    Example:
        >>> SpreadSettings(neighbours=5).neighbours
        5
    """

    neighbours: int = 5
    sharpness: float = 5.0
    reach: int = 10

    def __post_init__(self) -> None:
        for name in ("neighbours", "reach"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ParameterError(f"{name} must be an int >= 1, got {value!r}")
        if not np.isfinite(self.sharpness) or self.sharpness < 0:
            raise ParameterError(f"sharpness must be a number >= 0, got {self.sharpness!r}")


def neighbour_graph(library: Any, *, neighbours: int = 10,
                    progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Each sound's ``neighbours`` nearest other sounds in the library's search space:
    ``(indices, cosines)``, both ``(n, neighbours)``, ``-1`` / ``-inf`` where there are fewer.

    Found through the library's index in batches of queries, and kept beside the library file
    (keyed by its content: tags do not change it, a rebuild that changes vectors does).
    Computing it takes a while on a large library (84 s at 100k sounds on 2 cores):
    ``progress=True`` shows a bar (tqdm; notebook or terminal) while it does.

    Example:
        >>> indices, cosines = neighbour_graph(lib, neighbours=10)  # doctest: +SKIP
    """
    from .sidecar import sidecar_key

    searcher = library.searcher
    count = min(int(neighbours), max(len(library) - 1, 1))
    options = {"neighbours": count, "index": library.index_settings.options(),
               "space": None if searcher.space is None else searcher.space.options}
    key = sidecar_key("neighbours", library.content_key, options, GRAPH_FORMAT)
    stored = library.store.load("neighbours", key, _read_graph, mmap=False)
    if stored is not None and stored[0].shape == (len(library), count):
        return stored
    indices = np.full((len(library), count), -1, np.int64)
    cosines = np.full((len(library), count), -np.inf, np.float32)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(library), unit="sound", desc="neighbours of each sound")
    for start in range(0, len(library), _QUERY_CHUNK):
        positions = np.arange(start, min(start + _QUERY_CHUNK, len(library)))
        rows = _space_rows(searcher, positions)
        usable = np.linalg.norm(rows, axis=1) > 0  # a silent sound has no direction
        if usable.any() and len(library) >= 2:
            found = library.index.search(rows[usable], k=count,
                                         exclude=positions[usable].tolist(),
                                         allowed=searcher.file_mask())
            indices[positions[usable]] = found.indices
            cosines[positions[usable]] = found.similarities
        if bar is not None:
            bar.update(len(positions))
    if bar is not None:
        bar.close()
    library.store.save("neighbours", key, {"format": GRAPH_FORMAT},
                       {"indices": indices, "cosines": cosines})
    return indices, cosines


def vote(library: Any, seeds: np.ndarray, *, settings: SpreadSettings | None = None,
         positions: np.ndarray | None = None, progress: bool = False
         ) -> tuple[np.ndarray, np.ndarray]:
    """Each sound's best label (a column of ``seeds``, ``-1`` for none) and its confidence.

    ``seeds`` is ``(n, labels)`` boolean: which sounds carry which label. Only the sounds at
    ``positions`` are scored (default all; a tagged one is scored against the others); the
    rest get ``-1`` and 0. ``progress``: a bar while the neighbour graph is computed.

    Example:
        >>> best, confidence = vote(lib, seeds)  # doctest: +SKIP
    """
    settings = settings if settings is not None else SpreadSettings()
    seeds = np.asarray(seeds, dtype=bool)
    count = len(library)
    best = np.full(count, -1, np.int64)
    confidence = np.zeros(count)
    tagged = seeds.any(axis=1)
    voters = min(settings.neighbours, int(tagged.sum()))
    if not voters:
        return best, confidence
    reach = _reach_cosines(library, settings.reach, progress=progress)
    scored = np.arange(count) if positions is None else np.asarray(positions, np.int64)
    voters_at = np.flatnonzero(tagged)
    # Few tagged sounds: one matrix product per batch scores them all, exactly (an index
    # searched with a sparse mask probes list after list to find enough allowed rows).
    exact = len(voters_at) <= _EXACT_VOTERS or len(voters_at) ** 2 <= _EXACT_RATIO * count
    voter_rows = _unit(_space_rows(library.searcher, voters_at)) if exact else None
    for start in range(0, len(scored), _QUERY_CHUNK):
        chunk = scored[start:start + _QUERY_CHUNK]
        rows = _space_rows(library.searcher, chunk)
        moving = np.linalg.norm(rows, axis=1) > 0  # a silent sound has no direction
        usable = chunk[moving]
        if not len(usable):
            continue
        if exact:
            found = _nearest_among(_unit(rows[moving]), usable, voter_rows, voters_at, voters)
        else:
            found = library.index.search(rows[moving], k=voters,
                                         allowed=library.searcher.file_mask(tagged),
                                         exclude=usable.tolist())
        valid = found.indices >= 0
        weights = np.where(valid, np.exp(settings.sharpness * (
            np.where(valid, found.similarities, 0.0) - 1.0)), 0.0)
        # (queries, voters, labels) -> (queries, labels): each voter backs each of its labels.
        ballots = np.einsum("qv,qvl->ql", weights, seeds[np.where(valid, found.indices, 0)])
        totals = weights.sum(axis=1)
        winner = ballots.argmax(axis=1)
        share = np.divide(ballots[np.arange(len(usable)), winner], totals,
                          out=np.zeros(len(usable)), where=totals > 0)
        nearest = np.where(valid[:, 0], found.similarities[:, 0], -np.inf)
        closeness = np.minimum(1.0, np.exp(settings.sharpness * (nearest - reach[usable])))
        best[usable] = np.where(totals > 0, winner, -1)
        confidence[usable] = np.where(totals > 0, np.minimum(share, 1.0) * closeness, 0.0)
    return best, confidence


def suggest_labels(library: Any, *, labels: str | Iterable[str] | None = None,
                   min_confidence: float = 0.0, settings: SpreadSettings | None = None,
                   progress: bool = False) -> pd.DataFrame:
    """For each untagged sound, the label its tagged neighbours suggest, with a confidence.

    Args:
        library: the library; its tags are the seeds.
        labels: spread only these labels (default: every label in the library).
        min_confidence: leave out suggestions below this (0 to 1).
        settings: :class:`SpreadSettings`.
        progress: show a bar while the library's neighbour graph is computed (the first time
            for its content only; 84 s at 100k sounds on 2 cores).

    Returns:
        One row per untagged sound given a suggestion, indexed by row position (as in
        ``lib.frame``), most confident first: ``path``, ``name``, ``label``, ``confidence``
        (0 to 1: the label's share of the vote of the nearest tagged sounds, scaled down
        when they are further than the sound's own near neighbours).

    Example:
        >>> lib.tag(lib.carrying("impact") | picked, "impact")  # doctest: +SKIP
        >>> suggest_labels(lib, min_confidence=0.5).head()  # doctest: +SKIP
    """
    settings = settings if settings is not None else SpreadSettings()
    threshold = _check_confidence(min_confidence)
    tags = library.tags.to_numpy()
    names = (check_labels(labels) if labels is not None
             else tuple(library.label_counts().index))
    columns = {"path": pd.Series(dtype="string"), "name": pd.Series(dtype="string"),
               "label": pd.Series(dtype="string"), "confidence": pd.Series(dtype="float64")}
    if not names or not len(library):
        return pd.DataFrame(columns).rename_axis("position")
    column_of = {label: column for column, label in enumerate(names)}
    seeds = np.zeros((len(library), len(names)), dtype=bool)
    for position in np.flatnonzero(np.frompyfunc(len, 1, 1)(tags).astype(bool)):
        for label in tags[position]:
            if label in column_of:
                seeds[position, column_of[label]] = True
    untagged = np.flatnonzero(np.frompyfunc(len, 1, 1)(tags) == 0)
    winners, confidences = vote(library, seeds, settings=settings, positions=untagged,
                                progress=progress)
    best, confidence = winners[untagged], confidences[untagged]
    keep = (best >= 0) & (confidence >= threshold) & (confidence > 0)
    positions = untagged[keep]
    frame = pd.DataFrame({
        "path": library.rows["path"].to_numpy()[positions],
        "name": library.rows["name"].to_numpy()[positions],
        "label": np.asarray(names, dtype=object)[best[keep]],
        "confidence": confidence[keep],
    }, index=pd.Index(positions, name="position")).astype(
        {"path": "string", "name": "string", "label": "string"})
    return frame.sort_values("confidence", ascending=False, kind="stable")


def accepted_changes(suggestions: pd.DataFrame, *,
                     min_confidence: float | None = None) -> list[TagChange]:
    """The tag changes that accept ``suggestions`` (``path``, ``label``, ``confidence``) at or
    above ``min_confidence`` (default :data:`DEFAULT_MIN_CONFIDENCE`): one per label.

    Example:
        >>> table = pd.DataFrame({"path": ["/a.wav", "/b.wav"], "label": ["hit", "hit"],
        ...                       "confidence": [0.9, 0.2]})
        >>> accepted_changes(table)
        [TagChange(add 'hit', 1 sounds)]
    """
    threshold = _check_confidence(DEFAULT_MIN_CONFIDENCE if min_confidence is None
                                  else min_confidence)
    missing = {"path", "label", "confidence"} - set(suggestions.columns)
    if missing:
        raise ParameterError(f"suggestions lack columns {sorted(missing)}: pass what "
                             "suggest_labels returns")
    chosen = suggestions[suggestions["confidence"].to_numpy(dtype=float) >= threshold]
    return [TagChange(group["path"].astype(str).tolist(), str(label))
            for label, group in chosen.groupby("label", sort=True)]


def map_labels(library: Any, suggestions: pd.DataFrame | None = None, *,
               labels: str | Iterable[str] | None = None) -> pd.DataFrame:
    """What colours each point of the map: one row per sound (in row order) with ``label``
    (its own label, else its suggestion's, else ``""``), ``suggested`` (True where the label is
    only suggested: draw it faded) and ``confidence`` (1.0 for its own label, the suggestion's,
    0.0 for none). A sound with several labels shows the most used of them (of ``labels``,
    when given: only those colour the map).

    Example:
        >>> layer = map_labels(lib, lib.suggest_labels(min_confidence=0.5))  # doctest: +SKIP
        >>> layer["label"].value_counts()  # doctest: +SKIP
    """
    wanted = check_labels(labels) if labels is not None else None
    rank = {label: order for order, label in enumerate(library.label_counts().index)}
    label = np.full(len(library), "", dtype=object)
    confidence = np.zeros(len(library))
    tags = library.tags.to_numpy()
    for position in np.flatnonzero(np.frompyfunc(len, 1, 1)(tags).astype(bool)):
        shown = [item for item in tags[position] if wanted is None or item in wanted]
        if shown:
            label[position] = min(shown, key=rank.__getitem__)
            confidence[position] = 1.0
    suggested = np.zeros(len(library), dtype=bool)
    if suggestions is not None and len(suggestions):
        positions = suggestions.index.to_numpy(dtype=np.int64)
        if positions.min() < 0 or positions.max() >= len(library):
            raise ParameterError("suggestions are indexed by row position: pass what "
                                 "suggest_labels returned for this library")
        free = label[positions] == ""
        if wanted is not None:
            free &= suggestions["label"].isin(wanted).to_numpy()
        label[positions[free]] = suggestions["label"].to_numpy(dtype=object)[free]
        confidence[positions[free]] = suggestions["confidence"].to_numpy(dtype=float)[free]
        suggested[positions[free]] = True
    return pd.DataFrame({"label": pd.array(label, dtype="string"), "suggested": suggested,
                         "confidence": confidence}, index=library.rows.index)


def _check_confidence(value: float) -> float:
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"min_confidence must be a number in [0, 1], got {value!r}") from None
    if not 0 <= threshold <= 1:
        raise ParameterError(f"min_confidence must be in [0, 1], got {value!r}")
    return threshold


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _nearest_among(queries: np.ndarray, positions: np.ndarray, voter_rows: np.ndarray,
                   voters_at: np.ndarray, k: int):
    """The ``k`` nearest of the voters (unit rows at library positions ``voters_at``) to each
    unit query (at library ``positions``, never its own voter), most similar first."""
    import faiss  # its exact k-NN: BLAS products and a heap per query (1.7x numpy's here)

    from .search import SearchResult

    fetch = min(k + 1, len(voters_at))  # one more, in case a query is its own voter
    similarities, top = faiss.knn(np.ascontiguousarray(queries, np.float32), voter_rows, fetch,
                                  metric=faiss.METRIC_INNER_PRODUCT)
    found = np.where(top >= 0, voters_at[np.maximum(top, 0)], -1)
    found[found == positions[:, None]] = -1
    similarities[found < 0] = -np.inf
    order = np.argsort(-similarities, axis=1, kind="stable")[:, :min(k, len(voters_at))]
    chosen = np.take_along_axis(similarities, order, axis=1)
    indices = np.where(np.isfinite(chosen), np.take_along_axis(found, order, axis=1), -1)
    return SearchResult(indices=indices, similarities=chosen.astype(np.float32))


def _reach_cosines(library: Any, reach: int, *, progress: bool = False) -> np.ndarray:
    """Each sound's cosine to its ``reach``-th nearest neighbour (from the neighbour graph;
    ``-inf`` where it has fewer)."""
    cosines = neighbour_graph(library, neighbours=reach, progress=progress)[1]
    if not cosines.shape[1]:
        return np.full(len(library), -np.inf)
    return cosines[:, -1].astype(np.float64)


def _space_rows(searcher, positions: np.ndarray) -> np.ndarray:
    """Rows ``positions`` as the index holds them (the search space at default weights)."""
    if searcher.space is None:
        return np.asarray(searcher.embeddings[positions], dtype=np.float32)
    return searcher.space.index_rows(searcher.embeddings[positions],
                                     searcher.descriptors[positions])


def _read_graph(stored) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray(stored.arrays["indices"], np.int64),
            np.asarray(stored.arrays["cosines"], np.float32))
