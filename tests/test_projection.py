"""The library map: UMAP fit once, stored beside the library, queries placed by transform."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from soundslike_nb.errors import ParameterError
from soundslike_nb.libfile import ROW_COLUMNS, LibraryTable, write_table
from soundslike_nb.library import load_library
from soundslike_nb.projection import MIN_UMAP_SOUNDS, LibraryMap, membership_weights
from soundslike_nb.sidecar import SidecarStore, read_stored, write_stored

DIMENSION = 24


def clustered(count: int, *, clusters: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded vectors in well separated clusters, and each vector's cluster."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((clusters, DIMENSION))
    labels = np.arange(count) % clusters
    vectors = centres[labels] + 0.3 * rng.standard_normal((count, DIMENSION))
    return vectors.astype(np.float32), labels


@pytest.fixture(scope="module")
def fitted() -> tuple[LibraryMap, np.ndarray, np.ndarray]:
    vectors, labels = clustered(240)
    return LibraryMap(n_epochs=100).fit(vectors), vectors, labels


@pytest.mark.slow
def test_umap_map_keeps_clusters_apart(fitted):
    atlas, _, labels = fitted
    assert atlas.method == "umap" and atlas.coordinates.shape == (240, 2)
    assert atlas.coordinates.dtype == np.float32
    distances = np.linalg.norm(atlas.coordinates[:, None] - atlas.coordinates[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.argmin(axis=1)
    assert (labels[nearest] == labels).mean() > 0.95


@pytest.mark.slow
def test_transform_places_queries_among_their_neighbours_without_refitting(fitted):
    atlas, vectors, labels = fitted
    before = atlas.coordinates.copy()
    # A fitted vector lands on its own point.
    np.testing.assert_allclose(atlas.transform(vectors[17]), before[[17]], atol=1e-5)
    # A new vector near cluster c lands nearer c's points than any other cluster's.
    rng = np.random.default_rng(1)
    for cluster in range(4):
        query = vectors[labels == cluster].mean(axis=0) + 0.3 * rng.standard_normal(DIMENSION)
        point = atlas.transform(query[None])[0]
        centroids = np.array([before[labels == c].mean(axis=0) for c in range(4)])
        assert np.linalg.norm(centroids - point, axis=1).argmin() == cluster
    np.testing.assert_array_equal(atlas.coordinates, before)
    with pytest.raises(ParameterError, match="dimension"):
        atlas.transform(np.ones((1, DIMENSION + 1), np.float32))


@pytest.mark.slow
def test_stored_round_trip_checks_the_key(fitted, tmp_path):
    atlas, vectors, _ = fitted
    store = SidecarStore(tmp_path / "lib.parquet")
    assert store.save("map", "abc", *atlas.to_stored())
    stored = read_stored(tmp_path / "lib.parquet.map")  # plain arrays, never a pickle
    assert set(stored.arrays) == {"coordinates"}

    def read(stored, reference=vectors):
        return LibraryMap.from_stored(stored, count=len(reference), reference=reference)

    loaded = store.load("map", "abc", read)
    assert loaded is not None and loaded.method == "umap"
    np.testing.assert_array_equal(loaded.coordinates, atlas.coordinates)
    np.testing.assert_allclose(loaded.transform(vectors[:3] + 0.01), atlas.transform(
        vectors[:3] + 0.01), atol=1e-6)
    assert store.load("map", "other", read) is None
    assert store.load("map", "abc", lambda stored: read(stored, vectors[:-1])) is None
    assert SidecarStore(tmp_path / "missing.parquet").load("map", "abc", read) is None
    (tmp_path / "junk.parquet.map").write_bytes(b"not a map")
    assert SidecarStore(tmp_path / "junk.parquet").load("map", "abc", read) is None
    write_stored(tmp_path / "other.parquet.map", {"kind": "index", "key": "abc"}, {})
    assert SidecarStore(tmp_path / "other.parquet").load("map", "abc", read) is None

    # Without its fitted vectors, a map places queries among neighbours a search index found.
    bare = store.load("map", "abc", lambda stored: LibraryMap.from_stored(stored, count=240))
    queries = vectors[:3] + 0.01
    with pytest.raises(ParameterError, match="neighbours"):
        bare.transform(queries)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    nearest = np.argsort(-cosines, axis=1)[:, :15]
    placed = bare.transform(queries, neighbours=(nearest, np.take_along_axis(cosines, nearest, 1)))
    np.testing.assert_allclose(placed, atlas.transform(queries), atol=1e-5)


def test_small_libraries_get_a_pca_map_and_say_so():
    vectors, _ = clustered(MIN_UMAP_SOUNDS - 1)
    atlas = LibraryMap().fit(vectors)
    assert atlas.method == "pca" and "UMAP needs at least" in atlas.note
    assert atlas.coordinates.shape == (MIN_UMAP_SOUNDS - 1, 2)
    np.testing.assert_allclose(atlas.transform(vectors[:2]), atlas.coordinates[:2], atol=1e-4)
    two = LibraryMap().fit(vectors[:2])
    assert two.method == "pca" and np.isfinite(two.coordinates).all()
    for count in (0, 1):
        tiny = LibraryMap().fit(vectors[:count])
        assert tiny.method == "trivial" and tiny.coordinates.shape == (count, 2)
        assert tiny.transform(vectors[:1]).shape == (1, 2)


def test_bad_input_is_refused():
    with pytest.raises(ParameterError, match="not fitted"):
        LibraryMap().transform(np.ones((1, 4)))
    with pytest.raises(ParameterError, match="2-D"):
        LibraryMap().fit(np.ones(4))
    with pytest.raises(ParameterError, match="NaN"):
        LibraryMap().fit(np.full((3, 4), np.nan))
    with pytest.raises(ParameterError, match="method"):
        LibraryMap(method="tsne")


def test_membership_weights_favour_the_nearest():
    weights = membership_weights(np.array([[0.1, 0.2, 0.4, 0.8], [0.0, 0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert np.all(np.diff(weights[0]) < 0)
    np.testing.assert_allclose(weights[1], 0.25)


def _library_file(tmp_path, vectors: np.ndarray) -> str:
    count = len(vectors)
    rows = pd.DataFrame({"name": [f"s{i}" for i in range(count)],
                         "path": [str(tmp_path / f"s{i}.wav") for i in range(count)],
                         "duration": np.linspace(0.1, 2.0, count), "sample_rate": 44100,
                         "channels": 1, "frames": 4410, "size": 1, "mtime": 0.0})
    path = str(tmp_path / "lib.parquet")
    write_table(LibraryTable(rows.astype(ROW_COLUMNS), vectors,
                             {"embedder": {"id": "test", "dimension": DIMENSION}}), path)
    return path


def test_the_library_map_fits_once_and_refits_only_when_the_library_changes(tmp_path,
                                                                               monkeypatch):
    vectors, _ = clustered(12)  # few sounds: a PCA map, so the test needs no UMAP
    path = _library_file(tmp_path, vectors)
    first = load_library(path).map(progress=False)
    assert (tmp_path / "lib.parquet.map").exists()

    def no_fit(self, *args, **kwargs):
        raise AssertionError("the stored map should have been used")

    with monkeypatch.context() as patch:
        patch.setattr(LibraryMap, "fit", no_fit)
        again = load_library(path).map(progress=False)
    np.testing.assert_array_equal(again.coordinates, first.coordinates)

    changed = vectors.copy()
    changed[0] += 1.0
    path = _library_file(tmp_path, changed)
    refit = load_library(path).map(progress=False)
    assert not np.array_equal(refit.coordinates, first.coordinates)
