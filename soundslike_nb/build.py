"""Folders → library file: scan, embed what is new or changed, write atomically.

The build is incremental (an unchanged file is never re-embedded) and resumable: while it runs,
finished batches are saved as checkpoint parts in a hidden folder beside the output, so a build
that is killed loses at most the last few seconds of work, and the previous library file stays
intact until the new one replaces it in one rename.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from ._checkpoint import DESCRIPTOR_PROVENANCE, Checkpoint, empty_table, lasting_failures
from ._locks import build_lock, write_lock
from ._moves import digests_of, find_moves
from ._version import __version__
from .analysis import AnalysisSettings, Analyzer, Batch, Failure
from .descriptors import DESCRIPTOR_VERSION, FEATURE_NAMES
from .embedders import DEFAULT_EMBEDDER, Embedder
from .errors import LibraryError
from .libfile import (
    ROW_COLUMNS,
    LibraryTable,
    concat_tables,
    current_descriptors,
    empty_rows,
    read_table,
    read_tags,
    write_table,
)
from .library import Library
from .model_choice import load_model, model_for_library, refuse_unnamed
from .scan import FileEntry, display_name, scan_folders

__all__ = ["BuildReport", "build_library"]


@dataclass
class BuildReport:
    """What a build did: counts, failures (path → reason), audio seconds embedded, wall time.
    ``moved`` counts files found at a new path with the same content: their rows (vectors and
    tags) were kept, not analysed again."""

    embedded: int = 0
    unchanged: int = 0
    removed: int = 0
    resumed: int = 0
    moved: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    #: Files that failed part way through decoding: what was read is in the library, and
    #: this says where it stopped and why (path → reason).
    partial: dict[str, str] = field(default_factory=dict)
    audio_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio embedded per second of wall time."""
        return self.audio_seconds / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for people."""
        speed = (f" ({self.audio_seconds:.0f} s of audio, "
                 f"{_times(self.realtime_factor)} real time)" if self.embedded else "")
        return (f"{self.embedded} embedded{speed}, {self.unchanged} unchanged, "
                f"{self.resumed} resumed, {self.moved} moved, {self.removed} removed, "
                f"{len(self.failures)} failed"
                + (f", {len(self.partial)} read in part" if self.partial else "")
                + f" in {self.seconds:.1f} s")


def build_library(
    folders: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    out: str | os.PathLike | None = None,
    embedder: str | os.PathLike | Embedder | None = None,
    token: str | None = None,
    device: str | None = None,
    progress: bool = True,
    settings: AnalysisSettings | None = None,
    client=None,
    checkpoint_every_s: float = 20.0,
    chunk_files: int = 64,
) -> Library:
    """Scan folders for audio, analyse new and changed files, and write the library file.

    One build writes a library file at a time: a second one (another process, the notebook's
    rescan) waits for the first, then starts from what it wrote. Reading is never blocked.

    Args:
        folders: one folder or several, scanned recursively.
        out: the ``.parquet`` file to create or update (atomically); ``None`` keeps it in memory.
        embedder: model name, checkpoint path or :class:`Embedder`. Default: ``"aisfx"`` for a
            new library; an existing one keeps its own model, which loads unasked only if it is
            the shipped one (any other must be named here).
        token: Hugging Face token for gated pyannote models (default ``$HF_TOKEN``).
        device: ``"cpu"``, ``"cuda"``...; default a GPU when there is one.
        progress: show a progress bar (tqdm; works in notebooks and terminals).
        settings: how sounds are analysed (:class:`~soundslike_nb.analysis.AnalysisSettings`);
            default: what an existing library recorded, else the defaults.
        client: a ``dask.distributed.Client`` to analyse on a cluster (``distributed.py``).
        checkpoint_every_s: seconds between checkpoints of finished batches.
        chunk_files: files per Dask task.

    Returns:
        The :class:`Library`; ``library.report`` is a :class:`BuildReport`.

    Example:
        >>> lib = build_library("data/demo", out="demo.parquet")  # doctest: +SKIP
        >>> lib.report.summary()  # doctest: +SKIP
        '56 embedded (28 s of audio, 30x real time), 0 unchanged, ...'
    """
    roots = [folders] if isinstance(folders, (str, os.PathLike)) else list(folders)
    if not roots:
        raise LibraryError("no folder given to index")
    target = None if out is None else os.path.abspath(os.fspath(out))
    with build_lock(target, progress=progress):
        return _build(roots, target, embedder=embedder, token=token, device=device,
                      progress=progress, settings=settings, client=client,
                      checkpoint_every_s=checkpoint_every_s, chunk_files=chunk_files)


def _build(roots, target, *, embedder, token, device, progress, settings, client,
           checkpoint_every_s, chunk_files) -> Library:
    started = time.perf_counter()
    previous = _read_previous(target)
    scan = scan_folders(roots)
    root_paths = [os.path.abspath(os.fspath(root)) for root in roots]
    report = BuildReport()
    settings = _settings_for(previous, settings, device, target)

    # With a cluster, the workers analyse: this process needs the model's provenance only.
    model = _named_model(previous, embedder, token=token, target=target,
                         device="cpu" if client is not None else device)
    model_info = model.provenance if model is not None else previous.provenance["embedder"]

    kept, gone, old_failures, outside = _carry_over(previous, scan.files, root_paths, report)
    digested = _digest_tagged(kept)
    files = scan.files + outside
    checkpoint = Checkpoint(target, model_info, analysis=settings.record(),
                            every_s=checkpoint_every_s)
    resumed, resumed_failures = checkpoint.load(files)
    report.resumed = len(resumed.rows)
    failures = {**old_failures, **resumed_failures,
                **_with_stat({path: Failure(reason) for path, reason in scan.failures.items()})}
    known = set(previous.rows["path"]) if previous is not None else set()
    seen = known | set(resumed.rows["path"]) | set(failures)
    moved, moved_from = find_moves(gone, [entry for entry in files if entry.path not in seen])
    report.moved = len(moved.rows)
    report.removed -= report.moved
    done = set(kept.rows["path"]) | set(resumed.rows["path"]) | set(failures) | set(moved_from)
    todo = [entry for entry in files if entry.path not in done]

    parts = [kept, moved, resumed]
    # Files read in part earlier stay so while their row stays (unchanged, or moved).
    read_in_part = previous.provenance.get("partial", {}) if previous is not None else {}
    partial = {path: read_in_part[moved_from.get(path, path)]
               for path in [*kept.rows["path"], *moved.rows["path"]]
               if moved_from.get(path, path) in read_in_part}
    if todo:
        if client is None:
            if model is None:  # the library's own model: loads unasked only if shipped
                model = model_for_library(model_info, token=token, device=device,
                                          where=target or "")
            batches = Analyzer(model, settings).analyse_files(todo)
        else:
            from .distributed import analyse_on_cluster

            # Each worker loads the model from its name once; an Embedder object is sent.
            named = embedder if embedder is not None else _source_of(model_info)
            if embedder is None:  # the same rule as above: only the shipped model unasked
                refuse_unnamed(model_info, where=target or "")
            batches = analyse_on_cluster(client, todo, named, token=token, settings=settings,
                                         chunk_files=chunk_files)
        bar = _progress_bar(todo, progress)
        entries = {entry.path: entry for entry in todo}
        files_done = 0
        try:
            for batch in batches:
                rows = _rows_of(batch)
                part = LibraryTable(rows, batch.embeddings, descriptors=batch.descriptors,
                                    thumbnails=batch.thumbnails,
                                    digests=digests_of(rows["path"].tolist()),
                                    regions=batch.regions if settings.regions else None)
                parts.append(part)
                batch_failures = _with_stat(batch.failures, entries)
                failures.update(batch_failures)
                partial.update({item.entry.path: item.info.fault for item in batch.decoded
                                if item.info.fault})
                checkpoint.add(part, batch_failures)
                report.embedded += len(part.rows)
                report.audio_seconds += batch.audio_seconds
                done_paths = [*part.rows["path"], *batch.failures]
                files_done += len(done_paths)
                _advance(bar, done_paths, entries, report, started, files_done=files_done,
                         files_total=len(todo))
        except BaseException:
            checkpoint.flush_after_failure()  # what finished is kept for the next run
            raise
        finally:
            if bar is not None:
                bar.close()

    merged = concat_tables(parts, empty=empty_table(int(model_info["dimension"])))
    order = np.argsort(merged.rows["path"].to_numpy(), kind="stable")
    report.failures = {path: record["reason"] for path, record in failures.items()}
    report.partial = partial
    provenance = _provenance(previous, model_info, settings, root_paths, failures)
    if partial:
        provenance["partial"] = partial
    table = replace(merged.subset(order), provenance=provenance)
    if target is None:
        pass
    elif previous is not None and not digested and _same_library(previous, table, report):
        previous.tags = _current_tags(target, previous, {})  # tags written while we built
        table = previous  # nothing changed: the file is left as it is (its mtime too)
    else:
        # Tags edited while this build ran are on disk: merged in under the write lock, so
        # neither the build's rows nor those labels are lost.
        with write_lock(target):
            table.tags = _current_tags(target, table, moved_from)
            write_table(table, target)
    if target is not None:
        checkpoint.discard()
    report.seconds = time.perf_counter() - started
    analyzer = Analyzer(model, settings) if model is not None else None
    library = Library(table, path=target, analyzer=analyzer)
    library.report = report
    return library


def _named_model(previous: LibraryTable | None, embedder, *, token: str | None,
                 device: str | None, target: str | None) -> Embedder | None:
    """The model named for this build, checked against the library's; for a new library the
    default when none is named; ``None`` when the library's own model will do: it is loaded
    only if there is something to analyse (and unasked only if it is the shipped one)."""
    if previous is None:
        return load_model(embedder if embedder is not None else DEFAULT_EMBEDDER, token=token,
                          device=device)
    if embedder is None:
        return None
    return model_for_library(previous.provenance["embedder"], embedder=embedder, token=token,
                             device=device, where=target or "")


def _settings_for(previous: LibraryTable | None, settings: AnalysisSettings | None,
                  device: str | None, target: str | None) -> AnalysisSettings:
    """The analysis settings of this build: the library's own, unless it has none yet."""
    if previous is None:
        if settings is None:
            return AnalysisSettings(device=device)
        return settings if device is None else replace(settings, device=device)
    # A library with older descriptors is analysed again with this version's (_carry_over).
    recorded = replace(AnalysisSettings.from_record(previous.provenance.get("analysis")),
                       descriptor_version=DESCRIPTOR_VERSION,
                       device=device if settings is None else settings.device or device)
    if settings is not None and settings.record() != recorded.record():
        raise LibraryError(
            f"{target!r} was analysed with {recorded.record()}, not {settings.record()}: "
            "write the library with other settings to a new file")
    return recorded


