"""A library's map (:class:`~soundslike_nb.projection.LibraryMap`): fitted on the rows the search
compares, kept beside the library file under its content key, and a query placed on it through
the index."""

from __future__ import annotations

from typing import Any

from .analysis_records import SoundFeatures
from .sidecar import sidecar_key

__all__ = ["library_map", "map_point"]


def library_map(library: Any, *, progress: bool = True, refit: bool = False):
    """The map of ``library`` (a :class:`~soundslike_nb.library.Library`): read from beside
    its file while its content and the space are unchanged, else fitted and stored.

    Example:
        >>> library_map(load_library("data/demo.parquet")).coordinates.shape  # doctest: +SKIP
        (56, 2)
    """
    from .projection import MAP_FORMAT, LibraryMap, map_for_size

    atlas = map_for_size(len(library))
    space = library.space
    options = {**atlas.options(), "space": None if space is None else space.options}
    key = sidecar_key("map", library.content_key, options, MAP_FORMAT)
    if not refit:
        # Loaded without its rows: queries are placed through the index (map_point).
        stored = library.store.load(
            "map", key, lambda stored: LibraryMap.from_stored(stored, count=len(library)))
        if stored is not None:
            return stored
    atlas.fit(library.searcher.map_rows(), progress=progress)
    library.store.save("map", key, *atlas.to_stored())
    return atlas


def map_point(library: Any, features: SoundFeatures, atlas: Any) -> tuple[float, float]:
    """Where a query lands on ``atlas``: placed through the same transform, among its nearest
    library rows as the index finds them (default weights)."""
    vector = library.searcher.map_vector(features)
    found = library.index.search(vector, k=min(atlas.n_neighbors, max(len(library), 1)),
                                 allowed=library.searcher.file_mask())
    x, y = atlas.transform(vector[None], neighbours=(found.indices, found.similarities))[0]
    return float(x), float(y)
