"""Files moved or renamed unchanged: recognised by their content digest, so that a build keeps
their row (vectors and tags) under the new path instead of analysing them as new sounds.

A row's digest is the first 16 bytes of its file's SHA-256, taken when the file is analysed (the
file was just decoded, so it is usually read again from the page cache). A new path is hashed
only when a row that vanished has the same size: a rescan of an unchanged library hashes nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .libfile import DIGEST_BYTES, LibraryTable
from .scan import FileEntry, display_name

__all__ = ["digests_of", "file_digest", "find_moves"]

_BLOCK_BYTES = 1 << 20
_NO_DIGEST = b""


def file_digest(path: str) -> bytes:
    """The first 16 bytes of the file's SHA-256; ``b""`` when it cannot be read.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile() as stream:
        ...     _ = stream.write(b"abc"); stream.flush()
        ...     file_digest(stream.name).hex()
        'ba7816bf8f01cfea414140de5dae2223'
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(_BLOCK_BYTES), b""):
                digest.update(block)
    except OSError:
        return _NO_DIGEST
    return digest.digest()[:DIGEST_BYTES]


def digests_of(paths: Sequence[str]) -> np.ndarray:
    """:func:`file_digest` of each path (two threads: hashlib releases the GIL), as ``S16``."""
    paths = list(paths)
    if len(paths) <= 1:
        found = [file_digest(path) for path in paths]
    else:
        with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
            found = list(pool.map(file_digest, paths))
    return np.array(found, dtype=f"S{DIGEST_BYTES}")


def find_moves(gone: LibraryTable, new_files: Sequence[FileEntry]
               ) -> tuple[LibraryTable, dict[str, str]]:
    """Rows of ``gone`` (their files vanished) that reappear unchanged as one of ``new_files``:
    the rows under their new path, name and mtime (vectors and tags kept), and new path → old.

    Only new files of the size of a vanished row that has a digest are hashed; each vanished row
    moves to one new file at most (the first by path; another copy is analysed as new).
    """
    known = gone.digests != _NO_DIGEST
    sizes = set(gone.rows["size"].to_numpy()[known].tolist())
    candidates = [entry for entry in new_files if entry.size in sizes]
    moved_from: dict[str, str] = {}
    if not candidates:
        return gone.subset(np.zeros(len(gone.rows), dtype=bool)), moved_from
    by_digest: dict[tuple[bytes, int], list[int]] = {}
    for position in np.flatnonzero(known):
        key = (bytes(gone.digests[position]), int(gone.rows["size"].iloc[position]))
        by_digest.setdefault(key, []).append(int(position))
    positions, entries = [], []
    for entry, digest in zip(candidates, digests_of([entry.path for entry in candidates])):
        waiting = by_digest.get((bytes(digest), entry.size))
        if digest != _NO_DIGEST and waiting:
            positions.append(waiting.pop(0))
            entries.append(entry)
    moved = gone.subset(np.asarray(positions, dtype=np.int64))
    for position, entry in enumerate(entries):
        moved_from[entry.path] = moved.rows.at[position, "path"]
    rows = moved.rows.copy()
    rows["path"] = [entry.path for entry in entries]
    rows["name"] = [display_name(entry.path) for entry in entries]
    rows["mtime"] = [entry.mtime for entry in entries]
    moved.rows = rows.astype(gone.rows.dtypes.to_dict())
    return moved, moved_from
