"""Folders → library file: scan, embed what is new or changed, write atomically.

The build is incremental (an unchanged file is never re-embedded) and resumable: while it runs,
finished batches are saved as checkpoint parts in a hidden folder beside the output, so a build
that is killed loses at most the last few seconds of work, and the previous library file stays
intact until the new one replaces it in one rename.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from . import __version__
from .descriptors import DESCRIPTOR_VERSION, FEATURE_NAMES
from .embedders import DEFAULT_EMBEDDER, Embedder, get_embedder
from .errors import EmbedderError, LibraryError
from .libfile import (
    ROW_COLUMNS,
    LibraryTable,
    concat_tables,
    empty_rows,
    read_table,
    write_table,
)
from .library import Library, current_descriptors
from .pipeline import DEFAULT_MAX_ANALYSIS_S, Batch, embed_files
from .scan import FileEntry, display_name, scan_folders

__all__ = ["BuildReport", "build_library"]

_CHECKPOINT_SECONDS = 20.0
_DESCRIPTOR_PROVENANCE = {"version": DESCRIPTOR_VERSION, "features": list(FEATURE_NAMES)}


@dataclass
class BuildReport:
    """What a build did: counts, failures (path → reason), audio seconds embedded, wall time."""

    embedded: int = 0
    unchanged: int = 0
    removed: int = 0
    resumed: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    audio_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio embedded per second of wall time."""
        return self.audio_seconds / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for people."""
        speed = (f" ({self.audio_seconds:.0f} s of audio, {self.realtime_factor:.0f}x real time)"
                 if self.embedded else "")
        return (f"{self.embedded} embedded{speed}, {self.unchanged} unchanged, "
                f"{self.resumed} resumed, {self.removed} removed, {len(self.failures)} failed "
                f"in {self.seconds:.1f} s")


def build_library(
    folders: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    out: str | os.PathLike | None = None,
    embedder: str | os.PathLike | Embedder | None = None,
    token: str | None = None,
    device: str | None = None,
    progress: bool = True,
    max_duration: float | None = DEFAULT_MAX_ANALYSIS_S,
    client=None,
) -> Library:
    """Scan folders for audio, embed new and changed files, and write the library file.

    Args:
        folders: one folder or several, scanned recursively.
        out: the ``.parquet`` file to create or update (atomically); ``None`` keeps it in memory.
        embedder: model name, checkpoint path or :class:`Embedder`; default: the library's own
            model when ``out`` exists, else ``"aisfx"``.
        token: Hugging Face token for gated pyannote models (default ``$HF_TOKEN``).
        device: ``"cpu"``, ``"cuda"``...; default a GPU when there is one.
        progress: show a progress bar (tqdm; works in notebooks and terminals).
        max_duration: embed at most this many seconds from the start of each file.
        client: a ``dask.distributed.Client`` to embed on a cluster (see ``distributed.py``).

    Returns:
        The :class:`Library`; ``library.report`` is a :class:`BuildReport`.

    Example:
        >>> lib = build_library("data/demo", out="demo.parquet")  # doctest: +SKIP
        >>> lib.report.summary()  # doctest: +SKIP
        '56 embedded (28 s of audio, 30x real time), 0 unchanged, ...'
    """
    started = time.perf_counter()
    roots = [folders] if isinstance(folders, (str, os.PathLike)) else list(folders)
    if not roots:
        raise LibraryError("no folder given to index")
    target = None if out is None else os.path.abspath(os.fspath(out))
    previous = _read_previous(target)
    scan = scan_folders(roots)
    root_paths = [os.path.abspath(os.fspath(root)) for root in roots]
    report = BuildReport()

    # With a cluster the workers embed; this process only needs the model's provenance.
    model = _resolve_embedder(embedder, previous, token=token,
                              device="cpu" if client is not None else device)
    model_info = model.provenance if model is not None else previous.provenance["embedder"]
    if previous is not None and model is not None:
        Library(previous, path=target).check_embedder(model)

    kept, old_failures, outside = _carry_over(previous, scan.files, root_paths, report)
    files = scan.files + outside
    checkpoint = _Checkpoint(target, model_info)
    resumed, resumed_failures = checkpoint.load(files)
    report.resumed = len(resumed.rows)
    failures = {**old_failures, **resumed_failures, **_with_stat(scan.failures)}
    done = set(kept.rows["path"]) | set(resumed.rows["path"]) | set(failures)
    todo = [entry for entry in files if entry.path not in done]

    parts = [kept, resumed]
    if todo:
        # the model as named: the library's own unless another was asked for
        named = embedder if embedder is not None else _source_of(model_info)
        if client is None:
            if model is None:
                model = _resolve_embedder(named, None, token=token, device=device)
            batches = embed_files(todo, model, max_duration=max_duration)
        else:
            from .distributed import embed_on_cluster

            # Each worker loads the model from its name once; an Embedder object is sent.
            batches = embed_on_cluster(client, todo, named, token=token, device=device,
                                       max_duration=max_duration)
        bar = _progress_bar(todo, progress)
        try:
            for batch in batches:
                part = LibraryTable(_rows_of(batch), batch.embeddings,
                                    descriptors=batch.descriptors)
                parts.append(part)
                batch_failures = _with_stat(batch.failures, {e.path: e for e in todo})
                failures.update(batch_failures)
                checkpoint.add(part, batch_failures)
                report.embedded += len(part.rows)
                report.audio_seconds += batch.audio_seconds
                _advance(bar, len(part.rows) + len(batch.failures), report, started)
        except BaseException:
            checkpoint.flush_after_failure()  # what finished is kept for the next run
            raise
        finally:
            if bar is not None:
                bar.close()

    merged = concat_tables(parts, empty=_empty(int(model_info["dimension"])))
    order = np.argsort(merged.rows["path"].to_numpy(), kind="stable")
    report.failures = {path: record["reason"] for path, record in failures.items()}
    provenance = _provenance(previous, model_info, root_paths, failures)
    table = LibraryTable(rows=merged.rows.iloc[order].reset_index(drop=True),
                         embeddings=merged.embeddings[order], provenance=provenance,
                         descriptors=merged.descriptors[order])
    if target is not None:
        write_table(table, target)
        checkpoint.discard()
    report.seconds = time.perf_counter() - started
    library = Library(table, path=target, embedder=model)
    library.report = report
    return library


def _empty(dimension: int) -> LibraryTable:
    """No rows, with vectors of the library's widths."""
    return LibraryTable(empty_rows(), np.zeros((0, dimension), np.float32),
                        descriptors=np.zeros((0, len(FEATURE_NAMES)), np.float32))


