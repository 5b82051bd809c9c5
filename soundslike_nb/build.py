"""Folders → library file: scan, embed what is new or changed, write atomically.

The build is incremental (an unchanged file is never re-embedded) and resumable: while it runs,
finished batches are saved as checkpoint parts in a hidden folder beside the output, so a build
that is killed loses at most the last few seconds of work, and the previous library file stays
intact until the new one replaces it in one rename.

This module runs a build; what it keeps of the file it updates is in
:mod:`~soundslike_nb._carry_over`, its report and progress bar in
:mod:`~soundslike_nb._build_report`, checkpoints in :mod:`~soundslike_nb._checkpoint`, moved
files in :mod:`~soundslike_nb._moves`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from ._build_report import BuildReport, advance, progress_bar
from ._carry_over import carry_over, current_tags, digest_tagged, read_previous, same_library
from ._checkpoint import DESCRIPTOR_PROVENANCE, Checkpoint, empty_table
from ._locks import build_lock, write_lock
from ._moves import digests_of, find_moves
from ._version import __version__
from .analysis import AnalysisSettings, Analyzer, Batch, Failure
from .descriptors import DESCRIPTOR_VERSION
from .embedders import DEFAULT_EMBEDDER, Embedder
from .errors import LibraryError
from .libfile import (
    ROW_COLUMNS,
    LibraryTable,
    concat_tables,
    empty_rows,
    write_table,
)
from .library import Library
from .model_choice import load_model, model_for_library, refuse_unnamed
from .scan import FileEntry, display_name, scan_folders

__all__ = ["BuildReport", "build_library"]


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
    previous = read_previous(target)
    scan = scan_folders(roots)
    root_paths = [os.path.abspath(os.fspath(root)) for root in roots]
    report = BuildReport()
    settings = _settings_for(previous, settings, device, target)

    # With a cluster, the workers analyse: this process needs the model's provenance only.
    model = _named_model(previous, embedder, token=token, target=target,
                         device="cpu" if client is not None else device)
    model_info = model.provenance if model is not None else previous.provenance["embedder"]

    kept, gone, old_failures, outside = carry_over(previous, scan.files, root_paths, report)
    digested = digest_tagged(kept)
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
        bar = progress_bar(todo, progress)
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
                advance(bar, done_paths, entries, report, started, files_done=files_done,
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
    elif previous is not None and not digested and same_library(previous, table, report):
        previous.tags = current_tags(target, previous, {})  # tags written while we built
        table = previous  # nothing changed: the file is left as it is (its mtime too)
    else:
        # Tags edited while this build ran are on disk: merged in under the write lock, so
        # neither the build's rows nor those labels are lost.
        with write_lock(target):
            table.tags = current_tags(target, table, moved_from)
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
    # A library with older descriptors is analysed again with this version's (carry_over).
    recorded = replace(AnalysisSettings.from_record(previous.provenance.get("analysis")),
                       descriptor_version=DESCRIPTOR_VERSION,
                       device=device if settings is None else settings.device or device)
    if settings is not None and settings.record() != recorded.record():
        raise LibraryError(
            f"{target!r} was analysed with {recorded.record()}, not {settings.record()}: "
            "write the library with other settings to a new file")
    return recorded


def _source_of(model_info: dict) -> str:
    """What to pass to ``get_embedder`` to get the model a provenance record describes."""
    return str(model_info.get("source") or model_info["id"])


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
