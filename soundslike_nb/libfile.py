"""The library file: Parquet with one row per sound and its provenance in the file metadata.

Reading and writing only; what a library *means* lives in ``library.py``. Writes are atomic
(a temporary file beside the target, fsynced, then ``os.replace``), so a crash never leaves a
half-written library where a good one was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._atomic import atomic_path
from ._region_columns import concat_regions, read_regions, region_arrays, take_regions
from .descriptors import DESCRIPTOR_VERSION, FEATURE_NAMES
from .errors import LibraryError
from .regions import Regions

__all__ = ["FORMAT_VERSION", "LibraryTable", "concat_tables", "current_descriptors", "empty_tags",
           "read_table", "read_tags", "write_table"]

#: Bumped when the columns or the metadata change in a way older readers cannot follow.
FORMAT_VERSION = 1
_METADATA_KEY = b"soundslike_nb"
_ROW_GROUP_ROWS = 32_768
#: Bytes of a row's content digest (the first 16 of the file's SHA-256).
DIGEST_BYTES = 16

#: Columns besides ``embedding``, with their dtypes, in file order.
ROW_COLUMNS: dict[str, str] = {
    "name": "string",
    "path": "string",
    "duration": "float64",
    "sample_rate": "int32",
    "channels": "int16",
    "frames": "int64",
    "size": "int64",
    "mtime": "float64",
}


@dataclass
class LibraryTable:
    """What a library file holds: row metadata, the embedding matrix, provenance, and the
    descriptor matrix (``None`` in files written before descriptors existed), and the waveform
    thumbnails (``None`` in files written before they existed; an all-zero row is a sound that
    has none, e.g. one carried over from such a file).

    ``tags`` is an object array with one tuple of labels per row (``None`` given: all empty, as
    in files written before tags existed); ``digests`` is an ``S16`` array with the first 16 bytes
    of each file's SHA-256 (``b""``: not known, as in files written before digests existed), what
    tells a file moved or renamed unchanged.

    ``regions`` are the regions of the long files (:class:`~soundslike_nb.regions.Regions`,
    owners index the rows, in row then time order): ``None`` in a library analysed without
    regions."""

    rows: pd.DataFrame
    embeddings: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)
    descriptors: np.ndarray | None = None
    thumbnails: np.ndarray | None = None
    tags: np.ndarray | None = None
    digests: np.ndarray | None = None
    regions: Regions | None = None

    def __post_init__(self) -> None:
        if len(self.rows) != len(self.embeddings):
            raise LibraryError(
                f"{len(self.rows)} rows but {len(self.embeddings)} embeddings: they must match"
            )
        self.tags = empty_tags(len(self.rows)) if self.tags is None else self.tags
        self.digests = (np.zeros(len(self.rows), f"S{DIGEST_BYTES}") if self.digests is None
                        else np.asarray(self.digests, f"S{DIGEST_BYTES}"))
        if len(self.tags) != len(self.rows) or len(self.digests) != len(self.rows):
            raise LibraryError(f"{len(self.rows)} rows but {len(self.tags)} tag lists and "
                               f"{len(self.digests)} digests: they must match")
        if self.descriptors is not None and (
                self.descriptors.ndim != 2 or len(self.descriptors) != len(self.rows)):
            raise LibraryError(f"{len(self.rows)} rows but descriptors of shape "
                               f"{self.descriptors.shape}: they must match")
        if self.thumbnails is not None and (
                self.thumbnails.ndim != 2 or len(self.thumbnails) != len(self.rows)):
            raise LibraryError(f"{len(self.rows)} rows but thumbnails of shape "
                               f"{self.thumbnails.shape}: they must match")
        owners = None if self.regions is None else self.regions.owners
        if owners is not None and len(owners) and (
                owners.min() < 0 or owners.max() >= len(self.rows)
                or (np.diff(owners) < 0).any()):
            raise LibraryError(f"regions must belong to the {len(self.rows)} rows, in row "
                               "order")

    def subset(self, keep: np.ndarray) -> LibraryTable:
        """The rows ``keep`` selects (a boolean mask or positions), with their vectors."""
        keep = np.asarray(keep)
        return LibraryTable(self.rows.iloc[keep].reset_index(drop=True), self.embeddings[keep],
                            self.provenance,
                            None if self.descriptors is None else self.descriptors[keep],
                            None if self.thumbnails is None else self.thumbnails[keep],
                            self.tags[keep], self.digests[keep],
                            None if self.regions is None else
                            take_regions(self.regions, keep, rows=len(self.rows)))


def empty_tags(count: int) -> np.ndarray:
    """``count`` rows without labels: an object array of empty tuples.

    Example:
        >>> empty_tags(2)
        array([(), ()], dtype=object)
    """
    tags = np.empty(count, dtype=object)
    tags[:] = [()] * count
    return tags


def current_descriptors(table: LibraryTable) -> np.ndarray | None:
    """The table's descriptors if this version computes the same ones, else ``None`` (stale:
    the library is searched by its embedding alone until it is indexed again)."""
    stored = table.provenance.get("descriptors") or {}
    if (table.descriptors is None or stored.get("version") != DESCRIPTOR_VERSION
            or table.descriptors.shape[1] != len(FEATURE_NAMES)):
        return None
    return table.descriptors


def concat_tables(tables: Sequence[LibraryTable], *, empty: LibraryTable) -> LibraryTable:
    """The rows of ``tables`` one after another, with their vectors (``empty`` when none has
    rows); the provenance is left empty: a caller writes its own."""
    tables = [table for table in tables if len(table.rows)]
    if not tables:
        return empty
    descriptors = [table.descriptors for table in tables]
    thumbnails = None
    widths = [table.thumbnails.shape[1] for table in tables if table.thumbnails is not None]
    if widths:  # a part without thumbnails gets all-zero ones ("none")
        thumbnails = np.concatenate([
            table.thumbnails if table.thumbnails is not None
            else np.zeros((len(table.rows), widths[0]), np.uint8) for table in tables])
    return LibraryTable(
        pd.concat([table.rows for table in tables], ignore_index=True),
        np.concatenate([table.embeddings for table in tables]).astype(np.float32, copy=False),
        descriptors=(None if any(part is None for part in descriptors) else
                     np.concatenate(descriptors).astype(np.float32, copy=False)),
        thumbnails=thumbnails,
        tags=np.concatenate([table.tags for table in tables]),
        digests=np.concatenate([table.digests for table in tables]),
        regions=concat_regions([table.regions for table in tables],
                               [len(table.rows) for table in tables],
                               dimension=tables[0].embeddings.shape[1],
                               describes=not any(part is None for part in descriptors)))


def empty_rows() -> pd.DataFrame:
    """A zero-row frame with the library's columns and dtypes."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in ROW_COLUMNS.items()})


