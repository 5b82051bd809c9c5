"""The library as a map: a 2-D UMAP projection, fit once, stored beside the library, reused.

:class:`LibraryMap` is a pure estimator (``fit`` / ``transform``, ``to_stored`` /
``from_stored``). ``fit`` runs UMAP (cosine) on the vectors it is given (a library gives the rows
its search compares, so that the map and the search share one space); ``transform`` places new
vectors on the fitted map without refitting, the way UMAP's own transform begins: the query's
nearest library sounds (exact cosine) with UMAP's fuzzy membership weights, and the weighted
mean of their map positions. Doing that in numpy keeps a stored map small (coordinates only, no
pickle: the fitted UMAP of 100k sounds pickles to ~500 MB) and placing a query fast (no numba
compilation, no search index to build).

Libraries with fewer than :data:`MIN_UMAP_SOUNDS` sounds are too small for UMAP's neighbourhood
graph to mean anything: they get a PCA map, and ``note`` says so.

``Library.map()`` is what the app calls: the stored ``<library>.map`` (sidecar store) when it
was fitted on the library's content, else a fresh fit (with progress), saved for next time.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import numpy as np

from .errors import ParameterError

__all__ = ["MIN_UMAP_SOUNDS", "LibraryMap", "map_for_size"]

#: Fewer sounds than this get a PCA map instead of UMAP.
MIN_UMAP_SOUNDS = 16
#: Above this many sounds UMAP runs unseeded, on all cores (a seed makes it single-threaded).
SEEDED_MAX_SOUNDS = 20_000
#: Above this many sounds UMAP starts from PCA instead of a spectral layout: on a library of
#: many small clusters the spectral start costs more than everything else (measured: 100k
#: clustered sounds, 200 CPU-s with it, 75 without).
SPECTRAL_MAX_SOUNDS = 20_000
MAP_FORMAT = 3
_TIMESTAMP = re.compile(r"^\w{3} \w{3} +\d+ [\d:]+ \d{4}\s*")


class LibraryMap:
    """A 2-D map of embedding vectors: UMAP (cosine) fit once, new vectors placed by ``transform``.

    UMAP runs with cosine distance, ``low_memory``, a spectral start up to
    :data:`SPECTRAL_MAX_SOUNDS` sounds and a PCA start above, and epochs chosen by size
    (:func:`epochs_for`).

    Args:
        n_neighbors: UMAP's neighbourhood size (capped at the number of sounds minus one).
        min_dist: UMAP's minimum distance between points on the map.
        n_epochs: layout epochs; ``None`` picks by size (500 up to 10k sounds, then fewer).
        random_state: seed; ``None`` lets UMAP use every core (not reproducible).
        method: ``"auto"`` (UMAP, or PCA below :data:`MIN_UMAP_SOUNDS` sounds), ``"umap"`` or
            ``"pca"`` (linear, instant: for quick looks and tests).

    Example:
        >>> vectors = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
        >>> atlas = LibraryMap(n_epochs=50).fit(vectors)  # doctest: +SKIP
        >>> atlas.coordinates.shape, atlas.transform(vectors[:1]).shape  # doctest: +SKIP
        ((40, 2), (1, 2))
    """

    def __init__(self, *, n_neighbors: int = 15, min_dist: float = 0.1,
                 n_epochs: int | None = None, random_state: int | None = 0,
                 method: str = "auto") -> None:
        if method not in ("auto", "umap", "pca"):
            raise ParameterError(f"method must be 'auto', 'umap' or 'pca', got {method!r}")
        if n_neighbors < 2:
            raise ParameterError(f"n_neighbors must be >= 2, got {n_neighbors}")
        if n_epochs is not None and n_epochs < 1:
            raise ParameterError(f"n_epochs must be >= 1, got {n_epochs}")
        self.n_neighbors = int(n_neighbors)
        self.min_dist = float(min_dist)
        self.n_epochs = n_epochs
        self.random_state = random_state
        self.requested_method = method
        self.coordinates: np.ndarray | None = None
        self.method = ""
        self.note = ""
        self.dimension = 0  # of the vectors fitted on
        self._reference: np.ndarray | None = None
        self._reference_norms: np.ndarray | None = None
        self._pca: tuple[np.ndarray, np.ndarray] | None = None  # (mean, components)

    def __repr__(self) -> str:
        size = "unfitted" if self.coordinates is None else f"{len(self.coordinates)} points"
        return f"<LibraryMap {self.method or 'unfitted'}, {size}>"

    # -- fitting -----------------------------------------------------------------------------

    def fit(self, embeddings: np.ndarray, *, progress: bool = False) -> LibraryMap:
        """Fit the map to ``(n, dimension)`` vectors; ``progress`` shows what UMAP is doing."""
        vectors = _check_vectors(embeddings, "embeddings")
        count = len(vectors)
        self._set_reference(vectors)
        self.dimension = vectors.shape[1]
        self._pca = None
        too_few = count < MIN_UMAP_SOUNDS
        if count >= 2 and (self.requested_method == "pca" or too_few):
            mean = vectors.mean(axis=0)
            _, _, components = np.linalg.svd(vectors - mean, full_matrices=False)
            self._pca = (mean, components[:2])
            self.coordinates = self._project_pca(vectors)
            self.method = "pca"
            self.note = (f"PCA of {count} sounds" if not too_few else
                         f"PCA of {count} sounds: UMAP needs at least {MIN_UMAP_SOUNDS}, so "
                         "distances on this map are only a rough guide")
        elif count >= 2:
            self.coordinates = self._fit_umap(self._unit(vectors), progress=progress)
            self.method = "umap"
            self.note = f"UMAP of {count} sounds"
        else:
            self.coordinates = np.zeros((count, 2), np.float32)
            self.method = "trivial"
            self.note = f"{count} sound{'s' if count != 1 else ''}: nothing to map"
        return self

    def _fit_umap(self, unit_vectors: np.ndarray, *, progress: bool) -> np.ndarray:
        import umap  # lazy: numba compilation and pynndescent are heavy

        count = len(unit_vectors)
        n_epochs = self.n_epochs or epochs_for(count)
        reducer = umap.UMAP(
            n_components=2, metric="cosine", n_neighbors=min(self.n_neighbors, count - 1),
            min_dist=self.min_dist, n_epochs=n_epochs, low_memory=True,
            init="spectral" if count <= SPECTRAL_MAX_SOUNDS else "pca",
            random_state=self.random_state, n_jobs=1 if self.random_state is not None else -1,
            verbose=progress, tqdm_kwds={"disable": True},  # its log lines drive our bar
        )
        with _umap_log(progress, count):
            coordinates = reducer.fit_transform(unit_vectors)
        return np.ascontiguousarray(coordinates, dtype=np.float32)

    # -- placing new vectors -----------------------------------------------------------------

    def transform(self, vectors: np.ndarray, *,
                  neighbours: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Place ``(m, dimension)`` vectors (or one vector) on the fitted map: ``(m, 2)``.

        UMAP maps: the membership-weighted mean of each vector's nearest fitted points (UMAP's
        own transform starts there); a vector equal to a fitted point lands on it. The nearest
        points are found by scanning the fitted vectors, or given as ``neighbours``:
        ``(positions, cosine similarities)``, each ``(m, k)``, from a search index over them
        (``-1`` positions are ignored), so that a big library keeps no second copy of its rows.
        """
        if self.coordinates is None:
            raise ParameterError("this LibraryMap is not fitted: call fit() first")
        queries = _check_vectors(np.atleast_2d(vectors), "vectors")
        if queries.shape[1] != self.dimension:
            raise ParameterError(f"vectors have dimension {queries.shape[1]}, the map was fit "
                                 f"on {self.dimension}")
        count = len(self.coordinates)
        if self.method == "pca":
            return self._project_pca(queries)
        if self.method == "trivial" or count == 0:
            return np.zeros((len(queries), 2), np.float32)
        if neighbours is not None:
            positions = np.asarray(neighbours[0], np.int64).reshape(len(queries), -1)
            similarities = np.asarray(neighbours[1], np.float64).reshape(positions.shape)
        elif self._reference is not None:
            k = min(self.n_neighbors, count)
            scores = (self._unit(queries) @ self._reference.T) / self._reference_norms
            positions = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            similarities = np.take_along_axis(scores, positions, axis=1)
        else:
            raise ParameterError("this map holds no fitted vectors: pass neighbours=(positions, "
                                 "similarities) found by a search over them")
        return self._place(positions, similarities)

    def _place(self, positions: np.ndarray, similarities: np.ndarray) -> np.ndarray:
        found = positions >= 0
        if not found.any(axis=1).all():
            raise ParameterError("every vector needs at least one neighbour to be placed")
        distances = np.where(found, 1.0 - similarities, np.inf)
        weights = membership_weights(np.maximum(np.where(found, distances, 0.0), 0.0))
        weights = np.where(found, weights, 0.0)
        weights /= weights.sum(axis=1, keepdims=True)
        placed = np.einsum("mk,mkd->md", weights, self.coordinates[np.where(found, positions, 0)])
        rows = np.arange(len(positions))
        nearest = distances.argmin(axis=1)
        # The sound itself (within float16 rounding of an IVF index): land on its point.
        exact = distances[rows, nearest] <= 1e-4
        placed[exact] = self.coordinates[positions[rows, nearest][exact]]
        return placed.astype(np.float32)

    # -- storage -----------------------------------------------------------------------------

    def options(self) -> dict[str, Any]:
        """What decides the fitted map besides the data (part of its sidecar key)."""
        return {"n_neighbors": self.n_neighbors, "min_dist": self.min_dist,
                "n_epochs": self.n_epochs, "random_state": self.random_state,
                "method": self.requested_method}

    def to_stored(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Header fields and arrays (coordinates, PCA axes; no pickle) for
        :func:`~soundslike_nb.sidecar.write_stored`."""
        if self.coordinates is None:
            raise ParameterError("cannot save an unfitted LibraryMap")
        header = {"format": MAP_FORMAT, "method": self.method, "note": self.note,
                  "options": self.options(), "dimension": self.dimension}
        arrays = {"coordinates": self.coordinates}
        if self._pca is not None:
            arrays["pca_mean"], arrays["pca_components"] = self._pca
        return header, arrays

    @classmethod
    def from_stored(cls, stored, *, count: int, reference: np.ndarray | None = None
                    ) -> LibraryMap:
        """The map held by a :class:`~soundslike_nb.sidecar.StoredFile`, of ``count`` points;
        ``reference`` are the vectors it was fitted on (else :meth:`transform` needs
        ``neighbours``). ``ValueError`` when it is not such a map."""
        header, arrays = stored.header, stored.arrays
        coordinates = np.array(arrays["coordinates"], dtype=np.float32)
        if header.get("format") != MAP_FORMAT or coordinates.shape != (count, 2):
            raise ValueError(f"map format {header.get('format')!r} of shape "
                             f"{coordinates.shape}, expected {(count, 2)}")
        options = header["options"]
        atlas = cls(n_neighbors=options["n_neighbors"], min_dist=options["min_dist"],
                    n_epochs=options["n_epochs"], random_state=options["random_state"],
                    method=options["method"])
        pca = ((np.array(arrays["pca_mean"]), np.array(arrays["pca_components"]))
               if "pca_mean" in arrays else None)
        atlas._restore(coordinates, header["method"], header["note"], pca, int(header["dimension"]))
        if reference is not None:
            atlas._set_reference(_check_vectors(reference, "reference"))
        return atlas

    def _restore(self, coordinates: np.ndarray, method: str, note: str,
                 pca: tuple[np.ndarray, np.ndarray] | None, dimension: int) -> None:
        """Take a stored fit (:meth:`from_stored`)."""
        self.coordinates, self.method, self.note, self._pca = coordinates, method, note, pca
        self.dimension = dimension

    # -- helpers -----------------------------------------------------------------------------

    def _set_reference(self, vectors: np.ndarray) -> None:
        # Keep the caller's matrix (no normalised copy of a big library) and its norms.
        self._reference = vectors
        norms = np.linalg.norm(vectors, axis=1)
        self._reference_norms = np.where(norms > 0, norms, 1.0).astype(np.float32)

    @staticmethod
    def _unit(vectors: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def _project_pca(self, vectors: np.ndarray) -> np.ndarray:
        mean, components = self._pca
        projected = np.zeros((len(vectors), 2), np.float32)
        projected[:, : len(components)] = (vectors - mean) @ components.T
        return projected


def epochs_for(count: int) -> int:
    """Layout epochs by library size: UMAP's 500 for small maps, fewer as they grow (a big map
    converges in fewer passes, and each pass costs more).

    Example:
        >>> epochs_for(1_000), epochs_for(100_000)
        (500, 100)
    """
    if count <= 10_000:
        return 500
    if count <= 50_000:
        return 200
    return 100


def membership_weights(distances: np.ndarray, *, iterations: int = 64) -> np.ndarray:
    """UMAP's fuzzy membership of each row's k neighbours (as in its transform), normalised.

    Each row's bandwidth ``sigma`` is bisected so that ``sum(exp(-d / sigma)) = log2(k)``.

    Example:
        >>> membership_weights(np.array([[0.1, 0.2, 0.4]])).round(2)
        array([[0.47, 0.34, 0.19]])
    """
    distances = np.asarray(distances, dtype=np.float64)
    target = np.log2(max(distances.shape[1], 2))
    low = np.zeros(len(distances))
    high = np.full(len(distances), np.inf)
    sigma = np.ones(len(distances))
    for _ in range(iterations):
        total = np.exp(-distances / sigma[:, None]).sum(axis=1)
        too_wide = total > target
        high = np.where(too_wide, sigma, high)
        low = np.where(too_wide, low, sigma)
        sigma = np.where(np.isinf(high), sigma * 2.0, (low + high) / 2.0)
    weights = np.exp(-distances / sigma[:, None])
    return weights / weights.sum(axis=1, keepdims=True)


def map_for_size(count: int) -> LibraryMap:
    """The map a library of ``count`` sounds gets: seeded (reproducible) up to
    :data:`SEEDED_MAX_SOUNDS`, above it unseeded so that UMAP uses every core.

    Example:
        >>> map_for_size(100).random_state, map_for_size(50_000).random_state
        (0, None)
    """
    return LibraryMap(random_state=0 if count <= SEEDED_MAX_SOUNDS else None)


def _check_vectors(vectors: Any, what: str) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ParameterError(f"{what} must be 2-D (rows, dimension), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ParameterError(f"{what} contain NaN or infinite values")
    return array


class _ProgressLog:
    """A stdout stand-in that turns UMAP's verbose log lines into a progress bar's description."""

    def __init__(self, bar) -> None:
        self.bar = bar
        self.pending = ""

    def write(self, text: str) -> int:
        # print() writes its arguments one by one: act on whole lines only.
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            step = " ".join(_TIMESTAMP.sub("", line).split())
            if step and not step.startswith("UMAP("):
                self.bar.set_description_str(f"map: {step[:60]}", refresh=False)
                self.bar.update(1)
        return len(text)

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def _umap_log(progress: bool, count: int):
    if not progress:
        yield
        return
    from tqdm.auto import tqdm

    bar = tqdm(desc=f"map of {count} sounds", unit=" steps", dynamic_ncols=True)
    try:
        with contextlib.redirect_stdout(_ProgressLog(bar)):
            yield
    finally:
        bar.set_description_str(f"map of {count} sounds: done")
        bar.close()
