"""Near-duplicate groups of a library, each with the copy to keep and why.

Two stages: candidates from the vectors (``duplicate_candidates``: neighbours at least
``threshold`` alike and about as long), then the audio check (``audio_match``: the decoded
signals must line up sample by sample), because distinct takes of one sound can be as close
as copies in embedding space. Groups are the connected components of the confirmed pairs.
Only candidates are decoded, so the cost of the audio check follows the number of copies, not
the size of the library.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .audio_match import MatchSettings, correlation, decode_for_match
from .duplicate_candidates import CandidateSettings, candidate_pairs, components
from .errors import AudioError

__all__ = ["DUPLICATE_COLUMNS", "DuplicateSettings", "find_duplicates", "group_duplicates"]

logger = logging.getLogger(__name__)

#: Failed audio checks between two groups of a candidate component after which the rest of
#: their pairs are skipped: they are other takes, and each check decodes and correlates.
_MAX_FAILURES = 3

#: Columns of ``find_duplicates``' table, in order (``tags`` follows when the library has it).
DUPLICATE_COLUMNS = ["group", "keep", "path", "name", "reason", "duration", "sample_rate",
                     "bit_depth", "channels", "format", "size", "similarity", "correlation",
                     "row"]

#: Bits per sample of soundfile subtypes; lossy codecs have none (0: below any PCM).
_BIT_DEPTHS = {"PCM_S8": 8, "PCM_U8": 8, "ULAW": 8, "ALAW": 8, "PCM_16": 16, "PCM_24": 24,
               "PCM_32": 32, "FLOAT": 32, "DOUBLE": 64, "ALAC_16": 16, "ALAC_20": 20,
               "ALAC_24": 24, "ALAC_32": 32, "DWVW_12": 12, "DWVW_16": 16, "DWVW_24": 24}
_LOSSY = {"VORBIS", "OPUS", "MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III", "G721_32",
          "G723_24", "G723_40", "GSM610", "IMA_ADPCM", "MS_ADPCM", "VOX_ADPCM"}


@dataclass(frozen=True)
class DuplicateSettings:
    """Both stages' settings: ``candidates`` (vectors) and ``match`` (audio).

    Example:
        >>> DuplicateSettings().match.min_correlation
        0.92
    """

    candidates: CandidateSettings = field(default_factory=CandidateSettings)
    match: MatchSettings = field(default_factory=MatchSettings)


@dataclass
class _Member:
    row: int
    path: str
    duration: float
    sample_rate: int = 0
    bit_depth: int = 0
    channels: int = 0
    format: str = ""
    lossless: bool = False
    start_s: float = 0.0  # where it starts in the group's recording (alignment)

    def describe(self) -> str:
        depth = f"{self.bit_depth}-bit" if self.lossless else "lossy"
        return f"{self.format} {self.sample_rate} Hz {depth}, {self.duration:.3f} s"


def find_duplicates(library, *, threshold: float = 0.9, min_correlation: float = 0.92,
                    check_audio: bool = True, settings: DuplicateSettings | None = None,
                    progress: bool = False) -> pd.DataFrame:
    """Groups of near-identical sounds in a library, with a suggested keeper for each.

    Args:
        library: a :class:`~soundslike_nb.library.Library` (its ``rows`` and ``embeddings``).
        threshold: lowest cosine of the embeddings for a pair to be checked at all.
        min_correlation: lowest correlation of the decoded signals for a pair to be copies.
        check_audio: ``False`` groups on vectors and durations alone (fast, but distinct
            takes of one sound may merge).
        settings: everything else (:class:`DuplicateSettings`); ``threshold`` and
            ``min_correlation`` override its values.
        progress: show a progress bar over the audio check.

    Returns:
        One row per file that has at least one copy (see :data:`DUPLICATE_COLUMNS`): ``group``
        (1 = largest), ``keep`` (the suggested keeper of its group), ``reason`` (why it is
        kept, or why not), the file's format, ``similarity`` (embedding cosine) and
        ``correlation`` (audio) to the keeper, ``row`` (library row position), and ``tags``
        when the library has them. ``.attrs["unreadable"]`` maps files that could not be
        checked (moved, deleted, corrupt) to the reason.

    Example:
        >>> groups = find_duplicates(load_library("demo.parquet"))  # doctest: +SKIP
        >>> groups[["group", "keep", "path", "reason"]]  # doctest: +SKIP
    """
    rows = library.rows
    table = group_duplicates(rows["path"].tolist(), library.embeddings,
                             rows["duration"].to_numpy(), threshold=threshold,
                             min_correlation=min_correlation, check_audio=check_audio,
                             settings=settings, progress=progress,
                             names=rows["name"].tolist() if "name" in rows else None)
    tags = getattr(library, "tags", None)  # labels, in libraries that have them
    if isinstance(tags, pd.Series) and len(tags) == len(rows):
        table["tags"] = tags.to_numpy()[table["row"].to_numpy()] if len(table) else []
    return table


def group_duplicates(paths: Sequence[str], embeddings: np.ndarray, durations_s: np.ndarray, *,
                     threshold: float = 0.9, min_correlation: float = 0.92,
                     check_audio: bool = True, settings: DuplicateSettings | None = None,
                     progress: bool = False, names: Sequence[str] | None = None
                     ) -> pd.DataFrame:
    """:func:`find_duplicates` on plain arrays: file paths, their embeddings and durations.

    Example:
        >>> group_duplicates(["a.wav"], np.ones((1, 4)), np.ones(1)).empty
        True
    """
    from dataclasses import replace

    settings = settings or DuplicateSettings()
    settings = DuplicateSettings(
        candidates=replace(settings.candidates, threshold=threshold),
        match=replace(settings.match, min_correlation=min_correlation))
    paths = [os.fspath(path) for path in paths]
    durations_s = np.asarray(durations_s, np.float64)
    first, second, sims = candidate_pairs(embeddings, durations_s,
                                          settings=settings.candidates)
    unreadable: dict[str, str] = {}
    if check_audio and len(first):
        first, second, sims, matches = _confirmed(paths, first, second, sims, settings.match,
                                                  unreadable, progress)
    else:
        matches = {}
    labels = components(len(paths), first, second)
    members_of: dict[int, list[int]] = {}
    for row in np.unique(np.concatenate([first, second])).tolist():
        members_of.setdefault(int(labels[row]), []).append(row)
    vectors = np.asarray(embeddings, np.float32)
    records = []
    for number, members in enumerate(members_of.values()):
        for record in _group_records(members, paths, vectors, durations_s, matches,
                                     settings.match, check_audio, unreadable):
            records.append({**record, "group": number})
    table = pd.DataFrame.from_records(records, columns=[c for c in DUPLICATE_COLUMNS
                                                        if c != "name"])
    table.insert(3, "name", [names[row] for row in table["row"]] if names is not None
                 else [os.path.basename(path) for path in table["path"]])
    table = _numbered(table)
    table.attrs["unreadable"] = unreadable
    if unreadable:
        logger.warning("%d files could not be checked for duplicates: %s", len(unreadable),
                       "; ".join(f"{path!r}: {why}" for path, why in sorted(unreadable.items())))
    return table


def _confirmed(paths, first, second, sims, settings: MatchSettings, unreadable, progress):
    """The candidate pairs whose audio lines up, with each pair's :class:`Match`."""
    labels = components(len(paths), first, second)
    by_component: dict[int, list[int]] = {}
    for pair, label in enumerate(labels[first].tolist()):
        by_component.setdefault(label, []).append(pair)
    matches = {}
    keep = np.zeros(len(first), bool)
    batches = list(by_component.values())
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="checking the audio of candidate groups", unit="group")
    for pairs in batches:
        waveforms = {}  # decoded once per candidate group, dropped after it
        parent: dict[int, int] = {}
        failures: dict[tuple[int, int], int] = {}
        for pair in sorted(pairs, key=lambda pair: -sims[pair]):  # likeliest copies first
            a, b = int(first[pair]), int(second[pair])
            root_a, root_b = _root(parent, a), _root(parent, b)
            between = (min(root_a, root_b), max(root_a, root_b))
            # Already one group: nothing to learn. Two groups that failed often: other takes.
            if root_a == root_b or failures.get(between, 0) >= _MAX_FAILURES:
                continue
            one = _decoded(a, paths, waveforms, settings, unreadable)
            two = _decoded(b, paths, waveforms, settings, unreadable)
            if one is None or two is None:
                continue
            match = correlation(one, two, settings)
            matches[a, b] = match
            keep[pair] = match.same_recording(settings)
            if keep[pair]:
                parent[max(root_a, root_b)] = min(root_a, root_b)
            else:
                failures[between] = failures.get(between, 0) + 1
    return first[keep], second[keep], sims[keep], matches