def write_table(table: LibraryTable, path: str | os.PathLike) -> None:
    """Write a library file atomically: readers see the old file or the new one, never half.

    Example:
        >>> write_table(LibraryTable(empty_rows(), np.zeros((0, 4), np.float32)),  # doctest: +SKIP
        ...             "x.parquet")
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise LibraryError(f"{target!r}: folder {folder!r} does not exist")
    embeddings = np.ascontiguousarray(table.embeddings, dtype=np.float32)
    if embeddings.ndim != 2:
        raise LibraryError(f"embeddings must be 2-D (rows, dimension), got {embeddings.shape}")
    rows = table.rows.reset_index(drop=True)
    arrays = [pa.array(rows[name].to_numpy(), type=_arrow_type(dtype)) for name, dtype in
              ROW_COLUMNS.items()]
    matrices = {"embedding": embeddings}
    if table.descriptors is not None:
        matrices["descriptors"] = np.ascontiguousarray(table.descriptors, dtype=np.float32)
    if table.thumbnails is not None:
        matrices["thumbnail"] = np.ascontiguousarray(table.thumbnails, dtype=np.uint8)
    digests = np.ascontiguousarray(table.digests, f"S{DIGEST_BYTES}")
    arrays += [_tags_array(table.tags),
               pa.FixedSizeBinaryArray.from_buffers(pa.binary(DIGEST_BYTES), len(digests),
                                                    [None, pa.py_buffer(digests.tobytes())])]
    for matrix in matrices.values():
        arrays.append(pa.FixedSizeListArray.from_arrays(
            pa.array(matrix.reshape(-1)), type=_vector_type(matrix.shape[1], matrix.dtype)))
    regions = ({} if table.regions is None
               else region_arrays(table.regions, len(rows)))
    arrays += list(regions.values())
    provenance = dict(table.provenance, format_version=FORMAT_VERSION)
    schema = pa.schema(
        [pa.field(name, _arrow_type(dtype)) for name, dtype in ROW_COLUMNS.items()]
        + [pa.field("tags", pa.list_(pa.string()), nullable=False),
           pa.field("digest", pa.binary(DIGEST_BYTES), nullable=False)]
        # Vectors are never null: without definition levels they read ~25 % faster.
        + [pa.field(name, _vector_type(matrix.shape[1], matrix.dtype), nullable=False)
           for name, matrix in matrices.items()]
        + [pa.field(name, array.type, nullable=False) for name, array in regions.items()],
        metadata={_METADATA_KEY: json.dumps(provenance).encode()},
    )
    arrow_table = pa.Table.from_arrays(arrays, schema=schema)
    with atomic_path(target, suffix=".parquet") as temporary:
        # Float vectors barely compress; storing them plain makes a 1M-row library load fast.
        pq.write_table(
            arrow_table,
            temporary,
            compression={**{name: "zstd" for name in (*ROW_COLUMNS, "tags")}, "digest": "none",
                         # thumbnails are small and compress; float vectors barely do
                         **{name: "zstd" if name == "thumbnail" else "none"
                            for name in matrices},
                         **{name: "zstd" if name in ("region_start", "region_end") else "none"
                            for name in regions}},
            use_dictionary=["name"],
            write_statistics=["duration", "mtime", "size"],
            # Row groups decode in parallel; one group of 1M list rows takes 11 s to read on
            # 2 cores, groups of 32k rows 1.6 s (measured).
            row_group_size=_ROW_GROUP_ROWS,
        )


def read_table(path: str | os.PathLike) -> LibraryTable:
    """Read a library file written by :func:`write_table`.

    Example:
        >>> table = read_table("demo.parquet")  # doctest: +SKIP
        >>> table.embeddings.shape  # doctest: +SKIP
        (72, 512)
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = os.fspath(path)
    if not os.path.exists(source):
        raise LibraryError(f"{source!r}: no such library file")
    if os.path.isdir(source):
        raise LibraryError(f"{source!r}: is a directory, not a library file")
    try:
        parquet = pq.ParquetFile(source, memory_map=True)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise LibraryError(f"{source!r}: not a readable Parquet library ({exc})") from None
    metadata = schema.metadata or {}
    if _METADATA_KEY not in metadata:
        raise LibraryError(f"{source!r}: a Parquet file, but not a soundslike_nb library")
    provenance = json.loads(metadata[_METADATA_KEY])
    version = provenance.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise LibraryError(
            f"{source!r}: library format version {version!r}; this soundslike_nb reads up to "
            f"{FORMAT_VERSION} (upgrade soundslike_nb)"
        )
    missing = [name for name in (*ROW_COLUMNS, "embedding") if name not in schema.names]
    if missing:
        raise LibraryError(f"{source!r}: library file lacks columns {missing}")
    try:
        rows = parquet.read(columns=list(ROW_COLUMNS)).to_pandas()
        embeddings = _read_matrix(source, parquet, "embedding")
        descriptors = (_read_matrix(source, parquet, "descriptors")
                       if "descriptors" in schema.names else None)
        thumbnails = (_read_matrix(source, parquet, "thumbnail", dtype=np.uint8)
                      if "thumbnail" in schema.names else None)
        tags, digests = _read_tags_and_digests(source, parquet)
        regions = read_regions(parquet, dimension=embeddings.shape[1])
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise LibraryError(f"{source!r}: cannot read the library ({exc})") from None
    for name, dtype in ROW_COLUMNS.items():
        rows[name] = rows[name].astype(dtype)
    return LibraryTable(rows=rows, embeddings=embeddings, provenance=provenance,
                        descriptors=descriptors, thumbnails=thumbnails, tags=tags,
                        digests=digests, regions=regions)


