"""What a :class:`~soundslike_nb.library.Library` shows as tables, made from what its file
holds: the embedding frame, each sound's folder, the regions' table (their descriptors dropped
when the files' are stale), and the stored features of a row or a region."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pandas as pd

from .analysis_records import SoundFeatures
from .errors import ParameterError
from .libfile import LibraryTable
from .regions import Regions

__all__ = ["current_regions", "embedding_frame", "folders_of", "region_features",
           "regions_frame", "row_features"]


def current_regions(table: LibraryTable, descriptors: np.ndarray | None) -> Regions | None:
    """The table's regions, their descriptors dropped when the files' are stale
    (``descriptors``: the files' current ones, ``None`` when stale)."""
    regions = table.regions
    if regions is None or descriptors is not None or regions.descriptors is None:
        return regions
    return replace(regions, descriptors=None)


def embedding_frame(rows: pd.DataFrame, tags: np.ndarray, embeddings: np.ndarray,
                    descriptors: np.ndarray | None, thumbnails: np.ndarray | None
                    ) -> pd.DataFrame:
    """The row columns, ``tags``, ``embedding`` and, when there are some, ``descriptors`` and
    ``thumbnail``: one vector each per row.

    Example:
        >>> rows = pd.DataFrame({"name": ["a", "b"]})
        >>> tags = np.array([(), ("door",)], dtype=object)
        >>> list(embedding_frame(rows, tags, np.eye(2), None, None).columns)
        ['name', 'tags', 'embedding']
    """
    frame = rows.copy()
    frame["tags"] = tags
    frame["embedding"] = list(embeddings)
    if descriptors is not None:
        frame["descriptors"] = list(descriptors)
    if thumbnails is not None:
        frame["thumbnail"] = list(thumbnails)
    return frame


def folders_of(paths: pd.Series, roots: list[str]) -> pd.Series:
    """Each path's folder relative to the longest of the library folders ``roots`` holding it
    (``""`` for one at the top); its parent folder's name when none does.

    Example:
        >>> folders_of(pd.Series(["/sfx/doors/a.wav", "/sfx/b.wav", "/x/y/c.wav"]),
        ...            ["/sfx"]).tolist()
        ['doors', '', 'y']
    """
    ordered = sorted((os.path.abspath(root) for root in roots), key=len, reverse=True)
    return pd.Series([_folder_within(path, ordered) for path in paths], index=paths.index,
                     dtype="string", name="folder")


def _folder_within(path: str, roots: list[str]) -> str:
    folder = os.path.dirname(path)
    for root in roots:
        if folder == root:
            return ""
        if folder.startswith(root.rstrip(os.sep) + os.sep):
            return os.path.relpath(folder, root)
    return os.path.basename(folder)


def regions_frame(regions: Regions | None, paths: pd.Series) -> pd.DataFrame:
    """One row per region: ``file`` (its file's row position), ``path``, ``start``, ``end``
    and ``duration`` in seconds; no rows without regions.

    Example:
        >>> regions_frame(None, pd.Series(["/sfx/a.wav"])).columns.tolist()
        ['file', 'path', 'start', 'end', 'duration']
    """
    owners = np.zeros(0, np.int64) if regions is None else regions.owners
    spans = np.zeros((0, 2)) if regions is None else regions.spans_s
    return pd.DataFrame({"file": owners,
                         "path": paths.array.take(owners),
                         "start": spans[:, 0], "end": spans[:, 1],
                         "duration": spans[:, 1] - spans[:, 0]})


def row_features(embeddings: np.ndarray, descriptors: np.ndarray | None,
                 position: int) -> SoundFeatures:
    """The stored features of row ``position``."""
    return SoundFeatures(embeddings[position],
                         None if descriptors is None else descriptors[position])


def region_features(regions: Regions | None, region: int) -> SoundFeatures:
    """The stored features of region ``region``; a
    :class:`~soundslike_nb.errors.ParameterError` for one the library does not have."""
    if regions is None or not 0 <= int(region) < len(regions):
        raise ParameterError(f"{region!r} is not a region of this library "
                             f"({0 if regions is None else len(regions)} regions)")
    return row_features(regions.embeddings, regions.descriptors, region)
