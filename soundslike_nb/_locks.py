"""The two locks beside a library file, so that builds and tag edits never lose each other's work.

- ``.LIB.parquet.lock``, held for a whole build: one build at a time; a second waits, then starts
  from what the first wrote.
- ``.LIB.parquet.write.lock``, held only while a writer reads the current file, merges its change
  and replaces the file (a build's last step, a tag edit): seconds at most, so tagging in the
  notebook never waits for a build of hours, and neither loses the other's rows or labels.

A build takes the first, then the second; a tag edit only the second: no deadlock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from .errors import LibraryError

__all__ = ["build_lock", "write_lock"]

#: Seconds a writer waits for another's write (a rewrite of a 1M-row file takes a few seconds).
WRITE_WAIT_S = 300.0


@contextlib.contextmanager
def build_lock(target: str | None, *, progress: bool) -> Iterator[None]:
    """Hold ``.LIB.parquet.lock`` beside the library while building it (one build at a time).

    Example:
        >>> with build_lock(None, progress=False):  # an in-memory library: nothing to lock
        ...     pass
    """
    if target is None:
        yield
        return
    from filelock import Timeout

    def wait_for_the_other_build(lock) -> None:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if progress:
                print(f"{os.path.basename(target)}: another build is writing it; waiting for "
                      "it to finish", flush=True)
            lock.acquire()

    with _held(target, "lock", wait_for_the_other_build):
        yield


@contextlib.contextmanager
def write_lock(target: str, *, wait_s: float = WRITE_WAIT_S) -> Iterator[None]:
    """Hold ``.LIB.parquet.write.lock`` while reading, merging and replacing the library file.

    Example:
        >>> with write_lock("lib.parquet"):  # doctest: +SKIP
        ...     write_table(merged, "lib.parquet")
    """
    from filelock import Timeout

    def wait_at_most(lock) -> None:
        try:
            lock.acquire(timeout=wait_s)
        except Timeout:
            raise LibraryError(f"{target!r}: another process has been writing the library for "
                               f"{wait_s:.0f} s; try again") from None

    with _held(target, "write.lock", wait_at_most):
        yield


@contextlib.contextmanager
def _held(target: str, suffix: str, acquire: Callable[[Any], None]) -> Iterator[None]:
    """Hold the lock file ``.NAME.suffix`` beside ``target``, taken by ``acquire(lock)``; a
    lock that cannot be made (read-only folder...) is a :class:`LibraryError`."""
    lock = _lock_file(target, suffix)
    try:
        acquire(lock)
    except OSError as exc:
        raise LibraryError(f"{target!r}: cannot lock the library for writing "
                           f"({exc.strerror or exc})") from None
    try:
        yield
    finally:
        lock.release()


def _lock_file(target: str, suffix: str):
    from filelock import FileLock

    folder, name = os.path.split(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise LibraryError(f"{target!r}: folder {folder!r} does not exist")
    return FileLock(os.path.join(folder, f".{name}.{suffix}"))
