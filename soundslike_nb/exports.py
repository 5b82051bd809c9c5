"""Exports: search results, a map selection or duplicate groups as CSV / JSON tables, and the
audio files themselves as a zip.

Every function is pure or writes one path the caller names, so the notebook, the command line
and a script share them. Two safety rules hold everywhere: a CSV cell that a spreadsheet would
run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is
written with a leading ``'``, and a zip entry name never holds ``..``, an absolute path, a
backslash or a control character.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .cuts import cut_name, cut_wav
from .errors import AudioError, ParameterError

__all__ = [
    "EXPORT_COLUMNS",
    "export_table",
    "json_value",
    "licences",
    "to_csv",
    "to_json",
    "write_text",
    "write_zip",
    "zip_bytes",
    "zip_entry_names",
]

#: The columns an export leads with (those the library knows; the source's others follow).
EXPORT_COLUMNS = ["name", "path", "duration", "similarity", "tags", "licence"]
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_LICENCE_FILES = ("LICENSES.csv", "LICENCES.csv", "licenses.csv", "licences.csv")


def export_table(library, selection: pd.DataFrame | Sequence[int | str] | np.ndarray
                 ) -> pd.DataFrame:
    """The table to export for some sounds of ``library``: name, path, duration, similarity
    (when the selection has it), tags (when the library has them), licence (where known),
    then the selection's other columns (``rank``, ``reason``...); duplicate groups lead with
    ``group`` and ``keep``.

    Args:
        library: a :class:`~soundslike_nb.library.Library`, or ``None`` to export a table as
            it is.
        selection: search results or ``find_duplicates``' table (any DataFrame with a ``path``
            column), or a map selection: row positions, paths, or a boolean mask.

    Example:
        >>> export_table(None, pd.DataFrame({"path": ["/a.wav"], "similarity": [0.9]}))
            name    path  similarity
        0  a.wav  /a.wav         0.9
    """
    table = _selection_frame(library, selection)
    if library is not None and len(table):
        positions = [library.position_of(path) for path in table["path"]]
        found = [position for position in positions if position is not None]
        if len(found) == len(positions):
            rows = library.rows.iloc[found].reset_index(drop=True)
            for column in ("name", "duration"):
                if column not in table and column in rows:
                    table[column] = rows[column].to_numpy()
            tags = getattr(library, "tags", None)
            if "tags" not in table and isinstance(tags, pd.Series):
                table["tags"] = tags.iloc[found].to_numpy()
        else:
            for column in ("name", "duration"):
                if column not in table and column in library.rows:
                    values = library.rows[column].to_numpy()
                    table[column] = [None if position is None else values[position]
                                     for position in positions]
        known = licences(library)
        if "licence" not in table and known:
            table["licence"] = [known.get(os.path.abspath(path)) for path in table["path"]]
    if "name" not in table:
        table.insert(0, "name", [os.path.basename(str(path)) for path in table["path"]])
    # Duplicate groups read group by group: which group, kept or not, then the file.
    leading = [column for column in ("group", "keep", *EXPORT_COLUMNS) if column in table]
    return table[leading + [column for column in table.columns if column not in leading]]


def _selection_frame(library, selection) -> pd.DataFrame:
    if isinstance(selection, pd.DataFrame):
        if "path" not in selection:
            raise ParameterError(f"an exported table needs a 'path' column, got columns "
                                 f"{list(selection.columns)}")
        return selection.reset_index(drop=True).copy()
    if library is None:
        raise ParameterError("exporting row positions or paths needs the library")
    values = np.asarray(selection)
    if values.dtype == bool:
        if len(values) != len(library):
            raise ParameterError(f"a mask needs {len(library)} values, got {len(values)}")
        values = np.flatnonzero(values)
    paths = []
    for value in values.tolist():
        if isinstance(value, (int, np.integer)):
            if not 0 <= value < len(library):
                raise ParameterError(f"row {value} is out of range for {len(library)} rows")
            paths.append(library.rows["path"].iloc[value])
        else:
            paths.append(os.path.abspath(os.fspath(value)))
    return pd.DataFrame({"path": paths})


def licences(library) -> dict[str, str]:
    """Licence of each sound the library knows one for: path → licence.

    From a ``licence`` (or ``license``) column of the library's rows, else from a
    ``LICENSES.csv`` (columns ``file``, relative to its folder, and ``licence`` or
    ``license``) in any folder the library was built from, as ``data/demo`` has.

    Example:
        >>> known = licences(load_library("demo.parquet"))  # doctest: +SKIP
        >>> known[os.path.abspath("data/demo/kenney/coin1.wav")]  # doctest: +SKIP
        'CC0-1.0'
    """
    if library is None:
        return {}
    rows = library.rows
    for column in ("licence", "license"):
        if column in rows:
            return {path: value for path, value in zip(rows["path"], rows[column])
                    if isinstance(value, str) and value}
    known: dict[str, str] = {}
    roots = getattr(library, "provenance", {}).get("roots", [])
    for root in roots:
        for name in _LICENCE_FILES:
            listing = os.path.join(root, name)
            if os.path.isfile(listing):
                known.update(_read_licences(listing))
                break
    return known


def _read_licences(listing: str) -> dict[str, str]:
    try:
        table = pd.read_csv(listing, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError):
        return {}
    column = next((c for c in ("licence", "license") if c in table), None)
    if column is None or "file" not in table:
        return {}
    folder = os.path.dirname(os.path.abspath(listing))
    return {os.path.normpath(os.path.join(folder, file)): licence
            for file, licence in zip(table["file"], table[column]) if file and licence}


# -- CSV and JSON ----------------------------------------------------------------------------

def to_csv(table: pd.DataFrame, path: str | os.PathLike | None = None) -> str:
    """The table as CSV text (written atomically to ``path`` too, when given), with every
    cell a spreadsheet would run as a formula neutralised by a leading ``'``; tags joined by
    ``"; "``.

    Example:
        >>> print(to_csv(pd.DataFrame({"name": ["=HYPERLINK(\\"x\\")", "kick"],
        ...                            "tags": [("drum", "low"), ()]})), end="")
        name,tags
        "'=HYPERLINK(""x"")",drum; low
        kick,
    """
    safe = table.copy()
    for column in safe.columns:
        safe[column] = [_safe_cell(value) for value in safe[column]]
    text = safe.to_csv(index=False, lineterminator="\n")
    if path is not None:
        write_text(path, text)
    return text


def _safe_cell(value):
    if isinstance(value, (tuple, list, np.ndarray)):
        value = "; ".join(str(item) for item in value)
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def to_json(table: pd.DataFrame, path: str | os.PathLike | None = None) -> str:
    """The table as a JSON list of records (written atomically to ``path`` too, when given);
    NaN becomes ``null``, tags a list.

    Example:
        >>> text = to_json(pd.DataFrame({"name": ["kick"], "similarity": [float("nan")],
        ...                              "tags": [("drum",)]}))
        >>> json.loads(text)
        [{'name': 'kick', 'similarity': None, 'tags': ['drum']}]
    """
    records = [{str(key): json_value(value) for key, value in record.items()}
               for record in table.to_dict(orient="records")]
    text = json.dumps(records, ensure_ascii=False, indent=2)
    if path is not None:
        write_text(path, text + "\n")
    return text


def json_value(value):
    """A table cell as plain JSON: numpy scalars unwrapped, NaN and infinities ``None``,
    tuples and arrays lists.

    Example:
        >>> json_value(np.float32(0.5)), json_value(float("nan")), json_value(("a", "b"))
        (0.5, None, ['a', 'b'])
    """
    if isinstance(value, (tuple, list, np.ndarray)):
        return [json_value(item) for item in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: readers see the old file or the new one.

    Example:
        >>> write_text(tmp_path / "hits.csv", "name\\n")  # doctest: +SKIP
    """
    from ._atomic import atomic_path

    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8",
                                              newline="") as handle:
        handle.write(text)


