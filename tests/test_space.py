"""The library-fitted similarity space: unit aspect blocks, weights on the query, stored safely."""

from __future__ import annotations

import numpy as np
import pytest

from soundslike_nb import LibraryError, ParameterError
from soundslike_nb.descriptors import FEATURE_NAMES
from soundslike_nb.sidecar import read_stored
from soundslike_nb.space import ASPECT_NAMES, DEFAULT_WEIGHTS, SimilaritySpace, check_weights

N_FEATURES = len(FEATURE_NAMES)


def _library(rows: int = 200, dimension: int = 64, *, seed: int = 0):
    """Non-negative 'CNN' vectors (like the aisfx ReLU/max output) and raw-unit descriptors."""
    rng = np.random.default_rng(seed)
    embeddings = np.abs(rng.standard_normal((rows, dimension))).astype(np.float32)
    scales = 10.0 ** rng.uniform(-2, 3, N_FEATURES)  # Hz next to fractions: standardising matters
    descriptors = (rng.standard_normal((rows, N_FEATURES)) * scales).astype(np.float32)
    return embeddings, descriptors


def _ranking(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, kind="stable")


def test_transform_gives_one_unit_block_per_aspect():
    embeddings, descriptors = _library()
    space = SimilaritySpace().fit(embeddings, descriptors)
    rows = space.transform(embeddings[:10], descriptors[:10])
    assert space.aspects == ASPECT_NAMES == ("cnn", "timbre", "spectrum", "envelope")
    assert rows.shape == (10, 64 + N_FEATURES) and rows.dtype == np.float32
    assert list(space.slices) == list(ASPECT_NAMES)
    for name, columns in space.slices.items():
        np.testing.assert_allclose(np.linalg.norm(rows[:, columns], axis=1), 1.0, rtol=1e-5,
                                   err_msg=name)
    assert 0.0 < space.fitted_shrinkage <= 1.0


def test_cnn_dims_keeps_the_strongest_directions_of_the_whitened_block():
    embeddings, descriptors = _library(20_000, seed=11)  # smaller libraries keep every one
    full = SimilaritySpace(cnn_dims=None).fit(embeddings, descriptors)
    cut = SimilaritySpace(cnn_dims=16).fit(embeddings, descriptors)
    assert full.dimensions["cnn"] == 64 and cut.dimensions["cnn"] == 16
    assert SimilaritySpace(cnn_dims=16).fit(embeddings[:19_999], descriptors[:19_999]
                                            ).dimensions["cnn"] == 64
    rows = cut.transform(embeddings, descriptors)
    assert rows.shape == (20_000, 16 + N_FEATURES)
    np.testing.assert_allclose(np.linalg.norm(rows[:, cut.slices["cnn"]], axis=1), 1.0,
                               rtol=1e-5)
    # the kept block is the full block on its 16 strongest directions (eigh's last), renormed
    whole = full.transform(embeddings, descriptors)[:, full.slices["cnn"]][:, -16:]
    np.testing.assert_allclose(rows[:, cut.slices["cnn"]],
                               whole / np.linalg.norm(whole, axis=1, keepdims=True), atol=1e-5)
    assert whole.var(axis=0).sum() > full.transform(embeddings, descriptors)[
        :, full.slices["cnn"]][:, :16].var(axis=0).sum()
    assert SimilaritySpace(cnn_dims=500).fit(embeddings, descriptors).dimensions["cnn"] == 64
    assert SimilaritySpace(cnn="raw", cnn_dims=16).fit(embeddings, descriptors
                                                        ).dimensions["cnn"] == 64


@pytest.mark.parametrize("cnn_dims", [0, -3, 2.5, True, "all"])
def test_bad_cnn_dims_are_refused(cnn_dims):
    with pytest.raises(ParameterError, match="cnn_dims must be an int >= 1 or None, got"):
        SimilaritySpace(cnn_dims=cnn_dims)