def _read_previous(target: str | None) -> LibraryTable | None:
    if target is None or not os.path.exists(target):
        return None
    return read_table(target)


def _resolve_embedder(embedder, previous: LibraryTable | None, *, token, device):
    """The model to use; ``None`` when the previous library's model will do and none is named,
    so that an up-to-date library is checked without loading any model."""
    if embedder is None:
        if previous is not None:
            return None
        embedder = DEFAULT_EMBEDDER
    if isinstance(embedder, (str, os.PathLike)):
        return get_embedder(embedder, token=token, device=device)
    if not all(hasattr(embedder, name) for name in ("embed", "provenance", "sample_rate")):
        raise EmbedderError(f"{embedder!r} is neither a model name nor an Embedder")
    return embedder


def _source_of(model_info: dict) -> str:
    """What to pass to ``get_embedder`` to get the model a provenance record describes."""
    return str(model_info.get("source") or model_info["id"])


def _carry_over(previous: LibraryTable | None, files: list[FileEntry], roots: list[str],
                report: BuildReport) -> tuple[LibraryTable, dict[str, dict], list[FileEntry]]:
    """Rows and failures of the previous library that stay: unchanged files, and files outside
    the folders scanned now that still exist. A library without current descriptors (written by
    an older version) keeps no rows: its sounds are analysed again, once, those outside the
    folders scanned now included (the list returned)."""
    if previous is None:
        return _empty(0), {}, []
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
    report.removed = int(sum(1 for path in rows["path"][~keep] if path not in found))
    outside: list[FileEntry] = []
    if descriptors is None:
        outside = [FileEntry(path, int(size), float(mtime)) for path, size, mtime, stay in
                   zip(rows["path"], rows["size"], rows["mtime"], keep)
                   if stay and path not in found]
        keep[:] = False
        descriptors = np.zeros((len(rows), len(FEATURE_NAMES)), np.float32)
    report.unchanged = int(keep.sum())
    failures = {path: record for path, record in previous.provenance.get("failures", {}).items()
                if path in found and found[path].size == record.get("size")
                and found[path].mtime == record.get("mtime")}
    current = LibraryTable(rows, previous.embeddings, descriptors=descriptors)
    return current.subset(keep), failures, outside


