"""The labels on a library's sounds: one sorted tuple per row, the masks of which sounds carry
which labels (a search filter asks again and again: kept until a change), and changes applied
here and to the library file (:mod:`~soundslike_nb.tags` does the work)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SoundLabels"]


class SoundLabels:
    """The labels of the sounds at ``paths`` (a library's ``rows["path"]``), written to the
    library file ``library_path`` on a change (``None``: in memory only).

    Example:
        >>> labels = SoundLabels(np.array([("hit",), ()], dtype=object),
        ...                      pd.Series(["/a.wav", "/b.wav"]), None)
        >>> from soundslike_nb.tags import TagChange
        >>> labels.change([TagChange(["/b.wav"], "door")]), labels.carrying("door")
        (1, array([False,  True]))
    """

    def __init__(self, tags: np.ndarray, paths: pd.Series, library_path: str | None) -> None:
        #: One sorted tuple of labels per row (``()`` for none).
        self.tags = tags
        self._paths = paths
        self._library_path = library_path
        self._masks: dict[tuple[str, ...], np.ndarray] = {}  # labels -> carrying(), until a change

    def carrying(self, labels: str | Iterable[str]) -> np.ndarray:
        """A boolean mask of the sounds that carry ANY of ``labels`` (each checked)."""
        from .tags import carrying, check_labels

        wanted = check_labels(labels)
        if wanted not in self._masks:
            self._masks[wanted] = carrying(self.tags, wanted)
        return self._masks[wanted].copy()

    def change(self, changes: Sequence[Any]) -> int:
        """Apply tag changes (:class:`~soundslike_nb.tags.TagChange`) here and in the file,
        which is read fresh under its write lock (a build's new rows are kept); how many sounds
        changed here."""
        from .tags import apply_changes, write_changes

        if not changes:
            return 0
        tags = self.tags.copy()
        changed = apply_changes(self._paths.to_numpy(dtype=object), tags, changes)
        if self._library_path is not None and changed:
            write_changes(self._library_path, changes)
        self.tags = tags
        self._masks = {}
        return changed

    def paths_of(self, sounds: Any, *,
                 position_of: Callable[[str | os.PathLike], int | None]) -> list[str]:
        """The library paths of ``sounds`` (row positions, paths, or a boolean mask)."""
        from .tags import paths_of

        return paths_of(self._paths, sounds, position_of=position_of)
