"""A script that moves the discarded copies of duplicate groups into a folder: never deletes.

The script is Python, not shell: file names travel as Python string literals (``repr``), so
spaces, quotes, newlines, ``$(...)``, a leading ``-`` and any Unicode are data, never code or
options. It moves each file under the folder it is given (keeping the files' folders relative
to their common parent), never overwrites (a clash gets `` (2)``, `` (3)``... before the
extension), skips a file that changed or vanished since the list was made, skips a discard
whose keeper is gone (a group never loses its last copy), and prints what it does;
``--dry-run`` only prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pandas as pd

from .errors import ParameterError

__all__ = ["move_script", "write_move_script"]

_TEMPLATE = '''#!/usr/bin/env python3
"""Move discarded duplicates found by soundslike into a folder; nothing is deleted.

Usage: python3 THIS_SCRIPT [--to FOLDER] [--dry-run]
  --to FOLDER  where the files go (default: DEFAULT_TARGET below, when set)
  --dry-run    print what would be moved, move nothing

Files keep their folders relative to COMMON_ROOT below. A file that changed or vanished
since the list was made is skipped, and so is one whose keeper is gone; an existing file is
never overwritten (the moved one gets a new name).
"""

import argparse
import errno
import os
import shutil
import sys

COMMON_ROOT = {common_root_literal}
DEFAULT_TARGET = {default_target_literal}
# (file to move, its size in bytes when listed, the copy that is kept)
MOVES = [
{moves}
]


def shown(path):
    return ascii(path)  # one line per file, whatever its name holds


def free_name(path):
    stem, extension = os.path.splitext(path)
    number = 2
    while os.path.lexists(path):
        path = "%s (%d)%s" % (stem, number, extension)
        number += 1
    return path


def move(source, target):
    """Reserve the name first (O_EXCL), so that nothing is ever overwritten."""
    while True:
        target = free_name(target)
        try:
            descriptor = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            continue
        os.close(descriptor)
        break
    try:
        os.replace(source, target)  # same file system: atomic, replaces only our placeholder
    except OSError as error:
        if error.errno != errno.EXDEV:
            os.unlink(target)
            raise
        shutil.copy2(source, target)  # another file system: copy, check, then remove
        if os.path.getsize(target) != os.path.getsize(source):
            raise OSError("copy of %s is incomplete" % shown(source))
        os.unlink(source)
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", default=DEFAULT_TARGET, help="folder to move the files into")
    parser.add_argument("--dry-run", action="store_true", help="print, move nothing")
    args = parser.parse_args(argv)
    if not args.to:
        parser.error("say where the files go: --to FOLDER")
    target_root = os.path.abspath(args.to)
    moved = skipped = 0
    for source, size, keeper in MOVES:
        if not os.path.isfile(source) or os.path.islink(source):
            print("skip (gone): %s" % shown(source))
            skipped += 1
            continue
        if os.path.getsize(source) != size:
            print("skip (changed since listed): %s" % shown(source))
            skipped += 1
            continue
        if not os.path.isfile(keeper):
            print("skip (its keeper %s is gone): %s" % (shown(keeper), shown(source)))
            skipped += 1
            continue
        target = os.path.join(target_root, os.path.relpath(source, COMMON_ROOT))
        if args.dry_run:
            print("would move %s -> %s" % (shown(source), shown(free_name(target))))
            moved += 1
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            print("moved %s -> %s" % (shown(source), shown(move(source, target))))
            moved += 1
        except OSError as error:
            print("failed %s: %s" % (shown(source), error), file=sys.stderr)
            skipped += 1
    verb = "would move" if args.dry_run else "moved"
    print("%s %d file(s), skipped %d" % (verb, moved, skipped))
    return 0 if not skipped or args.dry_run else 1


if __name__ == "__main__":
    sys.exit(main())
'''


def move_script(duplicates: pd.DataFrame, *, to: str | os.PathLike | None = None) -> str:
    """The text of a Python script that moves every row of ``duplicates`` with ``keep`` False
    into a folder (``to``, or the one given to the script as ``--to``).

    Args:
        duplicates: ``find_duplicates``' table (``group``, ``keep``, ``path``), possibly with
            ``keep`` edited by the user: each group must keep exactly one file.
        to: the default destination folder written into the script.

    Example:
        >>> table = pd.DataFrame({"group": [1, 1], "keep": [True, False],
        ...                       "path": ["/lib/a.wav", "/lib/a copy.wav"]})
        >>> text = move_script(table, to="/tmp/discards")
        >>> "('/lib/a copy.wav', -1, '/lib/a.wav')," in text
        True
    """
    missing = {"group", "keep", "path"} - set(duplicates.columns)
    if missing:
        raise ParameterError(f"the duplicates table needs columns {sorted(missing)}")
    keepers: dict[object, str] = {}
    for group, members in duplicates.groupby("group", sort=False):
        kept = members.loc[members["keep"].astype(bool), "path"].tolist()
        if len(kept) != 1:
            raise ParameterError(f"group {group} must keep exactly one file, keeps {len(kept)}")
        keepers[group] = os.path.abspath(kept[0])
    discards = duplicates[~duplicates["keep"].astype(bool)]
    sources = [os.path.abspath(os.fspath(path)) for path in discards["path"]]
    root = _common_root(sources)
    target = "" if to is None else os.path.abspath(os.fspath(to))
    moves = "\n".join(f"    ({source!r}, {_size(source)}, {keepers[group]!r}),"
                      for source, group in zip(sources, discards["group"]))
    # Paths appear only as repr() literals: never inside the docstring or a comment.
    return _TEMPLATE.format(common_root_literal=repr(root), default_target_literal=repr(target),
                            moves=moves)


def write_move_script(duplicates: pd.DataFrame, path: str | os.PathLike, *,
                      to: str | os.PathLike | None = None) -> str:
    """Write :func:`move_script` to ``path`` (executable) and return its absolute path.

    Example:
        >>> write_move_script(groups, "move.py", to="~/discards")  # doctest: +SKIP
        '/home/me/move.py'
    """
    from ._atomic import atomic_path

    path = os.path.abspath(os.fspath(path))
    text = move_script(duplicates, to=None if to is None else os.path.expanduser(to))
    with atomic_path(path, suffix=".py") as temporary, open(temporary, "w",
                                                           encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o755)
    return path


def _common_root(paths: Iterable[str]) -> str:
    folders = [os.path.dirname(path) for path in paths]
    return os.path.commonpath(folders) if folders else os.sep


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1
