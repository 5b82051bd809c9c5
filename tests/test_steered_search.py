"""Every weighting is served by the index: exact results equal a brute-force reference in the
fused space for any weights, and the IVF index reaches its calibrated recall on a seeded library
shaped like real sounds (benchmarks/library_generator.py), steered weightings included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.library_generator import generate, generate_queries
from soundslike_nb.analysis import SoundFeatures
from soundslike_nb.errors import ParameterError
from soundslike_nb.search import IndexSettings, SoundIndex
from soundslike_nb.searcher import Searcher
from soundslike_nb.sidecar import SidecarStore
from soundslike_nb.space import ASPECT_NAMES, DEFAULT_WEIGHTS, SimilaritySpace, check_weights

WEIGHTINGS = [
    dict(DEFAULT_WEIGHTS),
    {"cnn": 0.3, "timbre": 1.0, "spectrum": 0.2, "envelope": 0.2},
    {"cnn": 0.0, "timbre": 0.0, "spectrum": 0.0, "envelope": 1.0},
    {"cnn": 0.0, "timbre": 1.0, "spectrum": 0.0, "envelope": 0.0},
    {"cnn": 1.0, "timbre": 0.0, "spectrum": 0.0, "envelope": 0.0},
    {"cnn": 0.1, "timbre": 0.0, "spectrum": 1.0, "envelope": 1.0},
]


def brute_force(rows: np.ndarray, query: np.ndarray, k: int, mask: np.ndarray | None = None
                ) -> np.ndarray:
    """Top ``k`` row positions by ``rows @ query`` in float64, ties to the lower row."""
    scores = rows.astype(np.float64) @ query.astype(np.float64)
    candidates = np.arange(len(rows)) if mask is None else np.flatnonzero(mask)
    return candidates[np.lexsort((candidates, -scores[candidates]))][:k]


@pytest.fixture(scope="module")
def small_library():
    embeddings, descriptors, durations = generate(1500, seed=3)
    queries = generate_queries(12, 1500, seed=3)
    return embeddings, descriptors, durations, queries


def searcher_of(embeddings, descriptors, durations, settings=None) -> Searcher:
    rows = pd.DataFrame({"name": [f"s{i}" for i in range(len(durations))],
                         "path": [f"/s{i}.wav" for i in range(len(durations))],
                         "duration": durations})
    return Searcher.for_library(rows, embeddings, descriptors, store=SidecarStore(None),
                                content=f"test-{len(rows)}", settings=settings)


@pytest.mark.parametrize("weights", WEIGHTINGS)
def test_exact_search_equals_brute_force_in_the_fused_space_for_any_weights(small_library,
                                                                          weights):
    embeddings, descriptors, durations, (query_embeddings, query_descriptors) = small_library
    searcher = searcher_of(embeddings, descriptors, durations)
    assert searcher.index.kind == "exact"
    space = searcher.space
    transformed = space.transform(embeddings, descriptors)
    shares = np.array([weights[a] for a in ASPECT_NAMES]) / sum(weights.values())
    for embedding, descriptor in zip(query_embeddings, query_descriptors):
        hits = searcher.search(SoundFeatures(embedding, descriptor), k=8, weights=weights)
        query = space.transform(embedding[None], descriptor[None])[0]
        reference = space.aspect_cosines(query, transformed) @ shares
        expected = brute_force(reference[:, None], np.ones(1), 8)
        np.testing.assert_array_equal(hits.positions, expected)
        np.testing.assert_allclose(hits.similarities, reference[expected], atol=1e-5)


@pytest.mark.slow
def test_ivf_reaches_the_calibrated_recall_for_every_weighting_and_filter():
    embeddings, descriptors, durations = generate(20_000, seed=5)
    query_embeddings, query_descriptors = generate_queries(30, 20_000, seed=5)
    space = SimilaritySpace().fit(embeddings, descriptors)
    rows = space.index_rows(embeddings, descriptors)
    index = SoundIndex(rows, durations, kind="ivf",
                       blocks=[columns.start for columns in space.slices.values()])
    quantiles = np.quantile(durations, [0.1, 0.5, 0.51])
    transformed = space.transform(query_embeddings, query_descriptors)
    # 1 %: 200 rows, scored exactly on the index's float16 rows (near-ties may swap)
    for span, target in [(None, 0.95), ((quantiles[0], None), 0.95),
                         ((quantiles[1], quantiles[2]), 0.99)]:
        mask = None if span is None else (durations >= span[0]) & (
            durations <= (np.inf if span[1] is None else span[1]))
        for weights in WEIGHTINGS:
            queries = space.weighted_query(transformed, check_weights(weights))
            found = index.search(queries, k=10, duration=span).indices
            hits = sum(len(set(row) & set(brute_force(rows, query, 10, mask)))
                       for row, query in zip(found, queries))
            recall = hits / (10 * len(queries))
            assert recall >= target, (span, weights, recall)


def test_a_steered_query_is_told_apart_from_one_weighted_like_the_rows(small_library):
    embeddings, descriptors, durations, _ = small_library
    space = SimilaritySpace().fit(embeddings, descriptors)
    rows = space.index_rows(embeddings, descriptors)
    index = SoundIndex(rows, durations, kind="ivf",
                       blocks=[columns.start for columns in space.slices.values()])
    transformed = space.transform(embeddings[:3], descriptors[:3])
    backend = index._backend
    doubled = {aspect: 2 * weight for aspect, weight in DEFAULT_WEIGHTS.items()}
    like_rows = space.weighted_query(transformed, check_weights(doubled))
    steered = space.weighted_query(transformed, check_weights({"envelope": 3}))
    unit = lambda q: q / np.linalg.norm(q, axis=1, keepdims=True)  # noqa: E731
    assert not backend._steered(unit(like_rows)).any()
    assert backend._steered(unit(steered)).all()


@pytest.mark.parametrize("blocks", [[1, 2], [0, 0, 5], [0, 10_000], [[0, 1]]])
def test_bad_blocks_are_refused(blocks):
    with pytest.raises(ParameterError, match="blocks must be increasing column starts"):
        SoundIndex(np.eye(4), np.ones(4), blocks=blocks, settings=IndexSettings(kind="exact"))


@pytest.mark.parametrize(("weights", "message"), [({"cnn": -1}, ">= 0"),
                                                  ({"bass": 1}, "unknown aspect"),
                                                  ({a: 0 for a in ASPECT_NAMES}, "all aspect")])
def test_bad_weights_still_give_their_errors(small_library, weights, message):
    embeddings, descriptors, durations, (query_embeddings, query_descriptors) = small_library
    searcher = searcher_of(embeddings, descriptors, durations)
    with pytest.raises(ParameterError, match=message):
        searcher.search(SoundFeatures(query_embeddings[0], query_descriptors[0]), weights=weights)
