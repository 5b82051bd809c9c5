"""A similarity space fitted on the library itself, in which aspect weights steer a search.

The library keeps its raw vectors (CNN embedding, descriptors). :class:`SimilaritySpace` learns,
from those vectors, a transform that maps each aspect to a unit vector:

- ``cnn`` ("overall character"): signed square root, L2 norm, centring on the library mean,
  PCA whitening with the eigenvalues shrunk 95 % of the way toward their mean (a few hundred
  sounds cannot estimate a 512-d covariance; measured, stronger whitening loses), keeping the
  256 strongest directions in a library of 20,000 sounds or more (:data:`DEFAULT_CNN_DIMS`),
  L2 norm.
  Centring matters most: raw CNN cosines all sit between ~0.6 and ~0.9, centred ones spread over
  -0.4..0.5 like the descriptors' do, so that aspect weights mean what they say;
- ``timbre``, ``spectrum``, ``envelope``: each descriptor standardised over the library and
  clipped to +-5 standard deviations, then the aspect's block L2-normalised.

The index stores the concatenated unit blocks once. A search multiplies the transformed query by
:meth:`SimilaritySpace.query_weights`, so that its inner product with a row is
``sum_i w_i * cos(aspect_i) / sum_i w_i``: one index serves every weighting, and a new weight
re-ranks without re-embedding or re-indexing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from .descriptors import ASPECT_SLICES, DESCRIPTOR_VERSION, FEATURE_NAMES
from .errors import ParameterError

__all__ = ["ASPECT_NAMES", "DEFAULT_CNN_DIMS", "DEFAULT_SHRINKAGE", "DEFAULT_WEIGHTS",
           "SimilaritySpace", "check_weights"]

#: The aspects a search can weight, in the order of their blocks.
ASPECT_NAMES: tuple[str, ...] = ("cnn", *ASPECT_SLICES)
#: Chosen by benchmarks/retrieval.py on demo, perturb and lincity-ng (the largest worst-case mAP
#: gain there), then measured on widelands and wesnoth.
DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"cnn": 1.0, "timbre": 0.1, "spectrum": 0.25, "envelope": 0.1})
#: Eigenvalue shrinkage of the CNN whitening, chosen with the weights. Ledoit-Wolf's estimate
#: (0.03-0.26 on the benchmark collections) whitens far too hard for retrieval: mAP -0.01 to -0.16.
DEFAULT_SHRINKAGE = 0.95
#: Principal directions of the CNN block kept. Measured on 1,373 real sounds of 8 collections
#: (fused rows, family retrieval): mAP 0.3049 with all 512, 0.3052 with 256, 0.3009 with 128;
#: per collection 256 changes no mAP by more than 0.0001. Halving the block halves the cost of
#: transforming, indexing, storing and re-ranking a library's rows; a smaller library, searched
#: exactly in milliseconds, keeps every direction (``_MIN_ROWS_TO_TRUNCATE``).
DEFAULT_CNN_DIMS = 256

FORMAT_VERSION = 1
_MIN_ROWS_TO_WHITEN = 8       # fewer sounds: the CNN block is only square-rooted and normalised
_MIN_ROWS_TO_TRUNCATE = 20_000  # where an index replaces the exact scan (IndexSettings)
_MAX_FIT_ROWS = 100_000       # a covariance of 512 dims is well estimated from this many rows
_CHUNK_ROWS = 8_192  # temporaries of 16 MiB: reused from the heap, not mapped anew each time
_CLIP_SD = 5.0


def check_weights(weights: Mapping[str, float] | None, *,
                  defaults: Mapping[str, float] = DEFAULT_WEIGHTS) -> dict[str, float]:
    """Validate aspect weights; an aspect left out keeps its default. Returns all of them.

    Example:
        >>> check_weights({"timbre": 0, "spectrum": 0, "envelope": 0})["cnn"]
        1.0
    """
    merged = {name: float(defaults[name]) for name in ASPECT_NAMES}
    for name, value in (weights or {}).items():
        if name not in merged:
            raise ParameterError(f"unknown aspect {name!r}; aspects are {', '.join(ASPECT_NAMES)}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ParameterError(f"weight of {name!r} must be a number, got {value!r}") from None
        if not math.isfinite(number) or number < 0:
            raise ParameterError(f"weight of {name!r} must be a finite number >= 0, got {value!r}")
        merged[name] = number
    if not any(merged.values()):
        raise ParameterError(f"all aspect weights are 0 ({merged}); at least one must be > 0")
    return merged


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 1e-12)


def _to_unit_rows(matrix: np.ndarray) -> np.ndarray:
    """:func:`_unit_rows` in place (a float array of our own): no temporary of its size."""
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    norms[norms <= 1e-12] = np.inf  # a zero row stays zero
    matrix /= norms[:, None]
    return matrix


def _signed_sqrt_unit(embeddings: np.ndarray) -> np.ndarray:
    vectors = np.sqrt(np.abs(embeddings))
    np.copysign(vectors, embeddings, out=vectors)
    return _to_unit_rows(vectors)


def _as_matrix(values: np.ndarray, columns: int | None, what: str) -> np.ndarray:
    matrix = np.asarray(values, dtype=np.float32)
    if matrix.ndim != 2 or (columns is not None and matrix.shape[1] != columns):
        expected = f"(n, {columns})" if columns is not None else "(n, d)"
        raise ParameterError(f"{what} must have shape {expected}, got {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ParameterError(f"{what} contain NaN or infinite values")
    return matrix


class SimilaritySpace:
    """Library-fitted transform of (CNN embedding, descriptors) into weighted unit aspects.

    Args:
        cnn: ``"whiten"`` (the fitted transform above) or ``"raw"`` (the embedding's own cosine:
            with descriptor weights 0, exactly the reference ranking).
        shrinkage: eigenvalue shrinkage of the whitening, 0 (full whitening) to 1 (centring
            only), or ``"ledoit-wolf"`` to estimate it from the library (needs scikit-learn;
            measured worse, see :data:`DEFAULT_SHRINKAGE`).
        cnn_dims: principal directions of the whitened CNN block kept (the strongest;
            ``None``: all) in a library of 20,000 sounds or more; a smaller one keeps all.
            Ignored with ``cnn="raw"``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> embeddings = rng.random((50, 16), dtype=np.float32)
        >>> descriptors = rng.standard_normal((50, len(FEATURE_NAMES))).astype(np.float32)
        >>> space = SimilaritySpace().fit(embeddings, descriptors)
        >>> rows = space.transform(embeddings, descriptors)
        >>> scores = rows @ (rows[0] * space.query_weights({"timbre": 1.0}))
        >>> int(scores.argmax())
        0
    """

    aspects: tuple[str, ...] = ASPECT_NAMES

    def __init__(self, *, cnn: str = "whiten", shrinkage: float | str = DEFAULT_SHRINKAGE,
                 cnn_dims: int | None = DEFAULT_CNN_DIMS) -> None:
        if cnn not in {"whiten", "raw"}:
            raise ParameterError(f"cnn must be 'whiten' or 'raw', got {cnn!r}")
        if isinstance(shrinkage, str):
            if shrinkage != "ledoit-wolf":
                raise ParameterError(
                    f"shrinkage must be a number in [0, 1] or 'ledoit-wolf', got {shrinkage!r}")
        elif not 0.0 <= float(shrinkage) <= 1.0:
            raise ParameterError(f"shrinkage must be in [0, 1], got {shrinkage}")
        if cnn_dims is not None and (isinstance(cnn_dims, bool) or not isinstance(
                cnn_dims, (int, np.integer)) or cnn_dims < 1):
            raise ParameterError(f"cnn_dims must be an int >= 1 or None, got {cnn_dims!r}")
        self.cnn = cnn
        self.cnn_dims = None if cnn_dims is None else int(cnn_dims)
        self.shrinkage = shrinkage
        self.fitted_shrinkage: float | None = None
        self.n_fitted = 0
        self._cnn_mean: np.ndarray | None = None
        self._cnn_projection: np.ndarray | None = None  # None: no whitening
        self._descriptor_mean: np.ndarray | None = None
        self._descriptor_scale: np.ndarray | None = None
        self._cnn_width_value = 0

    # ----------------------------------------------------------------------------- fitting
    @property
    def options(self) -> dict:
        """What, besides the data, decides the fitted transform."""
        return {"cnn": self.cnn, "shrinkage": self.shrinkage, "cnn_dims": self.cnn_dims,
                "descriptors": DESCRIPTOR_VERSION, "format": FORMAT_VERSION}

    def fit(self, embeddings: np.ndarray, descriptors: np.ndarray) -> SimilaritySpace:
        """Learn the transform from a library's (n, d) embeddings and (n, D) descriptors.

        Example:
            >>> space = SimilaritySpace().fit(np.ones((3, 4)), np.zeros((3, len(FEATURE_NAMES))))
            >>> space.n_fitted
            3
        """
        embeddings = _as_matrix(embeddings, None, "embeddings")
        descriptors = _as_matrix(descriptors, len(FEATURE_NAMES), "descriptors")
        rows = len(embeddings)
        if rows == 0 or rows != len(descriptors):
            raise ParameterError(
                f"need as many embeddings as descriptors (>= 1), got {rows} and {len(descriptors)}")
        self.n_fitted = rows
        self._cnn_width_value = embeddings.shape[1]
        sample = np.linspace(0, rows - 1, min(rows, _MAX_FIT_ROWS)).round().astype(int)
        self._fit_descriptors(descriptors[sample].astype(np.float64))
        self._cnn_mean, self._cnn_projection = None, None
        self.fitted_shrinkage = None
        if self.cnn == "whiten" and rows >= _MIN_ROWS_TO_WHITEN:
            self._fit_whitening(_signed_sqrt_unit(embeddings[sample]).astype(np.float64))
        return self

    def _fit_descriptors(self, descriptors: np.ndarray) -> None:
        if len(descriptors) < 2:  # one sound has no spread: leave its values as they are
            self._descriptor_mean = np.zeros(descriptors.shape[1], np.float32)
            self._descriptor_scale = np.ones(descriptors.shape[1], np.float32)
            return
        mean = descriptors.mean(0)
        scale = descriptors.std(0)
        # A descriptor constant over the library carries no information: scale 1 keeps it 0.
        scale[scale < 1e-6 * (np.abs(mean) + 1.0)] = 1.0
        self._descriptor_mean, self._descriptor_scale = mean.astype(np.float32), scale.astype(
            np.float32)

    def _fit_whitening(self, vectors: np.ndarray) -> None:
        mean = vectors.mean(0)
        centred = vectors - mean
        covariance = centred.T @ centred / len(centred)
        if self.shrinkage == "ledoit-wolf":
            from sklearn.covariance import ledoit_wolf_shrinkage

            alpha = float(ledoit_wolf_shrinkage(centred, assume_centered=True))
        else:
            alpha = float(self.shrinkage)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        eigenvalues = np.clip(eigenvalues, 0.0, None)
        target = eigenvalues.mean()
        if target <= 0:  # every row identical: nothing to whiten
            return
        shrunk = (1.0 - alpha) * eigenvalues + alpha * target
        shrunk = np.maximum(shrunk, 1e-9 * target)
        self.fitted_shrinkage = alpha
        self._cnn_mean = mean.astype(np.float32)
        keep = (len(shrunk) if self.cnn_dims is None or self.n_fitted < _MIN_ROWS_TO_TRUNCATE
                else min(self.cnn_dims, len(shrunk)))
        # eigh sorts eigenvalues up: the strongest directions are the last columns
        self._cnn_projection = np.ascontiguousarray(
            (eigenvectors / np.sqrt(shrunk))[:, len(shrunk) - keep:], dtype=np.float32)

    # ---------------------------------------------------------------------------- applying
    @property
    def dimensions(self) -> dict[str, int]:
        """Aspect → width of its block in :meth:`transform`'s output."""
        self._require_fitted()
        widths = {name: columns.stop - columns.start for name, columns in ASPECT_SLICES.items()}
        cnn = (self._cnn_width if self._cnn_projection is None
               else int(self._cnn_projection.shape[1]))
        return {"cnn": cnn, **widths}

    @property
    def slices(self) -> dict[str, slice]:
        """Aspect → its columns in :meth:`transform`'s output."""
        result, start = {}, 0
        for name, width in self.dimensions.items():
            result[name] = slice(start, start + width)
            start += width
        return result

    def transform(self, embeddings: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
        """(n, d) embeddings and (n, D) descriptors → (n, total) float32 unit aspect blocks.

        Example:
            >>> space = SimilaritySpace().fit(np.ones((3, 4)), np.zeros((3, len(FEATURE_NAMES))))
            >>> space.transform(np.ones((1, 4)), np.zeros((1, len(FEATURE_NAMES)))).shape
            (1, 90)
        """
        self._require_fitted()
        embeddings = _as_matrix(embeddings, self._cnn_width, "embeddings")
        descriptors = _as_matrix(descriptors, len(FEATURE_NAMES), "descriptors")
        if len(embeddings) != len(descriptors):
            raise ParameterError(f"need as many embeddings as descriptors, got "
                                 f"{len(embeddings)} and {len(descriptors)}")
        slices = self.slices
        output = np.zeros((len(embeddings), slices["envelope"].stop), np.float32)
        for start in range(0, len(embeddings), _CHUNK_ROWS):
            stop = start + _CHUNK_ROWS
            output[start:stop, slices["cnn"]] = self._transform_cnn(embeddings[start:stop])
            standard = (descriptors[start:stop] - self._descriptor_mean) / self._descriptor_scale
            standard = np.clip(standard, -_CLIP_SD, _CLIP_SD)
            for name, columns in ASPECT_SLICES.items():
                output[start:stop, slices[name]] = _unit_rows(standard[:, columns])
        return output

    def fit_transform(self, embeddings: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
        """:meth:`fit`, then :meth:`transform` of the same rows."""
        return self.fit(embeddings, descriptors).transform(embeddings, descriptors)

    def _transform_cnn(self, embeddings: np.ndarray) -> np.ndarray:
        if self.cnn == "raw":
            return _unit_rows(embeddings)
        vectors = _signed_sqrt_unit(embeddings)
        if self._cnn_projection is None:
            return vectors
        vectors -= self._cnn_mean
        return _to_unit_rows(vectors @ self._cnn_projection)

    def query_weights(self, weights: Mapping[str, float] | None = None) -> np.ndarray:
        """(total,) multiplier for a transformed query: ``(q * m) @ row = sum w_i cos_i / sum w``.

        ``weights`` override :data:`DEFAULT_WEIGHTS` aspect by aspect. With every descriptor at
        0 the ranking is the CNN block's: the raw cosine when ``cnn="raw"``, the cosine in the
        whitened space when ``cnn="whiten"`` (the default; it is not the raw cosine).

        Example:
            >>> space = SimilaritySpace().fit(np.ones((3, 4)), np.zeros((3, len(FEATURE_NAMES))))
            >>> multiplier = space.query_weights({"cnn": 3, "timbre": 1, "spectrum": 0,
            ...                                   "envelope": 0})
            >>> [float(multiplier[space.slices[name]][0]) for name in ("cnn", "timbre")]
            [0.75, 0.25]
        """
        merged = check_weights(weights)
        total = sum(merged.values())
        multiplier = np.zeros(self.slices["envelope"].stop, np.float32)
        for name, columns in self.slices.items():
            multiplier[columns] = merged[name] / total
        return multiplier

    def index_rows(self, embeddings: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
        """What an index stores: :meth:`transform` with each block scaled by the square root of
        its default weight share, so that the usual query (default weights) looks like a row and
        an approximate index calibrated on rows serves it at the calibrated recall.

        ``query_row(...) @ index_rows(...)`` is ``sum_i w_i cos_i / sum_i w_i`` for any weights.
        """
        rows = self.transform(embeddings, descriptors)
        rows *= np.sqrt(self.query_weights(DEFAULT_WEIGHTS))
        return rows

    def query_row(self, embedding: np.ndarray, descriptors: np.ndarray,
                  weights: Mapping[str, float] | None = None) -> np.ndarray:
        """(total,) query for :meth:`index_rows`: one sound's vectors, weighted by ``weights``.

        Example:
            >>> rng = np.random.default_rng(0)
            >>> embeddings = rng.random((20, 8), dtype=np.float32)
            >>> descriptors = rng.standard_normal((20, len(FEATURE_NAMES))).astype(np.float32)
            >>> space = SimilaritySpace().fit(embeddings, descriptors)
            >>> rows = space.index_rows(embeddings, descriptors)
            >>> query = space.query_row(embeddings[0], descriptors[0], {"envelope": 1.0})
            >>> round(float(query @ rows[0]), 3)  # a sound is fully similar to itself
            1.0
        """
        transformed = self.transform(np.asarray(embedding)[None], np.asarray(descriptors)[None])[0]
        return self.weighted_query(transformed, weights)

    def weighted_query(self, transformed: np.ndarray,
                       weights: Mapping[str, float] | None = None) -> np.ndarray:
        """:meth:`query_row` of a query already :meth:`transform`-ed (one transform serves
        the index search and the hits' per-aspect cosines)."""
        scale = np.sqrt(self.query_weights(DEFAULT_WEIGHTS))
        return transformed * self.query_weights(weights) / scale

    def aspect_cosines(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(n, aspects) cosine per aspect between one :meth:`transform`-ed query and (n, total)
        :meth:`transform`-ed rows, columns in :data:`ASPECT_NAMES` order."""
        return np.stack([rows[:, columns] @ query[columns] for columns in self.slices.values()],
                        axis=1)

    # ----------------------------------------------------------------------- persistence
    @property
    def _cnn_width(self) -> int:
        self._require_fitted()
        return int(self._cnn_width_value)

    def _require_fitted(self) -> None:
        if self._descriptor_mean is None:
            raise ParameterError("this SimilaritySpace is not fitted yet: call fit() first")

    def to_stored(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Header fields and arrays for :func:`~soundslike_nb.sidecar.write_stored`."""
        self._require_fitted()
        header = {"format": FORMAT_VERSION, "options": self.options, "n_fitted": self.n_fitted,
                  "fitted_shrinkage": self.fitted_shrinkage, "cnn_width": self._cnn_width,
                  "features": list(FEATURE_NAMES)}
        arrays = {"descriptor_mean": self._descriptor_mean,
                  "descriptor_scale": self._descriptor_scale}
        if self._cnn_projection is not None:
            arrays.update(cnn_mean=self._cnn_mean, cnn_projection=self._cnn_projection)
        return header, arrays

    @classmethod
    def from_stored(cls, stored) -> SimilaritySpace:
        """The space held by a :class:`~soundslike_nb.sidecar.StoredFile`; ``ValueError`` when
        it is not one this version reads."""
        header = stored.header
        if header.get("format") != FORMAT_VERSION:
            raise ValueError(f"similarity space format {header.get('format')!r}, this version "
                             f"reads {FORMAT_VERSION}")
        if header["options"]["descriptors"] != DESCRIPTOR_VERSION:
            raise ValueError(f"fitted on descriptors version {header['options']['descriptors']!r}"
                             f", this version computes {DESCRIPTOR_VERSION}")
        arrays = {name: np.array(value) for name, value in stored.arrays.items()}
        space = cls(cnn=header["options"]["cnn"], shrinkage=header["options"]["shrinkage"],
                    cnn_dims=header["options"].get("cnn_dims"))  # absent: all (written before)
        space._restore(header, arrays)
        return space

    def _restore(self, header: dict, arrays: dict[str, np.ndarray]) -> None:
        """Take the fitted state of :meth:`to_stored`'s output."""
        self.n_fitted = header["n_fitted"]
        self.fitted_shrinkage = header["fitted_shrinkage"]
        self._cnn_width_value = header["cnn_width"]
        self._descriptor_mean = arrays["descriptor_mean"]
        self._descriptor_scale = arrays["descriptor_scale"]
        self._cnn_mean = arrays.get("cnn_mean")
        self._cnn_projection = arrays.get("cnn_projection")

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted space to one file, atomically (no pickle).

        Example:
            >>> space.save(tmp_path / "lib.parquet.space")  # doctest: +SKIP
        """
        from .sidecar import save_file

        save_file(path, "space", self.to_stored())

    @classmethod
    def load(cls, path: str | os.PathLike) -> SimilaritySpace:
        """Read a space written by :meth:`save` (no pickle is executed)."""
        from .sidecar import load_file

        return load_file(path, "space", cls.from_stored, mmap=False)
