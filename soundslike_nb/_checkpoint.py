"""Checkpoints of a running build: finished batches saved beside the output, so that a build
that is killed (or fails) loses at most the last few seconds of work and the next run resumes."""

from __future__ import annotations

import contextlib
import os
import shutil
import time

import numpy as np

from .analysis_records import THUMBNAIL_BINS
from .descriptors import DESCRIPTOR_VERSION, FEATURE_NAMES
from .errors import LibraryError
from .libfile import (
    LibraryTable,
    concat_tables,
    current_descriptors,
    empty_rows,
    read_table,
    write_table,
)
from .scan import FileEntry

__all__ = ["DESCRIPTOR_PROVENANCE", "Checkpoint", "empty_table", "lasting_failures"]

#: What a library file (and a checkpoint part) records about its descriptors.
DESCRIPTOR_PROVENANCE = {"version": DESCRIPTOR_VERSION, "features": list(FEATURE_NAMES)}


def empty_table(dimension: int) -> LibraryTable:
    """No rows, with vectors of the library's widths."""
    return LibraryTable(empty_rows(), np.zeros((0, dimension), np.float32),
                        descriptors=np.zeros((0, len(FEATURE_NAMES)), np.float32),
                        thumbnails=np.zeros((0, THUMBNAIL_BINS), np.uint8))


def lasting_failures(records: dict[str, dict], found: dict[str, FileEntry]) -> dict[str, dict]:
    """Failure records a build keeps: files that cannot be decoded and are still unchanged. A
    passing failure (``retry``: out of memory, an error inside the model) is tried again."""
    return {path: record for path, record in records.items()
            if not record.get("retry") and path in found
            and found[path].size == record.get("size") and found[path].mtime == record.get("mtime")}


class Checkpoint:
    """Finished batches saved beside the output while a build runs; gone when it completes."""

    def __init__(self, target: str | None, model_info: dict, *, analysis: dict,
                 every_s: float) -> None:
        self.folder = (None if target is None else
                       os.path.join(os.path.dirname(target),
                                    f".{os.path.basename(target)}.partial"))
        self.model_info = model_info
        self.analysis = analysis  # the settings' record: parts made otherwise are not reused
        self.every_s = float(every_s)
        self.dimension = int(model_info.get("dimension", 0))
        self.parts: list[LibraryTable] = []
        self.failures: dict[str, dict] = {}
        self.last_write = time.monotonic()
        self.count = 0

    def load(self, files: list[FileEntry]) -> tuple[LibraryTable, dict[str, dict]]:
        """Rows of an interrupted earlier build whose files are still unchanged."""
        if self.folder is None or not os.path.isdir(self.folder):
            return empty_table(self.dimension), {}
        found = {entry.path: entry for entry in files}
        parts, failures = [], {}
        for name in sorted(os.listdir(self.folder)):
            if not name.endswith(".parquet") or name.startswith(".tmp-"):
                continue
            try:
                table = read_table(os.path.join(self.folder, name))
            except LibraryError:
                continue  # a part cut short by the kill: its batch is simply redone
            descriptors = current_descriptors(table)
            if (table.provenance.get("embedder") != self.model_info or descriptors is None
                    or table.provenance.get("analysis", self.analysis) != self.analysis):
                continue  # another model or other settings: analysed again
            rows = table.rows
            keep = np.array([p in found and found[p].size == s and found[p].mtime == m
                             for p, s, m in zip(rows["path"], rows["size"], rows["mtime"])],
                            dtype=bool)
            parts.append(LibraryTable(rows, table.embeddings, descriptors=descriptors,
                                      thumbnails=table.thumbnails, digests=table.digests,
                                      regions=table.regions).subset(keep))
            failures.update(lasting_failures(table.provenance.get("failures", {}), found))
        self.count = len(parts)
        merged = concat_tables(parts, empty=empty_table(self.dimension))
        unique = ~merged.rows["path"].duplicated().to_numpy()
        return merged.subset(unique), failures

    def add(self, part: LibraryTable, failures: dict[str, dict]) -> None:
        """Keep a finished batch; write the kept batches out every few seconds."""
        if self.folder is None:
            return
        self.parts.append(part)
        self.failures.update(failures)
        if time.monotonic() - self.last_write >= self.every_s:
            self.flush()

    def flush(self) -> None:
        if self.folder is None or not (self.parts or self.failures):
            return
        os.makedirs(self.folder, exist_ok=True)
        merged = concat_tables(self.parts, empty=empty_table(self.dimension))
        table = LibraryTable(
            rows=merged.rows, embeddings=merged.embeddings, descriptors=merged.descriptors,
            thumbnails=merged.thumbnails, digests=merged.digests, regions=merged.regions,
            provenance={"embedder": self.model_info, "descriptors": DESCRIPTOR_PROVENANCE,
                        "analysis": self.analysis, "failures": self.failures},
        )
        name = f"part-{os.getpid()}-{self.count:06d}.parquet"
        write_table(table, os.path.join(self.folder, name))
        self.count += 1
        self.parts, self.failures = [], {}
        self.last_write = time.monotonic()

    def flush_after_failure(self) -> None:
        """Save what is kept when the build stops on an error or a Ctrl-C, without letting a
        second failure (a full disk) hide the first."""
        with contextlib.suppress(OSError, LibraryError):
            self.flush()

    def discard(self) -> None:
        if self.folder is not None and os.path.isdir(self.folder):
            shutil.rmtree(self.folder, ignore_errors=True)
