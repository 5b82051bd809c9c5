"""The search index of a library file, kept beside it and reused while the library is unchanged."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .index import SoundIndex
    from .library import Library


def index_path(library_path: str) -> str:
    """Where the index of ``LIB.parquet`` lives: ``LIB.parquet.index`` beside it."""
    return f"{library_path}.index"


def index_for(library: Library) -> SoundIndex:
    """The library's index: reloaded from beside the file when built from the same content,
    else built (and saved there when the folder is writable)."""
    from .index import SoundIndex

    durations = library.rows["duration"].to_numpy()
    if library.path is None or not os.access(os.path.dirname(library.path), os.W_OK):
        return SoundIndex(library.embeddings, durations, key=library.content_key)
    return SoundIndex.load_or_build(index_path(library.path), library.embeddings, durations,
                                    key=library.content_key)
