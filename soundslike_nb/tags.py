"""Labels on sounds: what a label may be, adding and removing them, counting, filtering, and
writing them into the library file without losing a build's rows.

A sound's tags are a tuple of labels, sorted; a library holds one tuple per row (an object
array, ``Library.tags``; the ``tags`` column of the file). Tags never change a vector, so the
files derived from a library (space, index, map) stay valid when labels change.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from ._locks import write_lock
from .errors import ParameterError

__all__ = ["MAX_LABEL_CHARS", "TagChange", "apply_changes", "carrying", "check_label",
           "check_labels", "label_counts", "paths_of", "write_changes"]

#: The longest label accepted, in characters (after trimming the ends).
MAX_LABEL_CHARS = 64
# Control and format characters (newlines, tabs, NUL, bidi overrides, zero-width...) and line or
# paragraph separators: invisible or layout-breaking in hovers, CSV cells and file names.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def check_label(label: object) -> str:
    """A label as stored: Unicode NFC, ends trimmed; refused (``ParameterError`` naming it) if
    empty, longer than :data:`MAX_LABEL_CHARS`, or holding a control or invisible character.

    Example:
        >>> check_label("  metal impact ")
        'metal impact'
        >>> check_label("a\\tb")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        soundslike_nb.errors.ParameterError: label 'a\\tb': control ... U+0009 at position 1
    """
    if not isinstance(label, str):
        raise ParameterError(f"a label must be a string, got {label!r} "
                             f"({type(label).__name__})")
    text = unicodedata.normalize("NFC", label).strip()
    if not text:
        raise ParameterError(f"label {label!r}: empty")
    if len(text) > MAX_LABEL_CHARS:
        raise ParameterError(f"label {label!r}: {len(text)} characters, at most "
                             f"{MAX_LABEL_CHARS}")
    for position, character in enumerate(text):
        if unicodedata.category(character) in _REFUSED_CATEGORIES:
            raise ParameterError(f"label {label!r}: control or invisible character "
                                 f"U+{ord(character):04X} at position {position}")
    return text


def check_labels(labels: str | Iterable[str]) -> tuple[str, ...]:
    """One label or several, each checked (:func:`check_label`), without repeats, in order.

    Example:
        >>> check_labels(["impact", "whoosh", "impact"])
        ('impact', 'whoosh')
        >>> check_labels("impact")
        ('impact',)
    """
    if isinstance(labels, str):
        labels = [labels]
    try:
        items = list(labels)
    except TypeError:
        raise ParameterError(f"labels must be a string or a list of strings, got "
                             f"{labels!r}") from None
    return tuple(dict.fromkeys(check_label(label) for label in items))


def paths_of(paths: pd.Series, sounds: object, *,
             position_of: Callable[[str | os.PathLike], int | None]) -> list[str]:
    """The library paths of ``sounds``: a row position, a path, a sequence of either, or a
    boolean mask over the rows; one that is not in the library is a ``ParameterError`` naming it.

    Example:
        >>> paths = pd.Series(["/a.wav", "/b.wav"])
        >>> paths_of(paths, [1, "/a.wav"], position_of={"/a.wav": 0}.get)
        ['/b.wav', '/a.wav']
    """
    count = len(paths)
    if isinstance(sounds, np.ndarray) and sounds.dtype == bool:
        if sounds.shape != (count,):
            raise ParameterError(f"a boolean mask of sounds must have {count} values, got "
                                 f"shape {sounds.shape}")
        return paths[sounds].tolist()
    if isinstance(sounds, (str, os.PathLike, int, np.integer)):
        sounds = [sounds]
    elif isinstance(sounds, np.ndarray):
        sounds = sounds.tolist()
    elif not isinstance(sounds, Iterable):
        raise ParameterError(f"sounds are row positions, paths or a boolean mask, got {sounds!r}")
    found = []
    for item in sounds:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not 0 <= int(item) < count:
                raise ParameterError(f"row {item} is not in this library ({count} rows)")
            found.append(paths.iloc[int(item)])
        elif isinstance(item, (str, os.PathLike)):
            position = position_of(item)
            if position is None:
                raise ParameterError(f"{os.fspath(item)!r} is not a sound of this library")
            found.append(paths.iloc[position])
        else:
            raise ParameterError(f"a sound is a row position or a path, got {item!r}")
    return found


def carrying(tags: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """A boolean mask of the rows that carry ANY of ``labels``.

    Example:
        >>> tags = np.array([("a",), (), ("a", "b")], dtype=object)
        >>> carrying(tags, ["b", "c"])
        array([False, False,  True])
    """
    wanted = set(labels)
    mask = np.zeros(len(tags), dtype=bool)
    if not wanted or not len(tags):
        return mask
    labelled = np.flatnonzero(np.frompyfunc(len, 1, 1)(tags).astype(bool))
    mask[labelled] = [not wanted.isdisjoint(tags[position]) for position in labelled]
    return mask


def label_counts(tags: np.ndarray) -> pd.Series:
    """How many sounds carry each label, most used first (ties by label).

    Example:
        >>> label_counts(np.array([("a",), (), ("a", "b")], dtype=object)).to_dict()
        {'a': 2, 'b': 1}
    """
    counts: dict[str, int] = {}
    for labels in tags:
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return pd.Series(dict(ordered), dtype="int64", name="sounds").rename_axis("label")


class TagChange:
    """Add ``label`` to (or remove it from) the sounds at ``paths``; ``label=None`` with
    ``add=False`` removes every label of those sounds. Applied by path, so that it lands on the
    same sounds in a file that a build rewrote meanwhile.

    Example:
        >>> TagChange(["/sfx/a.wav"], "impact")
        TagChange(add 'impact', 1 sounds)
    """

    def __init__(self, paths: Iterable[str], label: str | None, *, add: bool = True) -> None:
        if add and label is None:
            raise ParameterError("a label to add is needed, got None")
        self.paths = np.asarray(list(paths), dtype=object)
        self.label = None if label is None else check_label(label)
        self.add = add

    def __repr__(self) -> str:
        verb = "add" if self.add else "remove"
        what = "every label" if self.label is None else repr(self.label)
        return f"TagChange({verb} {what}, {len(self.paths)} sounds)"

    def apply(self, tags: np.ndarray, positions: np.ndarray) -> int:
        """Change ``tags`` in place at ``positions``; how many sounds changed."""
        changed = 0
        for position in positions:
            before = tags[position]
            if self.add:
                after = before if self.label in before else tuple(sorted((*before, self.label)))
            elif self.label is None:
                after = ()
            else:
                after = tuple(label for label in before if label != self.label)
            if after != before:
                tags[position] = after
                changed += 1
        return changed


def apply_changes(paths: np.ndarray, tags: np.ndarray, changes: Sequence[TagChange]) -> int:
    """Apply ``changes`` in order to ``tags`` (one tuple per path, in place), matching rows by
    path; paths not among ``paths`` are skipped. How many (row, change) pairs changed.

    Example:
        >>> tags = np.array([(), ("b",)], dtype=object)
        >>> apply_changes(np.array(["/a.wav", "/b.wav"], dtype=object), tags,
        ...               [TagChange(["/a.wav", "/b.wav", "/gone.wav"], "a")])
        2
        >>> tags
        array([('a',), ('a', 'b')], dtype=object)
    """
    where = {path: position for position, path in enumerate(paths)}
    changed = 0
    for change in changes:
        positions = [where[path] for path in change.paths if path in where]
        changed += change.apply(tags, np.asarray(positions, dtype=np.int64))
    return changed


def write_changes(library_path: str | os.PathLike, changes: Sequence[TagChange]) -> int:
    """Apply ``changes`` to the library file: under its write lock, the current file is read,
    changed by path and replaced atomically, so a build that finishes meanwhile keeps them and
    they keep its rows. How many (row, change) pairs changed (0: the file is left alone).

    Example:
        >>> write_changes("demo.parquet", [TagChange(["/sfx/a.wav"], "impact")])  # doctest: +SKIP
        1
    """
    from .libfile import read_table, write_table

    target = os.path.abspath(os.fspath(library_path))
    with write_lock(target):
        table = read_table(target)
        changed = apply_changes(table.rows["path"].to_numpy(dtype=object), table.tags, changes)
        if changed:
            write_table(table, target)
    return changed
