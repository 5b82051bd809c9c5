"""SHA-256 of files and bytes: the one checksum weights and downloads are checked with.

Standard library only, so that scripts and ``import soundslike_nb`` can use it cheaply.

Example:
    >>> sha256_bytes(b"")
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["sha256_bytes", "sha256_file"]

_BLOCK_BYTES = 1 << 20  # 1 MiB: a large file is streamed, never read whole


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """The hex SHA-256 digest of ``data``.

    Example:
        >>> sha256_bytes(b"abc")
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    """
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """The hex SHA-256 digest of the file at ``path``, read in 1 MiB blocks.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "abc.txt")
        ...     with open(path, "wb") as stream:
        ...         _ = stream.write(b"abc")
        ...     sha256_file(path) == sha256_bytes(b"abc")
        True
    """
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()
