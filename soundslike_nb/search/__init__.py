"""Search over a library's vectors: :class:`SoundIndex` (exact or faiss IVF behind one
signature), its settings, and the :class:`Hits` a library search returns."""

from __future__ import annotations

from .hits import Hits
from .index import IndexSettings, SearchResult, SoundIndex
from .ivf import IvfSettings

__all__ = ["Hits", "IndexSettings", "IvfSettings", "SearchResult", "SoundIndex"]