# -- zip -------------------------------------------------------------------------------------

def zip_entry_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Safe, unique names inside a zip for files: their paths below their common folder,
    without ``..``, absolute parts, backslashes or control characters.

    Example:
        >>> zip_entry_names(["/sfx/a/x.wav", "/sfx/b/x.wav", "/sfx/b/x.wav", "/sfx/..\\\\x.wav"])
        ['a/x.wav', 'b/x.wav', 'b/x (2).wav', '.._x.wav']
    """
    absolute = [os.path.abspath(os.fspath(path)) for path in paths]
    root = os.path.commonpath([os.path.dirname(path) for path in absolute]) if absolute else ""
    names: list[str] = []
    taken: set[str] = set()
    for path in absolute:
        parts = [_safe_part(part) for part in os.path.relpath(path, root).split(os.sep)]
        parts = [part for part in parts if part not in ("", ".", "..")] or ["sound"]
        name = "/".join(parts)
        stem, extension = os.path.splitext(name)
        number = 2
        while name.lower() in taken:  # case-insensitive file systems would merge them
            name = f"{stem} ({number}){extension}"
            number += 1
        taken.add(name.lower())
        names.append(name)
    return names


def _safe_part(part: str) -> str:
    cleaned = "".join("_" if (ord(char) < 32 or char in "\\:\x7f") else char for char in part)
    return cleaned.strip()


def zip_bytes(paths: Sequence[str | os.PathLike], *, manifest: pd.DataFrame | None = None,
              skip_missing: bool = False) -> bytes:
    """A zip of the files (for a download button), with ``manifest`` as ``sounds.csv`` when
    given (plus a ``file`` column: each sound's name in the zip).

    Raises :class:`~soundslike_nb.errors.AudioError` naming the files that are gone, unless
    ``skip_missing``.

    Example:
        >>> data = zip_bytes(["data/demo/kenney/coin1.wav"])
        >>> zipfile.ZipFile(io.BytesIO(data)).namelist()
        ['coin1.wav']
    """
    buffer = io.BytesIO()
    _zip_into(buffer, paths, manifest, skip_missing)
    return buffer.getvalue()


def write_zip(paths: Sequence[str | os.PathLike], out: str | os.PathLike, *,
              manifest: pd.DataFrame | None = None, skip_missing: bool = False) -> str:
    """Write :func:`zip_bytes`' zip to ``out`` (atomically, streaming the files: a large
    selection never sits in memory) and return its absolute path.

    Example:
        >>> write_zip(hits["path"], "impacts.zip", manifest=hits)  # doctest: +SKIP
        '/home/me/impacts.zip'
    """
    from ._atomic import atomic_path

    out = os.path.abspath(os.fspath(out))
    with atomic_path(out, suffix=".zip") as temporary, open(temporary, "wb") as handle:
        _zip_into(handle, paths, manifest, skip_missing)
    return out


def _zip_into(handle, paths: Iterable[str | os.PathLike], manifest: pd.DataFrame | None,
              skip_missing: bool) -> None:
    paths = [os.path.abspath(os.fspath(path)) for path in paths]
    spans = _spans_of(manifest, paths)
    present = [index for index, path in enumerate(paths) if os.path.isfile(path)]
    gone = [path for index, path in enumerate(paths) if index not in set(present)]
    if gone and not skip_missing:
        listed = ", ".join(repr(path) for path in gone[:5])
        more = f" and {len(gone) - 5} more" if len(gone) > 5 else ""
        raise AudioError(f"{len(gone)} files to zip are missing (moved or deleted): "
                         f"{listed}{more}")
    # A region is zipped as its own cut (<stem>_<start>-<end>.wav beside where the file is).
    shown = [paths[index] if spans[index] is None else os.path.join(
        os.path.dirname(paths[index]), cut_name(paths[index], *spans[index]))
        for index in present]
    names = zip_entry_names(shown)
    # Audio is stored, not deflated: it is already compressed, or compresses little.
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
        if manifest is not None:
            listed = manifest.copy()
            if spans.aligned:
                entries = dict(zip(present, names))
                listed["file"] = [entries.get(index) for index in range(len(paths))]
            else:
                entries = {paths[index]: name for index, name in zip(present, names)}
                listed["file"] = [entries.get(os.path.abspath(str(path)))
                                  for path in listed["path"]]
            archive.writestr("sounds.csv", to_csv(listed))
        for index, name in zip(present, names):
            if spans[index] is None:
                archive.write(paths[index], name)
            else:
                archive.writestr(name, cut_wav(paths[index], *spans[index]))


class _Spans(list):
    """One ``(start, end)`` or ``None`` per path; ``aligned``: taken from a manifest whose rows
    are the paths, in order."""

    aligned = False


def _spans_of(manifest: pd.DataFrame | None, paths: list[str]) -> _Spans:
    """The region of each path from a manifest with ``start``/``end`` columns (search results)
    whose rows are the paths in order; whole files otherwise."""
    spans = _Spans([None] * len(paths))
    if (manifest is None or len(manifest) != len(paths)
            or not {"start", "end", "path"} <= set(manifest.columns)
            or [os.path.abspath(str(path)) for path in manifest["path"]] != paths):
        return spans
    spans.aligned = True
    for index, (start, end) in enumerate(zip(manifest["start"], manifest["end"])):
        if start is not None and end is not None and not (pd.isna(start) or pd.isna(end)):
            spans[index] = (float(start), float(end))
    return spans
