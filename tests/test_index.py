"""SoundIndex: exact search equals brute force; IVF keeps recall; filters, errors, persistence."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from soundslike_nb.errors import LibraryError, ParameterError
from soundslike_nb.search import IndexSettings, SearchResult, SoundIndex
from soundslike_nb.sidecar import content_key

DIMENSION = 24


def clustered(n_rows: int, *, seed: int, n_clusters: int = 30) -> np.ndarray:
    """Rows around the same seeded centres whatever ``seed`` (so queries resemble the library)."""
    centres = np.random.default_rng(0).standard_normal((n_clusters, DIMENSION))
    rng = np.random.default_rng(seed)
    labels = rng.integers(n_clusters, size=n_rows)
    return (centres[labels] + 0.4 * rng.standard_normal((n_rows, DIMENSION))).astype(np.float32)


def brute_force(embeddings, durations, queries, k, lo=-np.inf, hi=np.inf):
    """Reference in float64: (ids, similarities) sorted by similarity, then row id."""
    embeddings, queries = np.asarray(embeddings, np.float64), np.atleast_2d(queries).astype(float)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    sims = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    allowed = np.flatnonzero((durations >= lo) & (durations <= hi))
    ids = np.full((len(queries), k), -1)
    out = np.full((len(queries), k), -np.inf)
    for row, query_sims in enumerate(sims):
        order = allowed[np.lexsort((allowed, -query_sims[allowed]))][:k]
        ids[row, : len(order)], out[row, : len(order)] = order, query_sims[order]
    return ids, out


@pytest.fixture(scope="module")
def library():
    rng = np.random.default_rng(7)
    embeddings = clustered(3000, seed=1)
    durations = np.exp(rng.uniform(np.log(0.05), np.log(600), len(embeddings)))
    queries = clustered(40, seed=2)
    return embeddings, durations, queries


@pytest.fixture(scope="module")
def ivf(library):
    return SoundIndex(*library[:2], kind="ivf")


@pytest.mark.parametrize("duration", [None, (1.0, 30.0), (None, 0.2), (100.0, None)])
def test_exact_equals_brute_force_in_order_and_similarity(library, duration):
    embeddings, durations, queries = library
    index = SoundIndex(embeddings, durations, kind="exact")
    lo, hi = duration or (None, None)
    lo, hi = -np.inf if lo is None else lo, np.inf if hi is None else hi
    expected_ids, expected_sims = brute_force(embeddings, durations, queries, 15, lo, hi)
    result = index.search(queries, k=15, duration=duration)
    assert result.indices.dtype == np.int64 and result.similarities.dtype == np.float32
    np.testing.assert_array_equal(result.indices, expected_ids)
    np.testing.assert_allclose(result.similarities, expected_sims, atol=1e-6)


def test_a_single_query_gives_a_2d_result_equal_to_its_batch_row(library):
    embeddings, durations, queries = library
    index = SoundIndex(embeddings, durations, kind="exact")
    single = index.search(queries[3], k=5)
    assert single.indices.shape == single.similarities.shape == (1, 5)
    np.testing.assert_array_equal(single.indices[0], index.search(queries, k=5).indices[3])


def test_ties_are_broken_by_row_id_and_zero_rows_never_match():
    embeddings = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0], [2, 0, 0], [1, 0, 0]], np.float32)
    durations = np.array([5.0, 4.0, 1.0, 3.0, 0.5])  # duration order differs from row order
    result = SoundIndex(embeddings, durations, kind="exact").search([1, 0, 0], k=5)
    np.testing.assert_array_equal(result.indices, [[1, 3, 4, 0, -1]])
    np.testing.assert_array_equal(result.similarities, [[1, 1, 1, 0, -np.inf]])


def test_ivf_keeps_high_recall_and_the_same_result_type(library, ivf):
    embeddings, durations, queries = library
    exact = SoundIndex(embeddings, durations, kind="exact").search(queries, k=10)
    approx = ivf.search(queries, k=10)
    assert ivf.kind == "ivf" and type(approx) is SearchResult
    assert approx.indices.shape == (len(queries), 10) and approx.indices.dtype == np.int64
    assert approx.similarities.dtype == np.float32
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx.indices, exact.indices)])
    assert recall >= 0.9
    assert np.all(np.diff(approx.similarities, axis=1) <= 1e-6)  # most similar first


def test_ivf_with_a_selective_filter_finds_every_neighbour(library, ivf):
    embeddings, durations, queries = library
    expected_ids, expected_sims = brute_force(embeddings, durations, queries, 10, 2.0, 2.6)
    result = ivf.search(queries, k=10, duration=(2.0, 2.6))
    assert 10 < np.count_nonzero((durations >= 2.0) & (durations <= 2.6)) < 100
    for got, expected in zip(result.indices, expected_ids):  # recall 1 for every query
        assert set(got) == set(expected)
    # float16 codes move cosines by ~1e-4 (at 24-d), which may swap near-ties, nothing more
    np.testing.assert_allclose(result.similarities, expected_sims, atol=1e-3)


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_duration_bounds_are_inclusive(kind):
    embeddings = clustered(400, seed=3)
    durations = np.linspace(1.0, 5.0, len(embeddings))
    lo, hi = durations[100], durations[120]
    index = SoundIndex(embeddings, durations, kind=kind)
    result = index.search(embeddings[0], k=50, duration=(lo, hi))
    assert sorted(result.indices[0][result.indices[0] >= 0]) == list(range(100, 121))


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_fewer_matches_than_k_are_padded_with_minus_one(kind):
    embeddings = clustered(300, seed=4)
    durations = np.arange(300, dtype=float)
    index = SoundIndex(embeddings, durations, kind=kind)
    result = index.search(embeddings[:2], k=8, duration=(10, 14))
    assert result.indices.shape == (2, 8)
    assert np.all(result.indices[:, 5:] == -1) and np.all(np.isneginf(result.similarities[:, 5:]))
    assert set(result.indices[0, :5]) == set(range(10, 15))


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_a_range_that_matches_nothing_gives_an_empty_result(kind):
    embeddings = clustered(300, seed=5)
    index = SoundIndex(embeddings, np.full(300, 2.0), kind=kind)
    result = index.search(embeddings[:3], k=4, duration=(3.0, 9.0))
    assert result.indices.shape == (3, 4) and np.all(result.indices == -1)
    assert np.all(np.isneginf(result.similarities))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda index: index.search(np.ones(DIMENSION + 1)), "shape"),
        (lambda index: index.search(np.ones((2, 3, DIMENSION))), "shape"),
        (lambda index: index.search(np.r_[np.nan, np.ones(DIMENSION - 1)]), "NaN"),
        (lambda index: index.search(np.zeros(DIMENSION)), "zero norm"),
        (lambda index: index.search(np.ones(DIMENSION), k=0), "k must be an int >= 1, got 0"),
        (lambda index: index.search(np.ones(DIMENSION), k=2.5), "k must be"),
        (lambda index: index.search(np.ones(DIMENSION), duration=(5, 1)), "min duration 5.0"),
        (lambda index: index.search(np.ones(DIMENSION), duration=(np.nan, 1)), "duration"),
        (lambda index: index.search(np.ones(DIMENSION), duration=3.0), "duration"),
        (lambda index: index.search(np.ones(DIMENSION), exclude=[1, 2]), "exclude"),
        (lambda index: index.search(np.ones(DIMENSION), exclude=10**6), "out of range"),
        (lambda index: index.similar_to_rows([0, 500]), "row 500 is out of range"),
    ],
)
def test_invalid_queries_raise_parameter_error(call, message):
    index = SoundIndex(clustered(50, seed=6), np.ones(50), kind="exact")
    with pytest.raises(ParameterError, match=message):
        call(index)


@pytest.mark.parametrize(
    ("embeddings", "durations", "kind", "message"),
    [
        (np.full((3, 4), np.nan), np.ones(3), "auto", "row 0 contains NaN"),
        (np.ones((3, 4)), np.ones(2), "auto", r"durations must have shape \(3,\)"),
        (np.ones((3, 4)), [1, -1, 1], "auto", "row 1 is -1.0"),
        (np.ones(4), np.ones(4), "auto", "2-D"),
        (np.ones((3, 4)), np.ones(3), "hnsw", "kind must be one of"),
        (np.zeros((3, 4)), np.ones(3), "ivf", "nonzero norm"),
    ],
)
def test_invalid_libraries_raise_parameter_error(embeddings, durations, kind, message):
    with pytest.raises(ParameterError, match=message):
        SoundIndex(embeddings, durations, kind=kind)


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_similar_to_rows_leaves_out_each_row_itself(library, kind):
    embeddings, durations, _ = library
    twins = np.vstack([embeddings[:200], embeddings[:1]])  # row 200 duplicates row 0
    index = SoundIndex(twins, durations[:201], kind=kind)
    result = index.similar_to_rows([0, 200, 5], k=3)
    assert result.indices.shape == (3, 3)
    assert result.indices[0, 0] == 200 and result.indices[1, 0] == 0  # the twin, not itself
    assert 5 not in result.indices[2]
    assert np.allclose(result.similarities[:2, 0], 1.0, atol=1e-3)
    assert result.similarities.max() <= 1.0
    single = index.similar_to_rows(5, k=3)
    np.testing.assert_array_equal(single.indices, result.indices[2:])


def test_exclude_leaves_out_one_row_per_query(library):
    embeddings, durations, _ = library
    index = SoundIndex(embeddings, durations, kind="exact")
    plain = index.search(embeddings[:2], k=4)
    assert plain.indices[0, 0] == 0 and plain.indices[1, 0] == 1
    result = index.search(embeddings[:2], k=4, exclude=[0, None])
    five = index.search(embeddings[0], k=5).indices[0]
    np.testing.assert_array_equal(result.indices[0], five[five != 0][:4])
    np.testing.assert_array_equal(result.indices[1], plain.indices[1])


def test_similar_to_a_zero_norm_row_is_an_error():
    embeddings = np.vstack([np.eye(3), np.zeros((1, 3))])
    with pytest.raises(ParameterError, match="row 3 has a zero-norm embedding"):
        SoundIndex(embeddings, np.ones(4)).similar_to_rows(3)


@pytest.mark.parametrize("kind", ["exact", "ivf"])
@pytest.mark.parametrize("mmap", [True, False])
def test_save_and_load_round_trip(library, tmp_path, kind, mmap):
    embeddings, durations, queries = library
    index = SoundIndex(embeddings, durations, kind=kind)
    path = tmp_path / "library.index"
    index.save(path)
    loaded = SoundIndex.load(path, mmap=mmap)
    assert loaded.kind == kind and len(loaded) == len(embeddings)
    assert loaded.dimension == DIMENSION
    for duration in (None, (0.5, 20.0)):
        expected, got = index.search(queries, k=7, duration=duration), loaded.search(
            queries, k=7, duration=duration
        )
        np.testing.assert_array_equal(got.indices, expected.indices)
        np.testing.assert_array_equal(got.similarities, expected.similarities)
    np.testing.assert_array_equal(
        loaded.similar_to_rows([4, 9]).indices, index.similar_to_rows([4, 9]).indices
    )


def test_content_key_changes_with_any_row_or_duration(library):
    embeddings, durations, _ = library
    key = content_key(embeddings, durations)
    assert key == content_key(embeddings.astype(np.float64), list(durations))
    for row in (0, len(embeddings) // 2, len(embeddings) - 1):
        changed = embeddings.copy()
        changed[row, 3] = np.nextafter(changed[row, 3], np.inf)
        assert content_key(changed, durations) != key
    later = durations.copy()
    later[-1] += 0.001
    assert content_key(embeddings, later) != key
    assert content_key(embeddings[:-1], durations[:-1]) != key


def test_a_file_that_is_not_an_index_is_a_library_error(tmp_path):
    path = tmp_path / "library.index"
    path.write_bytes(b"not an index at all")
    with pytest.raises(LibraryError, match="cannot read the index"):
        SoundIndex.load(path)


def test_auto_picks_by_library_size(library):
    embeddings, durations, _ = library
    assert SoundIndex(embeddings, durations).kind == "exact"
    settings = IndexSettings(exact_max_rows=len(embeddings) - 1)
    assert SoundIndex(embeddings, durations, settings=settings).kind == "ivf"
    with pytest.raises(ParameterError, match="contradicts"):
        SoundIndex(embeddings, durations, kind="exact", settings=settings)
    with pytest.raises(ParameterError, match="kind must be one of"):
        IndexSettings(kind="hnsw")


def test_auto_keeps_the_target_recall_even_on_isotropic_noise():
    settings = IndexSettings(exact_max_rows=100)
    durations = np.random.default_rng(5).uniform(0.1, 10, 4000)
    structured = SoundIndex(clustered(4000, seed=5), durations, settings=settings)
    assert structured.kind == "ivf"
    # isotropic noise in 24 dims: true neighbours sit in every list and the codes barely tell
    # them apart; auto keeps an IVF index only if a deeper re-rank still reaches the target
    noise = np.random.default_rng(6).standard_normal((4000, DIMENSION)).astype(np.float32)
    spread = SoundIndex(noise, durations, settings=settings)
    queries = np.random.default_rng(7).standard_normal((20, DIMENSION))
    ids, _ = brute_force(noise, durations, queries, 10)
    found = spread.search(queries, k=10).indices
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, ids)])
    assert recall >= (1.0 if spread.kind == "exact" else 0.95)
    assert SoundIndex(noise, durations, kind="ivf").kind == "ivf"  # asked for, kept


def test_importing_the_module_does_not_import_faiss():
    code = "import sys, soundslike_nb.search; print('faiss' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert output.returncode == 0 and output.stdout.strip() == "False", output.stderr


def masked_brute_force(embeddings, durations, queries, k, mask, lo=-np.inf, hi=np.inf):
    """The brute-force reference over the rows ``mask`` keeps (others' durations set out)."""
    kept = np.where(mask, durations, -1.0)
    return brute_force(embeddings, kept, queries, k, max(lo, 0.0), hi)


@pytest.mark.parametrize("kind", ["exact", "ivf"])
@pytest.mark.parametrize("share", [0.9, 0.3, 0.01])
@pytest.mark.parametrize("duration", [None, (1.0, 60.0)])
def test_allowed_mask_keeps_only_its_rows_without_losing_recall(library, ivf, kind, share,
                                                                duration):
    embeddings, durations, queries = library
    mask = np.random.default_rng(11).random(len(embeddings)) < share
    index = ivf if kind == "ivf" else SoundIndex(embeddings, durations, kind="exact")
    lo, hi = duration or (-np.inf, np.inf)
    expected, _ = masked_brute_force(embeddings, durations, queries, 10, mask, lo, hi)
    found = index.search(queries, k=10, duration=duration, allowed=mask)
    got = found.indices[found.indices >= 0]
    assert mask[got].all() and (durations[got] >= lo).all() and (durations[got] <= hi).all()
    if kind == "exact":
        np.testing.assert_array_equal(found.indices, expected)
    else:  # calibrated recall when many rows stay, every neighbour when few do
        recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(found.indices, expected)])
        assert recall >= (0.9 if share > 0.05 else 1.0)


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_allowed_mask_combines_with_exclude_and_pads_when_few_rows_remain(library, ivf, kind):
    embeddings, durations, _ = library
    index = ivf if kind == "ivf" else SoundIndex(embeddings, durations, kind="exact")
    mask = np.zeros(len(embeddings), bool)
    mask[[0, 5, 17, 40]] = True
    found = index.search(embeddings[0], k=6, allowed=mask, exclude=0)
    assert sorted(found.indices[0, :3]) == [5, 17, 40]
    assert np.all(found.indices[0, 3:] == -1) and np.all(np.isneginf(found.similarities[0, 3:]))
    nothing = index.search(embeddings[0], k=3, allowed=np.zeros(len(embeddings), bool))
    assert np.all(nothing.indices == -1)
    everything = index.search(embeddings[:4], k=5, allowed=np.ones(len(embeddings), bool))
    np.testing.assert_array_equal(everything.indices, index.search(embeddings[:4], k=5).indices)


