"""soundslike_nb: find the sounds in your library that sound like a given one.

A few public names; everything loads lazily, so ``import soundslike_nb`` is instant and pulls in
neither torch nor faiss, umap or pyannote.

Example:
    >>> import soundslike_nb as sl
    >>> lib = sl.build_library("data/demo", out="demo.parquet")  # doctest: +SKIP
    >>> lib.search("data/demo/kenney/coin1.wav", k=5)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._version import __version__
from .errors import AudioError, EmbedderError, LibraryError, ParameterError, SoundslikeError

__all__ = [
    "AnalysisSettings",
    "AudioError",
    "EmbedderError",
    "IndexSettings",
    "Library",
    "LibraryError",
    "ParameterError",
    "SoundIndex",
    "SoundslikeError",
    "__version__",
    "build_library",
    "get_embedder",
    "load_library",
]

_LAZY = {
    "AnalysisSettings": "analysis",
    "IndexSettings": "search",
    "build_library": "build",
    "load_library": "library",
    "Library": "library",
    "SoundIndex": "search",
    "get_embedder": "embedders",
}

if TYPE_CHECKING:
    from .analysis import AnalysisSettings
    from .build import build_library
    from .embedders import get_embedder
    from .library import Library, load_library
    from .search import IndexSettings, SoundIndex


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