def test_weighted_query_scores_are_the_weighted_mean_of_aspect_cosines():
    embeddings, descriptors = _library(seed=1)
    space = SimilaritySpace().fit(embeddings, descriptors)
    rows = space.transform(embeddings, descriptors)
    weights = {"cnn": 2.0, "timbre": 1.0, "spectrum": 0.5, "envelope": 0.5}
    scores = rows @ (rows[3] * space.query_weights(weights))
    expected = sum(weight * (rows[:, space.slices[name]] @ rows[3, space.slices[name]])
                   for name, weight in weights.items()) / 4.0
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


def test_zero_descriptor_weights_rank_by_the_cnn_block_alone():
    embeddings, descriptors = _library(seed=2)
    only_cnn = {"timbre": 0, "spectrum": 0, "envelope": 0}
    # cnn="raw": the reference ranking, the raw embeddings' cosine.
    raw = SimilaritySpace(cnn="raw").fit(embeddings, descriptors)
    rows = raw.transform(embeddings, descriptors)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    np.testing.assert_array_equal(_ranking(rows @ (rows[0] * raw.query_weights(only_cnn))),
                                  _ranking(unit @ unit[0]))
    # cnn="whiten" (default): the whitened CNN block's ranking, which is *not* the raw cosine.
    fitted = SimilaritySpace().fit(embeddings, descriptors)
    rows = fitted.transform(embeddings, descriptors)
    cnn = rows[:, fitted.slices["cnn"]]
    scores = rows @ (rows[0] * fitted.query_weights(only_cnn))
    np.testing.assert_array_equal(_ranking(scores), _ranking(cnn @ cnn[0]))
    assert not np.array_equal(_ranking(scores)[:20], _ranking(unit @ unit[0])[:20])