@pytest.mark.parametrize("allowed", [np.ones(49, bool), np.ones(50, int), [1] * 50])
def test_an_allowed_mask_of_the_wrong_shape_or_type_is_refused(allowed):
    index = SoundIndex(clustered(50, seed=6), np.ones(50), kind="exact")
    with pytest.raises(ParameterError, match=r"allowed must be a boolean mask of shape \(50,\)"):
        index.search(np.ones(DIMENSION), allowed=allowed)


def test_int8_rows_keep_every_true_neighbour_among_the_few_they_pass_on():
    from soundslike_nb.search.rows import RerankRows

    rng = np.random.default_rng(12)
    unit = rng.standard_normal((5000, 300)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    rows = RerankRows.allocate(len(unit), unit.shape[1], sample=unit[:500])
    rows.put(0, unit)
    for query in unit[:20] + 0.5 * rng.standard_normal((20, 300)).astype(np.float32) / 17:
        truth = np.argsort(-(unit @ query))[:10]
        kept = rows.best(query, np.arange(len(unit)), 80)  # runs of ids: read as slices
        assert len(kept) == 80 and set(truth) <= set(kept.tolist())
        shuffled = rng.permutation(len(unit))  # the same rows in any order
        np.testing.assert_array_equal(rows.best(query, shuffled, 80), kept)
    np.testing.assert_allclose(rows.reconstruct(np.arange(5)), unit[:5], atol=1e-3)
