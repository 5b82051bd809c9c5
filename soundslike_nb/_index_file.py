"""The index file of a :class:`~soundslike_nb.index.SoundIndex`: the vectors (exact) or the faiss
index (IVF), then the arrays of ``_SAVED_ARRAYS``, a JSON header, and a 16-byte trailer giving the
header's offset and a magic number. Exact vectors are memory-mapped when read back.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import LibraryError

if TYPE_CHECKING:
    from .index import SoundIndex

FORMAT = 1
_MAGIC = b"SLNBIDX1"
_SAVED_ARRAYS = ("_order", "_durations", "_list_keys")


def write(index: SoundIndex, tmp: str) -> None:
    """Write ``index`` to the file ``tmp``: its vectors (or faiss index), arrays, JSON header."""
    if index._kind == "ivf":
        import faiss

        faiss.write_index(index._faiss, tmp)
    else:
        with open(tmp, "wb") as file:
            file.write(_raw_bytes(index._vectors))
    with open(tmp, "ab") as file:
        header: dict[str, Any] = {
            "format": FORMAT, "key": index.key, "kind": index._kind, "rows": index._n_rows,
            "dimension": index._dimension, "valid": index._n_valid,
            "scan_budget": index._scan_budget, "arrays": {},
        }  # fmt: skip
        for name in _SAVED_ARRAYS:
            array = np.ascontiguousarray(getattr(index, name))
            header["arrays"][name] = [file.tell(), array.dtype.str, len(array)]
            file.write(_raw_bytes(array))
        header_offset = file.tell()
        file.write(json.dumps(header).encode())
        file.write(struct.pack("<Q8s", header_offset, _MAGIC))


def read(cls: type[SoundIndex], path: Path, *, key: str, mmap: bool) -> SoundIndex | None:
    """The index saved at ``path``; None when absent or saved with another key or format."""
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - 16))
            header_offset, magic = struct.unpack("<Q8s", file.read(16).rjust(16, b"\0"))
            if magic != _MAGIC or header_offset > size - 16:
                raise ValueError("not a soundslike_nb index file")
            file.seek(header_offset)
            header = json.loads(file.read(size - 16 - header_offset))
        if header["format"] != FORMAT or header["key"] != key:
            return None
        if header["kind"] not in ("exact", "ivf"):
            raise ValueError(f"unknown kind {header['kind']!r}")
        index = cls.__new__(cls)
        for name in _SAVED_ARRAYS:
            offset, dtype, count = header["arrays"][name]
            setattr(index, name, np.fromfile(path, dtype=dtype, count=count, offset=offset))
        index.key, index._kind = header["key"], header["kind"]
        index._n_rows, index._dimension = header["rows"], header["dimension"]
        index._scan_budget, index._positions_cache = header["scan_budget"], None
        index._vectors, index._faiss = None, None
        shape = (header["valid"], header["dimension"])
        if index._kind == "ivf":
            import faiss

            index._faiss = faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mmap else 0)
        elif mmap and shape[0] > 0:
            index._vectors = np.memmap(path, np.float32, mode="r", shape=shape)
        else:
            index._vectors = np.fromfile(path, np.float32, shape[0] * shape[1]).reshape(shape)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise LibraryError(f"{str(path)!r}: cannot read index ({exc})") from exc
    return index


def _raw_bytes(array: np.ndarray):
    """The array's bytes without a copy (an empty array, e.g. an empty library's, has none)."""
    array = np.ascontiguousarray(array)
    return memoryview(array).cast("B") if array.size else b""