def test_whitening_discounts_a_direction_shared_by_the_whole_library():
    # Every sound varies a lot along one nuisance direction; true neighbours differ only slightly
    # elsewhere. Raw cosine is dominated by the nuisance, the whitened space is not.
    rng = np.random.default_rng(3)
    rows, dimension = 300, 32
    nuisance = np.zeros(dimension)
    nuisance[0] = 1.0
    identity = rng.standard_normal((rows // 2, dimension)) * 0.3
    identity[:, 0] = 0
    base = np.repeat(identity, 2, axis=0) + 0.02 * rng.standard_normal((rows, dimension))
    embeddings = (base + 3 + np.outer(rng.uniform(0, 12, rows), nuisance)).astype(np.float32)
    descriptors = np.zeros((rows, N_FEATURES), np.float32)
    partner = np.arange(rows) ^ 1

    def hit_rate(space: SimilaritySpace) -> float:
        vectors = space.fit_transform(embeddings, descriptors)[:, space.slices["cnn"]]
        similarity = vectors @ vectors.T
        np.fill_diagonal(similarity, -np.inf)
        return float(np.mean(similarity.argmax(1) == partner))

    assert hit_rate(SimilaritySpace(cnn="whiten", shrinkage=0.1)) > 0.9
    assert hit_rate(SimilaritySpace(cnn="raw")) < 0.5


def test_descriptors_are_standardised_before_they_count():
    embeddings, descriptors = _library(seed=4)
    space = SimilaritySpace().fit(embeddings, descriptors)
    rows = space.transform(embeddings, descriptors)
    timbre = rows[:, space.slices["timbre"]]
    # Without standardising, the largest-scale column would dominate every timbre block.
    largest = int(np.argmax(np.abs(descriptors[:, :timbre.shape[1]]).mean(0)))
    assert np.abs(timbre[:, largest]).mean() < 0.5


def test_save_and_load_round_trip(tmp_path):
    embeddings, descriptors = _library(seed=5)
    space = SimilaritySpace(shrinkage=0.3).fit(embeddings, descriptors)
    path = tmp_path / "library.space.npz"
    space.save(path)
    loaded = SimilaritySpace.load(path)
    assert loaded.shrinkage == 0.3 and loaded.options == space.options
    np.testing.assert_array_equal(loaded.transform(embeddings, descriptors),
                                  space.transform(embeddings, descriptors))
    stored = read_stored(path)  # plain arrays and a JSON header: nothing in it needs pickle
    assert stored.header["kind"] == "space" and "descriptor_mean" in stored.arrays
    assert not list(tmp_path.glob(".tmp-*"))  # written atomically, nothing left behind


def test_a_failed_save_leaves_nothing_behind(tmp_path, monkeypatch):
    import soundslike_nb.sidecar as sidecar

    space = SimilaritySpace().fit(*_library(seed=5))
    path = tmp_path / "library.space"
    space.save(path)
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sidecar.json, "dumps", full_disk)  # fails after the arrays are written
    with pytest.raises(LibraryError, match="No space left"):
        SimilaritySpace(shrinkage=0.2).fit(*_library(seed=6)).save(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "library.space"]


def test_load_refuses_what_is_not_a_space(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not an npz")
    with pytest.raises(LibraryError, match="cannot read the space"):
        SimilaritySpace.load(path)


@pytest.mark.parametrize("rows", [1, 2, 7, 9])
def test_tiny_libraries_give_finite_unit_rows(rows):
    embeddings, descriptors = _library(rows, seed=7)
    space = SimilaritySpace().fit(embeddings, descriptors)
    query_embedding, query_descriptors = _library(1, seed=8)
    transformed = space.transform(query_embedding, query_descriptors)
    assert np.isfinite(transformed).all()
    np.testing.assert_allclose(np.linalg.norm(transformed[:, space.slices["cnn"]]), 1.0,
                               rtol=1e-5)
    assert (space.fitted_shrinkage is None) == (rows < 8)  # too few sounds to whiten


def test_ledoit_wolf_shrinkage_grows_as_the_library_shrinks():
    small = SimilaritySpace(shrinkage="ledoit-wolf").fit(*_library(20, seed=9)).fitted_shrinkage
    large = SimilaritySpace(shrinkage="ledoit-wolf").fit(*_library(2000, seed=9)).fitted_shrinkage
    assert small > large


@pytest.mark.parametrize("weights, message", [
    ({"timbre": -1}, "weight of 'timbre' must be a finite number >= 0, got -1"),
    ({"tone": 1}, "unknown aspect 'tone'; aspects are cnn, timbre, spectrum, envelope"),
    ({"cnn": 0, "timbre": 0, "spectrum": 0, "envelope": 0}, "all aspect weights are 0"),
    ({"cnn": float("nan")}, "weight of 'cnn' must be a finite number >= 0, got nan"),
    ({"cnn": "loud"}, "weight of 'cnn' must be a number, got 'loud'"),
])
def test_bad_weights_are_refused(weights, message):
    with pytest.raises(ParameterError, match=message):
        check_weights(weights)


def test_left_out_aspects_keep_their_defaults():
    assert check_weights(None) == dict(DEFAULT_WEIGHTS)
    assert check_weights({"timbre": 2}) == {**DEFAULT_WEIGHTS, "timbre": 2.0}


def test_misuse_is_refused():
    embeddings, descriptors = _library(seed=10)
    with pytest.raises(ParameterError, match="not fitted yet"):
        SimilaritySpace().transform(embeddings, descriptors)
    with pytest.raises(ParameterError, match="cnn must be 'whiten' or 'raw', got 'pca'"):
        SimilaritySpace(cnn="pca")
    with pytest.raises(ParameterError, match="shrinkage must be in \\[0, 1\\], got 2"):
        SimilaritySpace(shrinkage=2)
    space = SimilaritySpace().fit(embeddings, descriptors)
    with pytest.raises(ParameterError, match=r"embeddings must have shape \(n, 64\)"):
        space.transform(embeddings[:, :10], descriptors)
    with pytest.raises(ParameterError, match="descriptors contain NaN"):
        space.fit(embeddings, np.full_like(descriptors, np.nan))
