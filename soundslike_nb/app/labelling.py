"""Labelling a library from its map: the sounds chosen with the lasso or the box, the labels put
on them, and the labels suggested for untagged sounds from their tagged neighbours.

:class:`Labelling` is plain state (no widgets), like :class:`~soundslike_nb.app.state.AppState`:
the map writes what was chosen into it, the widgets call its methods, and listeners hear what
changed (``"chosen"``, ``"tags"``, ``"suggestions"``, ``"busy"``, ``"error"``). The labels
themselves live in the library file (``lib.tag`` / ``lib.untag``); suggestions are the
library's own (``lib.suggest_labels``), recomputed when labels change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import SoundslikeError
from ..library import Library

__all__ = ["Labelling"]

Listener = Callable[[frozenset[str]], None]


class Labelling:
    """Which library sounds are chosen on the map, and the labels on them.

    Args:
        library: the library whose sounds are labelled (its file is rewritten, atomically).
        min_confidence: suggestions this confident or more are accepted by :meth:`accept`
            (default: the library's measured ``labels.DEFAULT_MIN_CONFIDENCE``).

    Example:
        >>> labelling = Labelling(lib)  # doctest: +SKIP
        >>> labelling.choose([3, 4, 9])  # the lasso's points  # doctest: +SKIP
        >>> labelling.label_chosen("impacts")  # doctest: +SKIP
        3
    """

    def __init__(self, library: Library, *, min_confidence: float | None = None) -> None:
        self.library = library
        #: Row positions chosen on the map (box or lasso), in the order given.
        self.chosen = np.zeros(0, dtype=np.int64)
        #: One row per untagged sound with a suggestion, indexed by row position: path,
        #: label, confidence (:meth:`Library.suggest_labels`).
        self.suggestions = _no_suggestions()
        self.error = ""
        #: What long work is under way (``"suggesting labels…"``), ``""`` when none.
        self.busy = ""
        if min_confidence is None:
            from ..labels import DEFAULT_MIN_CONFIDENCE as min_confidence
        self._min_confidence = _checked_confidence(min_confidence)
        self._listeners: list[Listener] = []

    def observe(self, listener: Listener) -> None:
        """Call ``listener(changed_field_names)`` after every change."""
        self._listeners.append(listener)

    def _changed(self, *names: str) -> None:
        for listener in list(self._listeners):
            listener(frozenset(names))

    # -- choosing ----------------------------------------------------------------------------

    def choose(self, positions: Sequence[int] | np.ndarray) -> None:
        """Choose these library rows (a lasso or box on the map); an empty choice clears it."""
        chosen = np.unique(np.asarray(positions, dtype=np.int64).reshape(-1))
        if len(chosen) and (chosen[0] < 0 or chosen[-1] >= len(self.library)):
            bad = int(chosen[0] if chosen[0] < 0 else chosen[-1])
            self._fail(f"row {bad} is not a row of this library ({len(self.library)} rows)")
            return
        self.chosen = chosen
        self._changed("chosen")

    # -- labels ------------------------------------------------------------------------------

    @property
    def labels(self) -> pd.Series:
        """Each label in the library with how many sounds carry it, most used first."""
        return self.library.label_counts()

    @property
    def tags(self) -> pd.Series:
        """Each row's labels (a sorted tuple per row)."""
        return self.library.tags

    def label_chosen(self, label: str) -> int:
        """Put ``label`` on the chosen sounds; returns how many did not carry it yet. A bad
        label sets :attr:`error` (nothing is written)."""
        return self._write(self.library.tag, label)

    def unlabel_chosen(self, label: str) -> int:
        """Take ``label`` off the chosen sounds; returns how many carried it."""
        return self._write(self.library.untag, label)

    def _write(self, change: Callable[..., int], label: str) -> int:
        if not len(self.chosen):
            self._fail("choose sounds on the map first (box or lasso)")
            return 0
        try:
            count = int(change(self.chosen, label))
        except SoundslikeError as exc:
            self._fail(str(exc))
            return 0
        self.error = ""
        self._changed("tags", "error")  # the map and hovers show the labels before suggesting
        self._refresh_suggestions()
        return count

    # -- suggestions -------------------------------------------------------------------------

    @property
    def min_confidence(self) -> float:
        """Suggestions at or above this confidence are the ones :meth:`accept` applies."""
        return self._min_confidence

    @min_confidence.setter
    def min_confidence(self, value: float) -> None:
        self._min_confidence = _checked_confidence(value)
        self._changed("suggestions")

    def confident(self) -> pd.DataFrame:
        """The suggestions :meth:`accept` would apply (confidence >= :attr:`min_confidence`)."""
        return self.suggestions[self.suggestions["confidence"] >= self._min_confidence]

    def refresh(self) -> None:
        """Compute the suggestions again (after labels changed outside this object)."""
        self._changed("tags")
        self._refresh_suggestions()

    def accept(self) -> int:
        """Apply every suggestion at or above :attr:`min_confidence`; returns how many."""
        accepted = self.confident()
        try:
            count = int(self.library.accept_suggestions(accepted,
                                                         min_confidence=self._min_confidence))
        except SoundslikeError as exc:
            self._fail(str(exc))
            return 0
        self.error = ""
        self._changed("tags", "error")
        self._refresh_suggestions()
        return count

    def _refresh_suggestions(self) -> None:
        """New suggestions (listeners hear ``"suggestions"``); :attr:`busy` says so meanwhile:
        the first time on a library, its neighbour graph is computed (84 s at 100,000 sounds
        on 2 cores, then kept beside the library file)."""
        if not len(self.library.label_counts()):
            self.suggestions = _no_suggestions()
            self._changed("suggestions")
            return
        self.busy = "suggesting labels for the unlabelled sounds…"
        self._changed("busy")
        try:
            self.suggestions = self.library.suggest_labels(min_confidence=0.0)
        finally:
            self.busy = ""
            self._changed("busy", "suggestions")

    def _fail(self, message: str) -> None:
        self.error = message
        self._changed("error")


def _checked_confidence(value: float) -> float:
    from ..errors import ParameterError

    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ParameterError(f"min_confidence must be in [0, 1], got {value!r}")
    return number


def _no_suggestions() -> pd.DataFrame:
    return pd.DataFrame({"path": pd.Series(dtype=object), "label": pd.Series(dtype=object),
                         "confidence": pd.Series(dtype=np.float64)},
                        index=pd.Index([], dtype=np.int64, name="position"))
