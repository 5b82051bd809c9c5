"""The one store for what a library derives from its file and keeps beside it.

The similarity space (``LIB.parquet.space``), the search index (``LIB.parquet.index``) and the map
(``LIB.parquet.map``) are caches: each can be recomputed from the library file. They share

- **one key scheme**: :func:`sidecar_key` of the library's content (:func:`content_key`), the
  options that decide the derived object, and its format version;
- **one file format**: named arrays (raw, 64-byte aligned, memory-mapped when read back), then a
  JSON header, then a 16-byte trailer (the header's offset and a magic number);
- **one way of writing**: atomically (a temporary file beside the target, renamed over it);
- **one rule on failure**: a file that is missing, stale, foreign or unreadable, and a folder
  that is read-only or full, are a cache miss, logged; never a failed search.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from ._atomic import atomic_path
from .errors import LibraryError

__all__ = ["SidecarStore", "StoredFile", "content_key", "load_file", "read_stored", "save_file",
           "sidecar_key", "write_stored"]

_log = logging.getLogger(__name__)
T = TypeVar("T")

CONTAINER_FORMAT = 1
_MAGIC = b"SLNBSIDE"
_TRAILER = struct.Struct("<Q8s")
_ALIGN = 64
_HASH_BLOCK_BYTES = 1 << 26


class _NotASidecar(ValueError):
    """A file without this format's trailer: another version's cache, or not one at all."""


def content_key(*arrays: Any) -> str:
    """A SHA-256 hex key of every byte of ``arrays`` (as float32, shapes included); ``None``
    entries count as absent. Blocks are hashed in parallel threads, then their digests.

    Example:
        >>> key = content_key(np.ones((2, 4)), np.array([1.0, 2.0]))
        >>> len(key), key == content_key(np.ones((2, 4), np.float32), [1.0, 2.0])
        (64, True)
        >>> content_key(np.ones((2, 4))) == content_key(np.ones((2, 4)), None)
        True
    """
    digest = hashlib.sha256(b"soundslike content 1;")
    for array in arrays:
        if array is None:
            continue
        matrix = np.asarray(array)
        matrix = (matrix.reshape(len(matrix), int(np.prod(matrix.shape[1:])))
                  if matrix.ndim else matrix.reshape(1, 1))
        digest.update(f"{matrix.shape[0]}x{matrix.shape[1]};".encode())
        rows_per_block = max(1, _HASH_BLOCK_BYTES // (4 * max(1, matrix.shape[1])))

        def block_digest(start: int, matrix: np.ndarray = matrix, step: int = rows_per_block
                         ) -> bytes:
            block = np.ascontiguousarray(matrix[start:start + step], dtype=np.float32)
            return hashlib.sha256(memoryview(block).cast("B")).digest()

        starts = range(0, len(matrix), rows_per_block)
        if len(starts) > 1:
            with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
                digest.update(b"".join(pool.map(block_digest, starts)))
        else:
            digest.update(b"".join(map(block_digest, starts)))
    return digest.hexdigest()


def sidecar_key(kind: str, content: str, options: Mapping[str, Any], format_version: int) -> str:
    """The key a derived file is stored under: its kind, the library's content key, the options
    that decide it and its format version. Any change in one is a cache miss.

    Example:
        >>> key = sidecar_key("map", "abc", {"n_neighbors": 15}, 1)
        >>> key == sidecar_key("map", "abc", {"n_neighbors": 30}, 1)
        False
    """
    text = json.dumps({"kind": kind, "content": content, "options": dict(options),
                       "format": [CONTAINER_FORMAT, format_version]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class StoredFile:
    """A file read back by :func:`read_stored`: its header and its arrays (memory-mapped)."""

    path: str
    header: dict[str, Any]
    arrays: dict[str, np.ndarray]
    offsets: dict[str, int]


def write_stored(path: str | os.PathLike, header: Mapping[str, Any],
                 arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` then ``header`` to ``path`` atomically (see the module docstring).

    The first array starts at offset 0, so a blob that its own reader wants at the start of a
    file (a faiss index) can be read straight from ``path``.

    Example:
        >>> write_stored(tmp / "x.space", {"kind": "space"}, {"m": np.zeros(3)})  # doctest: +SKIP
    """
    with atomic_path(path, suffix=".sidecar") as temporary, open(temporary, "wb") as out:
        table = {}
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            padding = -out.tell() % _ALIGN
            out.write(b"\0" * padding)
            table[name] = [out.tell(), array.dtype.str, list(array.shape)]
            if array.size:
                out.write(memoryview(array).cast("B"))
        header_offset = out.tell()
        full = {**header, "container": CONTAINER_FORMAT, "arrays": table}
        out.write(json.dumps(full).encode())
        out.write(_TRAILER.pack(header_offset, _MAGIC))


