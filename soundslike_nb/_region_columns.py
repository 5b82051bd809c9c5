"""A library file's regions as Parquet list columns (one list per file row: its regions in time
order), and the bookkeeping that keeps regions with their rows when rows are reordered, dropped
or joined.

Stored with their rows, a file's regions travel with it through everything a build does to rows
(kept, moved, resumed from a checkpoint, sorted) and the whole library stays one atomic file.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .regions import Regions

__all__ = ["REGION_COLUMNS", "concat_regions", "read_regions", "region_arrays", "take_regions"]

#: The list columns, in file order (descriptors only when the library has them).
REGION_COLUMNS = ("region_start", "region_end", "region_embedding", "region_descriptors")


def take_regions(regions: Regions, positions: np.ndarray, *, rows: int) -> Regions:
    """The regions of rows ``positions`` (a boolean mask or distinct positions, into ``rows``
    rows), owners renumbered to the new order, each file's regions still in time order.

    Example:
        >>> regions = Regions(np.array([0, 2, 2]), np.array([[0., 1], [0, 1], [1, 2]]),
        ...                   np.zeros((3, 4), np.float32), None)
        >>> take_regions(regions, np.array([2, 0]), rows=3).owners.tolist()
        [0, 0, 1]
    """
    positions = np.asarray(positions)
    if positions.dtype == bool:
        positions = np.flatnonzero(positions)
    new_of_old = np.full(rows, -1, np.int64)
    new_of_old[positions.astype(np.int64)] = np.arange(len(positions))
    owners = new_of_old[regions.owners] if len(regions) else np.zeros(0, np.int64)
    picked = np.flatnonzero(owners >= 0)
    picked = picked[np.argsort(owners[picked], kind="stable")]
    return Regions(owners[picked], regions.spans_s[picked], regions.embeddings[picked],
                   None if regions.descriptors is None else regions.descriptors[picked])


def concat_regions(parts: Sequence[Regions | None], row_counts: Sequence[int], *,
                   dimension: int, describes: bool) -> Regions | None:
    """The regions of tables joined one after another (``row_counts`` rows each); ``None``
    when no part has regions (a part without them contributes none).

    Example:
        >>> one = Regions(np.array([0]), np.array([[0., 1]]), np.zeros((1, 4), np.float32), None)
        >>> concat_regions([one, None, one], [1, 2, 1], dimension=4, describes=False).owners
        array([0, 3])
    """
    if all(part is None for part in parts):
        return None
    starts = np.concatenate([[0], np.cumsum(row_counts)[:-1]]).astype(np.int64)
    shifted = [Regions(part.owners + start, part.spans_s, part.embeddings,
                       part.descriptors if describes else None)
               for part, start in zip(parts, starts) if part is not None and len(part)]
    from .descriptors import FEATURE_NAMES

    return Regions.concat(shifted, dimension=dimension, describes=describes,
                          descriptor_count=len(FEATURE_NAMES))


def region_arrays(regions: Regions, rows: int) -> dict[str, object]:
    """The list columns of ``regions`` for a table of ``rows`` rows (Arrow arrays by name)."""
    import pyarrow as pa

    counts = np.bincount(regions.owners, minlength=rows) if len(regions) else np.zeros(rows)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    spans = np.ascontiguousarray(regions.spans_s, dtype=np.float64).reshape(-1, 2)
    columns = {"region_start": pa.array(spans[:, 0]), "region_end": pa.array(spans[:, 1])}
    matrices = {"region_embedding": regions.embeddings}
    if regions.descriptors is not None:
        matrices["region_descriptors"] = regions.descriptors
    for name, matrix in matrices.items():
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        columns[name] = pa.FixedSizeListArray.from_arrays(
            pa.array(matrix.reshape(-1)), type=pa.list_(
                pa.field("item", pa.float32(), nullable=False), matrix.shape[1]))
    return {name: pa.ListArray.from_arrays(offsets, values) for name, values in columns.items()}


def read_regions(parquet, *, dimension: int) -> Regions | None:
    """The regions of an open ``pyarrow.parquet.ParquetFile`` (``None`` in a file written
    without regions). Raises Arrow's errors for a damaged file (the caller names it)."""
    names = parquet.schema_arrow.names
    if "region_start" not in names:
        return None
    wanted = [name for name in REGION_COLUMNS if name in names]
    table = parquet.read(columns=wanted)
    columns = {name: table.column(name).combine_chunks() for name in wanted}
    starts = columns["region_start"]
    offsets = np.asarray(starts.offsets)
    owners = np.repeat(np.arange(len(starts), dtype=np.int64), np.diff(offsets))
    spans = np.stack([np.asarray(starts.flatten(), np.float64),
                      np.asarray(columns["region_end"].flatten(), np.float64)], axis=1)

    def matrix(name: str) -> np.ndarray:
        values = columns[name].flatten()
        width = values.type.list_size
        return np.asarray(values.flatten(), np.float32).reshape(-1, width)

    embeddings = (matrix("region_embedding") if len(owners)
                  else np.zeros((0, dimension), np.float32))
    descriptors = None
    if "region_descriptors" in columns:
        from .descriptors import FEATURE_NAMES

        descriptors = (matrix("region_descriptors") if len(owners)
                       else np.zeros((0, len(FEATURE_NAMES)), np.float32))
    return Regions(owners, spans.reshape(-1, 2), embeddings, descriptors)