def _under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _with_stat(failures: dict[str, str], entries: dict[str, FileEntry] | None = None
               ) -> dict[str, dict]:
    """Failure records carry size and mtime, so an unchanged bad file is not retried."""
    records = {}
    for path, reason in failures.items():
        entry = entries.get(path) if entries else None
        records[path] = {"reason": reason, "size": entry.size if entry else None,
                         "mtime": entry.mtime if entry else None}
    return records


def _rows_of(batch: Batch) -> pd.DataFrame:
    items = batch.decoded
    frame = pd.DataFrame({
        "name": [display_name(item.entry.path) for item in items],
        "path": [item.entry.path for item in items],
        "duration": [item.info.duration for item in items],
        "sample_rate": [item.info.sample_rate for item in items],
        "channels": [item.info.channels for item in items],
        "frames": [item.info.frames for item in items],
        "size": [item.entry.size for item in items],
        "mtime": [item.entry.mtime for item in items],
    })
    return frame.astype(ROW_COLUMNS) if len(frame) else empty_rows()


def _provenance(previous: LibraryTable | None, model_info: dict, roots: list[str],
                failures: dict[str, dict]) -> dict:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    old = previous.provenance if previous is not None else {}
    return {
        "created": old.get("created", now),
        "updated": now,
        "soundslike_nb_version": __version__,
        "embedder": model_info,
        "descriptors": _DESCRIPTOR_PROVENANCE,
        "roots": sorted(set(old.get("roots", [])) | set(roots)),
        "failures": failures,
    }


def _progress_bar(todo: list[FileEntry], enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=len(todo), unit="file", desc="embedding", dynamic_ncols=True)


def _advance(bar, count: int, report: BuildReport, started: float) -> None:
    if bar is None:
        return
    elapsed = max(time.perf_counter() - started, 1e-9)
    bar.set_postfix_str(f"{report.audio_seconds / elapsed:.0f}x real time", refresh=False)
    bar.update(count)


class _Checkpoint:
    """Finished batches saved beside the output while a build runs; gone when it completes."""

    def __init__(self, target: str | None, model_info: dict) -> None:
        self.folder = (None if target is None else
                       os.path.join(os.path.dirname(target),
                                    f".{os.path.basename(target)}.partial"))
        self.model_info = model_info
        self.dimension = int(model_info.get("dimension", 0))
        self.parts: list[LibraryTable] = []
        self.failures: dict[str, dict] = {}
        self.last_write = time.monotonic()
        self.count = 0

    def load(self, files: list[FileEntry]) -> tuple[LibraryTable, dict[str, dict]]:
        """Rows of an interrupted earlier build whose files are still unchanged."""
        if self.folder is None or not os.path.isdir(self.folder):
            return _empty(self.dimension), {}
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
            if table.provenance.get("embedder") != self.model_info or descriptors is None:
                continue
            rows = table.rows
            keep = np.array([p in found and found[p].size == s and found[p].mtime == m
                             for p, s, m in zip(rows["path"], rows["size"], rows["mtime"])],
                            dtype=bool)
            parts.append(LibraryTable(rows, table.embeddings, descriptors=descriptors).subset(keep))
            failures.update({path: record for path, record in
                             table.provenance.get("failures", {}).items()
                             if path in found and found[path].size == record.get("size")
                             and found[path].mtime == record.get("mtime")})
        self.count = len(parts)
        merged = concat_tables(parts, empty=_empty(self.dimension))
        unique = ~merged.rows["path"].duplicated().to_numpy()
        return merged.subset(unique), failures

    def add(self, part: LibraryTable, failures: dict[str, dict]) -> None:
        """Keep a finished batch; write the kept batches out every few seconds."""
        if self.folder is None:
            return
        self.parts.append(part)
        self.failures.update(failures)
        if time.monotonic() - self.last_write >= _CHECKPOINT_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.folder is None or not (self.parts or self.failures):
            return
        os.makedirs(self.folder, exist_ok=True)
        merged = concat_tables(self.parts, empty=_empty(self.dimension))
        table = LibraryTable(
            rows=merged.rows, embeddings=merged.embeddings, descriptors=merged.descriptors,
            provenance={"embedder": self.model_info, "descriptors": _DESCRIPTOR_PROVENANCE,
                        "failures": self.failures},
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