def _root(parent: dict[int, int], node: int) -> int:
    while parent.get(node, node) != node:
        node = parent[node]
    return node


def _decoded(row, paths, cache, settings, unreadable):
    if row not in cache:
        try:
            cache[row] = decode_for_match(paths[row], settings)
        except AudioError as exc:
            unreadable[paths[row]] = str(exc).split(": ", 1)[-1]
            cache[row] = None
    return cache[row]


def _group_records(members, paths, vectors, durations_s, matches, settings, check_audio,
                   unreadable) -> list[dict]:
    from .audio import info

    group = []
    for row in members:
        member = _Member(row, paths[row], float(durations_s[row]))
        try:
            meta = info(paths[row])
        except AudioError as exc:
            unreadable.setdefault(paths[row], str(exc).split(": ", 1)[-1])
        else:
            member.sample_rate, member.channels = meta.sample_rate, meta.channels
            member.format, member.duration = meta.format, meta.duration  # as it is now
            member.lossless = meta.subtype not in _LOSSY
            member.bit_depth = _BIT_DEPTHS.get(meta.subtype, 0) if member.lossless else 0
        group.append(member)
    waveforms: dict[int, np.ndarray | None] = {}
    reference = group[0]
    if check_audio:
        for member in group[1:]:
            match = _match(reference.row, member.row, paths, matches, waveforms, settings,
                           unreadable)
            member.start_s = match.lag_s if match is not None else 0.0
    keeper = max(group, key=_rank)
    runner_up = max((m for m in group if m is not keeper), key=_rank)
    unit = vectors[[m.row for m in group]]
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    keeper_unit = unit[group.index(keeper)]
    records = []
    for position, member in enumerate(group):
        match = (_match(keeper.row, member.row, paths, matches, waveforms, settings, unreadable)
                 if check_audio and member is not keeper else None)
        reason = (_keeper_reason(keeper, runner_up, group) if member is keeper
                  else _discard_reason(member, keeper, match, group))
        records.append({
            "group": 0, "keep": member is keeper, "path": member.path, "reason": reason,
            "duration": member.duration, "sample_rate": member.sample_rate,
            "bit_depth": member.bit_depth, "channels": member.channels,
            "format": member.format, "size": _size(member.path),
            "similarity": float(unit[position] @ keeper_unit),
            "correlation": 1.0 if member is keeper else (
                np.nan if match is None else round(match.correlation, 4)),
            "row": member.row,
        })
    return records