def _read_previous(target: str | None) -> LibraryTable | None:
    if target is None or not os.path.exists(target):
        return None
    return read_table(target)


def _source_of(model_info: dict) -> str:
    """What to pass to ``get_embedder`` to get the model a provenance record describes."""
    return str(model_info.get("source") or model_info["id"])


def _carry_over(previous: LibraryTable | None, files: list[FileEntry], roots: list[str],
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
    if descriptors is None or _stale_regions(previous):
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


def _stale_regions(previous: LibraryTable) -> bool:
    """Whether the library's regions were cut by another version of the segmentation (its
    sounds are then analysed again, once, like stale descriptors)."""
    from .segmentation import REGIONS_VERSION

    recorded = (previous.provenance.get("analysis") or {}).get("regions")
    return bool(recorded) and recorded.get("version") != REGIONS_VERSION


def _digest_tagged(kept: LibraryTable) -> int:
    """Give a digest to kept rows that carry tags but have none (written before digests), so
    that their tags follow them when they move; untagged rows get one when next analysed (not
    hashing a whole library on its first rescan). How many were hashed."""
    lacking = np.flatnonzero((kept.digests == b"")
                             & np.frompyfunc(len, 1, 1)(kept.tags).astype(bool))
    if len(lacking):
        kept.digests[lacking] = digests_of(kept.rows["path"].to_numpy()[lacking].tolist())
    return len(lacking)


def _current_tags(target: str, table: LibraryTable, moved_from: dict[str, str]) -> np.ndarray:
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


def _with_stat(failures: dict[str, Failure], entries: dict[str, FileEntry] | None = None
               ) -> dict[str, dict]:
    """Failure records carry size and mtime, so an unchanged bad file is not retried."""
    records = {}
    for path, failure in failures.items():
        entry = entries.get(path) if entries else None
        records[path] = {"reason": failure.reason, "retry": failure.retry,
                         "size": entry.size if entry else None,
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


def _same_library(previous: LibraryTable, table: LibraryTable, report: BuildReport) -> bool:
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


def _provenance(previous: LibraryTable | None, model_info: dict, settings: AnalysisSettings,
                roots: list[str], failures: dict[str, dict]) -> dict:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    old = previous.provenance if previous is not None else {}
    return {
        "created": old.get("created", now),
        "updated": now,
        "soundslike_nb_version": __version__,
        "embedder": model_info,
        "analysis": {**settings.record(), "frontend": model_info.get("frontend")},
        "descriptors": DESCRIPTOR_PROVENANCE,
        "roots": sorted(set(old.get("roots", [])) | set(roots)),
        "failures": failures,
    }


def _times(factor: float) -> str:
    """``0.4x``, ``12x``: a speed factor people read at a glance."""
    return f"{factor:.1f}x" if factor < 10 else f"{factor:.0f}x"


def _progress_bar(todo: list[FileEntry], enabled: bool):
    """Progress in bytes of audio files, not in files: a batch of long tracks moves the bar as
    much as their size, so its rate and time left stay honest on libraries with long files."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=sum(entry.size for entry in todo), unit="B", unit_scale=True,
                unit_divisor=1024, desc=f"analysing {len(todo)} files", dynamic_ncols=True)


def _advance(bar, paths: list[str], entries: dict[str, FileEntry], report: BuildReport,
             started: float, *, files_done: int, files_total: int) -> None:
    if bar is None:
        return
    elapsed = max(time.perf_counter() - started, 1e-9)
    bar.set_postfix_str(f"{files_done}/{files_total} files, "
                        f"{_times(report.audio_seconds / elapsed)} real time", refresh=False)
    bar.update(sum(entries[path].size for path in paths if path in entries))