def read_stored(path: str | os.PathLike, *, mmap: bool = True) -> StoredFile:
    """Read a file written by :func:`write_stored`; raises ``ValueError`` or ``OSError`` when it
    is not one (callers treat that as a cache miss).

    Example:
        >>> read_stored(tmp / "x.space").arrays["mean"]  # doctest: +SKIP
        memmap([0., 0., 0.])
    """
    source = os.fspath(path)
    with open(source, "rb") as file:
        size = file.seek(0, os.SEEK_END)
        if size < _TRAILER.size:
            raise _NotASidecar("too short to be a soundslike_nb sidecar file")
        file.seek(size - _TRAILER.size)
        header_offset, magic = _TRAILER.unpack(file.read(_TRAILER.size))
        if magic != _MAGIC:
            raise _NotASidecar("not a soundslike_nb sidecar file")
        if header_offset > size - _TRAILER.size:
            raise ValueError("its header offset runs past the end (a cut file?)")
        file.seek(header_offset)
        header = json.loads(file.read(size - _TRAILER.size - header_offset))
    if header.get("container") != CONTAINER_FORMAT:
        raise ValueError(f"sidecar container format {header.get('container')!r}")
    arrays, offsets = {}, {}
    for name, (offset, dtype, shape) in header.pop("arrays").items():
        count = int(np.prod(shape)) if shape else 1
        if offset + count * np.dtype(dtype).itemsize > header_offset:
            raise ValueError(f"array {name!r} runs past the end of the data")
        offsets[name] = offset
        if mmap and count:
            arrays[name] = np.memmap(source, dtype=dtype, mode="r", offset=offset,
                                     shape=tuple(shape))
        else:
            arrays[name] = np.fromfile(source, dtype=dtype, count=count,
                                       offset=offset).reshape(shape)
    return StoredFile(path=source, header=header, arrays=arrays, offsets=offsets)


def save_file(path: str | os.PathLike, kind: str,
              stored: tuple[Mapping[str, Any], Mapping[str, np.ndarray]]) -> None:
    """Write one derived object (``obj.to_stored()``) to a file of its own, atomically; a
    :class:`~soundslike_nb.errors.LibraryError` naming the file when it cannot be written.

    Example:
        >>> save_file(tmp / "lib.space", "space", space.to_stored())  # doctest: +SKIP
    """
    header, arrays = stored
    try:
        write_stored(path, {**header, "kind": kind}, arrays)
    except OSError as exc:
        raise LibraryError(f"{os.fspath(path)!r}: cannot write the {kind} ({exc})") from None


def load_file(path: str | os.PathLike, kind: str, read: Callable[[StoredFile], T], *,
              mmap: bool = True) -> T:
    """``read`` of a file written by :func:`save_file`; a
    :class:`~soundslike_nb.errors.LibraryError` naming the file when it is not one.

    Example:
        >>> load_file(tmp / "lib.space", "space", SimilaritySpace.from_stored)  # doctest: +SKIP
    """
    try:
        stored = read_stored(path, mmap=mmap)
        if stored.header.get("kind") != kind:
            raise ValueError(f"it holds a {stored.header.get('kind')!r}, not a {kind!r}")
        return read(stored)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise LibraryError(f"{os.fspath(path)!r}: cannot read the {kind} ({exc})") from None


class SidecarStore:
    """Derived files beside a library file ``LIB.parquet``: ``LIB.parquet.<kind>``.

    ``library_path=None`` (a library kept in memory) stores nothing: every load is a miss and
    every save a no-op.

    Example:
        >>> store = SidecarStore(None)
        >>> store.load("map", "key", read=lambda stored: stored) is None
        True
        >>> store.save("map", "key", {}, {})
        False
    """

    def __init__(self, library_path: str | os.PathLike | None) -> None:
        self.library_path = None if library_path is None else os.path.abspath(
            os.fspath(library_path))

    def __repr__(self) -> str:
        return f"SidecarStore({self.library_path!r})"

    def path(self, kind: str) -> str | None:
        """Where ``kind`` (``"space"``, ``"index"``, ``"map"``) lives, or ``None`` in memory."""
        return None if self.library_path is None else f"{self.library_path}.{kind}"

    def load(self, kind: str, key: str, read: Callable[[StoredFile], T], *,
             mmap: bool = True) -> T | None:
        """``read(stored)`` of the stored ``kind`` if it was saved under ``key``; ``None`` (a
        cache miss, logged when a file was there but could not be used) otherwise. ``read``
        raises ``ValueError``, ``KeyError`` or ``TypeError`` for content it cannot use."""
        path = self.path(kind)
        if path is None or not os.path.exists(path):
            return None
        try:
            stored = read_stored(path, mmap=mmap)
        except _NotASidecar:
            # Expected once after an upgrade (earlier versions wrote other formats): no alarm.
            _log.info("%s: not in this version's format, recomputing it", path)
            return None
        except (OSError, ValueError) as exc:
            _log.warning("%s: unreadable, recomputing it (%s)", path, exc)
            return None
        try:
            if stored.header.get("kind") != kind or stored.header.get("key") != key:
                _log.info("%s: made from other content or options, recomputing it", path)
                return None
            return read(stored)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            _log.warning("%s: unreadable, recomputing it (%s)", path, exc)
            return None

    def save(self, kind: str, key: str, header: Mapping[str, Any],
             arrays: Mapping[str, np.ndarray]) -> bool:
        """Store ``kind`` under ``key``, atomically; ``False`` (logged) when it could not be
        written (a read-only folder, a full disk): the caller goes on with what it computed."""
        path = self.path(kind)
        if path is None:
            return False
        try:
            write_stored(path, {**header, "kind": kind, "key": key}, arrays)
        except OSError as exc:
            _log.warning("%s: not saved, it will be recomputed next time (%s)", path,
                         exc.strerror or exc)
            return False
        return True