def _match(a, b, paths, matches, waveforms, settings, unreadable):
    """The match of rows ``a`` and ``b`` (``b`` seen from ``a``), computed when not known."""
    if (a, b) in matches:
        return matches[a, b]
    if (b, a) in matches:
        known = matches[b, a]
        return type(known)(known.correlation, -known.lag_s, known.overlap)
    one = _decoded(a, paths, waveforms, settings, unreadable)
    two = _decoded(b, paths, waveforms, settings, unreadable)
    if one is None or two is None:
        return None
    matches[a, b] = correlation(one, two, settings)
    return matches[a, b]


def _trimmed_s(member: _Member, group: list[_Member]) -> float:
    """How much of the group's recording this copy lacks, at both ends (seconds)."""
    start = min(m.start_s for m in group)
    end = max(m.start_s + m.duration for m in group)
    return (member.start_s - start) + (end - member.start_s - member.duration)


def _rank(member: _Member) -> tuple:
    """Better copies rank higher: lossless, sample rate, bit depth, length (to the
    millisecond), then more channels; the path breaks ties (earlier path wins)."""
    return (member.lossless, member.sample_rate, member.bit_depth,
            round(member.duration, 3), member.channels, _Reversed(member.path))


class _Reversed(str):
    """A string that sorts backwards, so that ``max`` prefers the earliest path."""

    def __lt__(self, other: str) -> bool:
        return str.__gt__(self, other)

    def __gt__(self, other: str) -> bool:
        return str.__lt__(self, other)


def _difference(better: _Member, worse: _Member) -> str:
    """The first quality in which ``better`` beats ``worse``, said plainly."""
    if better.lossless != worse.lossless:
        return f"lossless {better.format} against lossy {worse.format}"
    if better.sample_rate != worse.sample_rate:
        return f"higher sample rate ({better.sample_rate} Hz against {worse.sample_rate} Hz)"
    if better.bit_depth != worse.bit_depth:
        return f"higher bit depth ({better.bit_depth}-bit against {worse.bit_depth}-bit)"
    if round(better.duration, 3) != round(worse.duration, 3):
        return (f"longer, less trimmed ({better.duration:.3f} s against "
                f"{worse.duration:.3f} s)")
    if better.channels != worse.channels:
        return f"more channels ({better.channels} against {worse.channels})"
    return "same format and length: the first by path"


def _keeper_reason(keeper: _Member, runner_up: _Member, group: list[_Member]) -> str:
    return (f"keep: the best of {len(group)} copies ({keeper.describe()}); "
            f"{_difference(keeper, runner_up)}")


def _discard_reason(member: _Member, keeper: _Member, match, group: list[_Member]) -> str:
    basis = ("same recording" if match is None
             else f"same recording (audio correlation {match.correlation:.3f})")
    trimmed = _trimmed_s(member, group) - _trimmed_s(keeper, group)
    note = f", {trimmed * 1000:.0f} ms more trimmed" if match is not None and trimmed > 5e-4 \
        else ""
    return (f"copy of {os.path.basename(keeper.path)!r}: {basis}; the keeper has "
            f"{_difference(keeper, member)}{note}")


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _numbered(table: pd.DataFrame) -> pd.DataFrame:
    """Groups numbered from 1, largest first (then by the keeper's path); the keeper first in
    its group, then the others by path."""
    table = table.astype({"group": np.int64, "keep": bool, "row": np.int64})
    if table.empty:
        return table
    sizes = table.groupby("group")["row"].transform("size")
    keeper_paths = table[table["keep"]].set_index("group")["path"]
    ordered = table.assign(_size=-sizes, _keeper=table["group"].map(keeper_paths),
                           _discard=~table["keep"])
    ordered = ordered.sort_values(["_size", "_keeper", "_discard", "path"], kind="stable")
    numbers = {group: number for number, group in
               enumerate(dict.fromkeys(ordered["group"].tolist()), start=1)}
    ordered["group"] = ordered["group"].map(numbers).astype(np.int64)
    return ordered.drop(columns=["_size", "_keeper", "_discard"]).reset_index(drop=True)
