"""What a library derives from its vectors and keeps beside its file, reused while unchanged:
the fitted similarity space (``LIB.parquet.space``) and the search index (``LIB.parquet.index``)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING

import numpy as np

from .errors import LibraryError

if TYPE_CHECKING:
    from .index import SoundIndex
    from .library import Library
    from .space import SimilaritySpace


def index_path(library_path: str) -> str:
    """Where the index of ``LIB.parquet`` lives: ``LIB.parquet.index`` beside it."""
    return f"{library_path}.index"


def space_path(library_path: str) -> str:
    """Where the similarity space of ``LIB.parquet`` lives: ``LIB.parquet.space`` beside it."""
    return f"{library_path}.space"


def _writable(library: Library) -> bool:
    return library.path is not None and os.access(os.path.dirname(library.path), os.W_OK)


def space_for(library: Library) -> SimilaritySpace:
    """The library's similarity space: reloaded from beside the file when fitted on the same
    content with the same options, else fitted (and saved there when the folder is writable)."""
    from .space import SimilaritySpace

    if library.descriptors is None:
        raise LibraryError(f"{library.path!r} has no descriptors: index it again to add them")
    space = SimilaritySpace()
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(space.options, sort_keys=True).encode())
    digest.update(library.content_key.encode())
    digest.update(memoryview(np.ascontiguousarray(library.descriptors)).cast("B"))
    key = digest.hexdigest()
    stored = space_path(library.path) if library.path is not None else None
    if stored is not None and os.path.exists(stored):
        try:
            reloaded = SimilaritySpace.load(stored)
        except LibraryError:
            reloaded = None  # a stale or foreign file is only a cache: refit and replace it
        if reloaded is not None and reloaded.key == key:
            return reloaded
    space.fit(library.embeddings, library.descriptors, key=key)
    if _writable(library):
        space.save(stored)
    return space


def index_for(library: Library) -> SoundIndex:
    """The library's index, over its similarity space's rows (over the raw embeddings for a
    library without descriptors): reloaded from beside the file when built from the same
    content, else built (and saved there when the folder is writable)."""
    from .index import SoundIndex

    durations = library.rows["duration"].to_numpy()
    space = library.space
    if space is None:
        key = library.content_key

        def vectors():
            return library.embeddings
    else:
        from .space import DEFAULT_WEIGHTS

        key = hashlib.blake2b(
            f"{space.key} {json.dumps(dict(DEFAULT_WEIGHTS), sort_keys=True)}".encode(),
            digest_size=16).hexdigest()

        def vectors():
            return space.index_rows(library.embeddings, library.descriptors)
    if not _writable(library):
        return SoundIndex(vectors(), durations, key=key)
    path = index_path(library.path)
    try:
        index = SoundIndex.load(path, key=key)
    except LibraryError:
        index = None  # a stale cache: rebuilt and replaced
    if index is None:
        index = SoundIndex(vectors(), durations, key=key)
        index.save(path)
    return index