def read_tags(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Only ``(paths, tags, digests)`` of a library file: what a writer merges tags from
    without reading the vectors.

    Example:
        >>> paths, tags, digests = read_tags("demo.parquet")  # doctest: +SKIP
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = os.fspath(path)
    try:
        parquet = pq.ParquetFile(source, memory_map=True)
        paths = parquet.read(columns=["path"]).column(0).to_numpy(zero_copy_only=False)
        tags, digests = _read_tags_and_digests(source, parquet)
    except (pa.ArrowException, OSError) as exc:
        raise LibraryError(f"{source!r}: cannot read the library's tags ({exc})") from None
    count = len(paths)
    return (paths.astype(object), empty_tags(count) if tags is None else tags,
            np.zeros(count, f"S{DIGEST_BYTES}") if digests is None else digests)


def _tags_array(tags: np.ndarray):
    """One Arrow list of strings per row, built from the rows that have labels only (most have
    none: 1M rows take ~0.3 s, against 2 s through ``pa.array``)."""
    import pyarrow as pa

    lengths = np.zeros(len(tags), np.int32)
    labelled = np.flatnonzero(np.frompyfunc(len, 1, 1)(tags).astype(bool)) if len(tags) else []
    lengths[labelled] = [len(tags[position]) for position in labelled]
    offsets = np.zeros(len(tags) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = pa.array([label for position in labelled for label in tags[position]], pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _read_tags_and_digests(source: str, parquet) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The ``tags`` and ``digest`` columns (``None`` each in a file written before it)."""
    import pyarrow as pa

    names = parquet.schema_arrow.names
    tags = digests = None
    if "tags" in names:
        column = parquet.read(columns=["tags"]).column(0).combine_chunks()
        if not pa.types.is_list(column.type) or not pa.types.is_string(column.type.value_type):
            raise LibraryError(f"{source!r}: column 'tags' must be lists of strings, got "
                               f"{column.type}")
        offsets = column.offsets.to_numpy()
        values = column.values.to_pylist()
        tags = empty_tags(len(column))
        for position in np.flatnonzero(np.diff(offsets)):
            tags[position] = tuple(values[offsets[position]:offsets[position + 1]])
    if "digest" in names:
        column = parquet.read(columns=["digest"]).column(0).combine_chunks()
        if column.type != pa.binary(DIGEST_BYTES):
            raise LibraryError(f"{source!r}: column 'digest' must be {DIGEST_BYTES}-byte binary, "
                               f"got {column.type}")
        digests = np.frombuffer(column.buffers()[1], f"S{DIGEST_BYTES}",
                                count=len(column) + column.offset)[column.offset:].copy()
    return tags, digests


def _read_matrix(source: str, parquet, column: str, *, dtype=np.float32) -> np.ndarray:
    """A fixed-size-list column of floats (or of ``dtype`` integers) as one (rows, width)
    ``dtype`` matrix.

    Row groups are decoded in parallel threads, each straight into its slice of the matrix: no
    whole-column Arrow copy is ever held (1M x 512 reads in ~1.2 s on 2 cores, measured).
    """
    import threading

    import pyarrow as pa
    import pyarrow.parquet as pq

    kind = parquet.schema_arrow.field(column).type
    wanted = pa.types.is_floating if np.dtype(dtype).kind == "f" else pa.types.is_integer
    if not pa.types.is_fixed_size_list(kind) or not wanted(kind.value_type):
        what = "floats" if np.dtype(dtype).kind == "f" else "integers"
        raise LibraryError(f"{source!r}: column {column!r} must be a fixed-size list of {what}, "
                           f"got {kind}")
    width = kind.list_size
    metadata = parquet.metadata
    counts = [metadata.row_group(group).num_rows for group in range(metadata.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    matrix = np.empty((int(starts[-1]), width), dtype=dtype)
    local = threading.local()

    def read(group: int) -> None:
        if not hasattr(local, "file"):  # one reader per thread; Arrow releases the GIL
            local.file = pq.ParquetFile(source, memory_map=True)
        chunks = local.file.read_row_group(group, columns=[column], use_threads=False)
        start = starts[group]
        for chunk in chunks.column(0).chunks:
            values = chunk.flatten().to_numpy(zero_copy_only=False)
            if values.size != len(chunk) * width:
                raise LibraryError(f"{source!r}: column {column!r} has missing values")
            matrix[start:start + len(chunk)] = values.reshape(-1, width)
            start += len(chunk)

    if len(counts) <= 1:
        for group in range(len(counts)):
            read(group)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(len(counts), os.cpu_count() or 1, 8)) as pool:
            list(pool.map(read, range(len(counts))))
    return matrix


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """Only the provenance of a library file (reads the footer, not the data)."""
    import pyarrow.parquet as pq

    metadata = pq.read_schema(os.fspath(path)).metadata or {}
    if _METADATA_KEY not in metadata:
        raise LibraryError(f"{os.fspath(path)!r}: not a soundslike_nb library")
    return json.loads(metadata[_METADATA_KEY])


def _vector_type(width: int, dtype=np.float32):
    import pyarrow as pa

    item = pa.uint8() if np.dtype(dtype) == np.uint8 else pa.float32()
    return pa.list_(pa.field("item", item, nullable=False), width)


def _arrow_type(dtype: str):
    import pyarrow as pa

    return {"string": pa.string(), "float64": pa.float64(), "int32": pa.int32(),
            "int16": pa.int16(), "int64": pa.int64()}[dtype]
