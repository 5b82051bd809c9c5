"""Atomic file replacement: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside ``target``; on success it is fsynced and renamed over it.

    On any exception the temporary file is removed and ``target`` is untouched.

    Example:
        >>> with atomic_path("lib.parquet") as temporary:  # doctest: +SKIP
        ...     write_everything_to(temporary)
    """
    target = os.path.abspath(os.fspath(target))
    folder = os.path.dirname(target)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(handle)
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(temporary, _default_mode())  # mkstemp makes 0600; these files are shared
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def _default_mode() -> int:
    """0666 less the process umask: what ``open`` would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_folder(folder: str) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some filesystems cannot fsync a folder; the rename is still atomic
    finally:
        os.close(descriptor)
