"""What a build keeps of the library file it updates: rows of unchanged files, failures that
still hold, the rows of files gone (perhaps moved), the tags written while it ran, and whether
anything changed at all."""

from __future__ import annotations

import json
import os

import numpy as np

from ._build_report import BuildReport
from ._checkpoint import empty_table, lasting_failures
from ._moves import digests_of
from .descriptors import FEATURE_NAMES
from .libfile import LibraryTable, current_descriptors, read_table, read_tags
from .scan import FileEntry

__all__ = ["carry_over", "current_tags", "digest_tagged", "read_previous", "same_library",
           "stale_regions"]


def read_previous(target: str | None) -> LibraryTable | None:
    """The library file a build updates, or ``None`` for a new one (or one kept in memory)."""
    if target is None or not os.path.exists(target):
        return None
    return read_table(target)


def carry_over(previous: LibraryTable | None, files: list[FileEntry], roots: list[str],
                report: BuildReport
                ) -> tuple[LibraryTable, LibraryTable, dict[str, dict], list[FileEntry]]:
    """Rows and failures of the previous library that stay: unchanged files, and files outside
    the folders scanned now that still exist; and the rows whose file is gone (perhaps moved).
    A library without current descriptors (written by an older version) keeps no rows: its
    sounds are analysed again, once, those outside the folders scanned now included (the list
    returned)."""
    if previous is None:
        return empty_table(0), empty_table(0), {}, []
    found = {entry.path: entry for entry in files}
    rows = previous.rows
    descriptors = current_descriptors(previous)

    def stays(path: str, size: int, mtime: float) -> bool:
        entry = found.get(path)
        if entry is not None:
            return entry.size == size and entry.mtime == mtime
        if _under(path, roots):
            return False  # deleted, or no longer an audio file
        return os.path.exists(path)

    keep = np.array([stays(p, s, m) for p, s, m in
                     zip(rows["path"], rows["size"], rows["mtime"])], dtype=bool)
    vanished = ~keep & ~rows["path"].isin(found).to_numpy()
    report.removed = int(vanished.sum())
    outside: list[FileEntry] = []
    if descriptors is None or stale_regions(previous):
        outside = [FileEntry(path, int(size), float(mtime)) for path, size, mtime, stay in
                   zip(rows["path"], rows["size"], rows["mtime"], keep)
                   if stay and path not in found]
        keep[:] = False
        vanished[:] = False  # stale vectors: a moved file is analysed again too
        descriptors = np.zeros((len(rows), len(FEATURE_NAMES)), np.float32)
    report.unchanged = int(keep.sum())
    failures = lasting_failures(previous.provenance.get("failures", {}), found)
    current = LibraryTable(rows, previous.embeddings, descriptors=descriptors,
                           thumbnails=previous.thumbnails, tags=previous.tags,
                           digests=previous.digests, regions=previous.regions)
    return current.subset(keep), current.subset(vanished), failures, outside


def stale_regions(previous: LibraryTable) -> bool:
    """Whether the library's regions were cut by another version of the segmentation (its
    sounds are then analysed again, once, like stale descriptors)."""
    from .segmentation import REGIONS_VERSION

    recorded = (previous.provenance.get("analysis") or {}).get("regions")
    return bool(recorded) and recorded.get("version") != REGIONS_VERSION


def digest_tagged(kept: LibraryTable) -> int:
    """Give a digest to kept rows that carry tags but have none (written before digests), so
    that their tags follow them when they move; untagged rows get one when next analysed (not
    hashing a whole library on its first rescan). How many were hashed."""
    lacking = np.flatnonzero((kept.digests == b"")
                             & np.frompyfunc(len, 1, 1)(kept.tags).astype(bool))
    if len(lacking):
        kept.digests[lacking] = digests_of(kept.rows["path"].to_numpy()[lacking].tolist())
    return len(lacking)


def current_tags(target: str, table: LibraryTable, moved_from: dict[str, str]) -> np.ndarray:
    """``table``'s tags, with those the file on disk has now for the same path (or, for a moved
    row, for its old path) in their place: the file's are the latest."""
    tags = table.tags.copy()
    if not os.path.exists(target):
        return tags
    paths, on_disk, _ = read_tags(target)
    latest = dict(zip(paths, on_disk))
    for position, path in enumerate(table.rows["path"]):
        found = latest.get(moved_from.get(path, path))
        if found is not None:
            tags[position] = found
    return tags


def _under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def same_library(previous: LibraryTable, table: LibraryTable, report: BuildReport) -> bool:
    """Whether a build changed nothing that the library file holds (rows, vectors, provenance
    but its update time)."""
    if report.embedded or report.removed or report.resumed or len(table.rows) != len(
            previous.rows):
        return False
    ignored = {"updated", "format_version"}
    old = {key: value for key, value in previous.provenance.items() if key not in ignored}
    new = {key: value for key, value in table.provenance.items() if key not in ignored}
    return (json.loads(json.dumps(new)) == old
            and previous.rows["path"].equals(table.rows["path"])
            and previous.descriptors is not None)
