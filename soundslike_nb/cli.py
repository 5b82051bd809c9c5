"""The command line: `soundslike index`, `search` and `duplicates` (or `python -m soundslike_nb`).

Bad usage or input prints one line on stderr and exits with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Sequence

from .errors import SoundslikeError

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the cause), not the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="soundslike", description="Find sounds that sound alike.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    index = commands.add_parser("index", help="embed folders of sounds into a library file")
    index.add_argument("folders", nargs="+", metavar="DIR", help="folders to scan recursively")
    index.add_argument("-o", "--output", required=True, metavar="LIB.parquet",
                       help="library file to create or update")
    index.add_argument("--embedder", default=None, metavar="NAME_OR_CHECKPOINT",
                       help="'aisfx' (default), a pyannote hub id, or a local checkpoint")
    index.add_argument("--token", default=None,
                       help="Hugging Face token for gated models (default: $HF_TOKEN)")
    index.add_argument("--device", default=None, help="cpu, cuda, cuda:1... (default: auto)")
    where = index.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="embed on a local Dask cluster of N worker processes")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="embed on an existing Dask cluster (tcp://host:8786)")
    index.add_argument("--no-regions", action="store_true",
                       help="do not cut files longer than 4 s into regions (a new library "
                            "only: an existing one keeps how it was made)")
    index.add_argument("--quiet", action="store_true", help="no progress bar")

    search = commands.add_parser("search", help="find the sounds most like a query sound")
    search.add_argument("library", metavar="LIB.parquet")
    search.add_argument("query", metavar="QUERY_AUDIO")
    search.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    search.add_argument("--min-duration", type=float, default=None, metavar="S")
    search.add_argument("--max-duration", type=float, default=None, metavar="S")
    search.add_argument("--weights", default=None, metavar="ASPECT=W,...",
                        help="how much each aspect counts, e.g. cnn=1,timbre=0.5,envelope=0 "
                             "(aspects: cnn = overall character, timbre, spectrum, envelope; "
                             "one left out keeps its default)")
    search.add_argument("--tag", action="append", default=None, dest="tags", metavar="LABEL",
                        help="only sounds carrying this label; repeat for any of several "
                             "(--tag impact --tag hit)")
    search.add_argument("--per-file", type=int, default=1, metavar="N",
                        help="at most N results from one file, itself and its regions "
                             "together, each moment once (default 1; 0: no limit)")
    search.add_argument("--start", type=float, default=None, metavar="S",
                        help="search by the query's region from S seconds (with --end)")
    search.add_argument("--end", type=float, default=None, metavar="S",
                        help="search by the query's region up to S seconds (with --start)")
    search.add_argument("--json", action="store_true",
                        help="print JSON instead of a table (start/end: null for a whole file)")
    search.add_argument("--embedder", default=None, metavar="NAME_OR_CHECKPOINT",
                        help="the library's model, named (needed for any model but the "
                             "shipped aisfx: a library file never loads a model by itself)")
    search.add_argument("--token", default=None,
                        help="Hugging Face token for a gated model (default: $HF_TOKEN)")
    search.add_argument("--device", default=None, help="cpu, cuda, cuda:1... (default: auto)")
    search.add_argument("--csv", default=None, metavar="OUT.csv",
                        help="also write the results as CSV (name, path, duration, similarity, "
                             "tags, licence...)")
    search.add_argument("--save-session", default=None, metavar="SESSION.json",
                        help="save the search (query, weights, k, duration, results) to reopen")

    duplicates = commands.add_parser(
        "duplicates", help="find groups of near-identical sounds and suggest which to keep")
    duplicates.add_argument("library", metavar="LIB.parquet")
    duplicates.add_argument("--csv", default=None, metavar="OUT.csv",
                            help="write one row per file: group, keep, path, reason, format...")
    duplicates.add_argument("--json", default=None, metavar="OUT.json",
                            help="the same table as JSON")
    duplicates.add_argument("--script", default=None, metavar="MOVE.py",
                            help="write a Python script that moves the discards (never deletes; "
                                 "run it with --dry-run first)")
    duplicates.add_argument("--to", default=None, metavar="DIR",
                            help="the folder the script moves discards into (else give it to "
                                 "the script as --to)")
    duplicates.add_argument("--threshold", type=float, default=0.9, metavar="COSINE",
                            help="lowest embedding similarity checked (default 0.9)")
    duplicates.add_argument("--min-correlation", type=float, default=0.92, metavar="R",
                            help="lowest audio correlation of copies (default 0.92)")
    duplicates.add_argument("--no-audio-check", action="store_true",
                            help="group on vectors and durations alone (faster; other takes "
                                 "of a sound may merge)")
    duplicates.add_argument("--quiet", action="store_true", help="no progress bar, no listing")
    return parser


def _index(args: argparse.Namespace) -> int:
    from .build import build_library

    with contextlib.ExitStack() as stack:
        client = None
        if args.workers is not None or args.scheduler is not None:
            from .distributed import cluster_client

            client = stack.enter_context(cluster_client(workers=args.workers,
                                                        scheduler=args.scheduler))
        settings = None
        if args.no_regions:
            from .analysis import AnalysisSettings

            settings = AnalysisSettings(regions=None)
        library = build_library(args.folders, out=args.output, embedder=args.embedder,
                                token=args.token, device=args.device, progress=not args.quiet,
                                client=client, settings=settings)
    report = library.report
    for path, reason in sorted(report.failures.items()):
        print(f"{path}: {reason}", file=sys.stderr)
    for path, reason in sorted(report.partial.items()):
        print(f"{path}: {reason}", file=sys.stderr)
    regions = f", {len(library.regions)} regions" if len(library.regions) else ""
    print(f"{os.path.abspath(args.output)}: {len(library)} sounds{regions}; "
          f"{report.summary()}")
    return 0


def _search(args: argparse.Namespace) -> int:
    from .library import load_library

    for name in ("min_duration", "max_duration"):
        value = getattr(args, name)
        if value is not None and not math.isfinite(value):
            raise SoundslikeError(f"--{name.replace('_', '-')} must be a number, got {value}")
    duration = None
    if args.min_duration is not None or args.max_duration is not None:
        duration = (args.min_duration, args.max_duration)
    weights = parse_weights(args.weights) if args.weights is not None else None
    region = _region_of(args)
    if args.per_file < 0:
        raise SoundslikeError(f"--per-file must be 0 (no limit) or more, got {args.per_file}")
    library = load_library(args.library, embedder=args.embedder, token=args.token,
                           device=args.device)
    hits = library.search(args.query, k=args.k, duration=duration, weights=weights,
                          tags=args.tags, per_file=args.per_file or None, region=region)
    position = library.row_of(args.query)
    if region is not None and not args.json:
        print(f"query: {args.query}, {region[0]:g} to {region[1]:g} s")
    elif position is not None and not args.json:
        print(f"query: {library.rows['name'][position]} (a sound of this library: its stored "
              "vectors, and it is left out of the results)")
    if args.csv is not None or args.save_session is not None:
        _save_search(args, library, hits, duration, weights)
    if args.json:
        records = [{name: _json_value(value) for name, value in record.items()}
                   for record in hits.to_dict(orient="records")]
        print(json.dumps(records, ensure_ascii=False, indent=2))
    elif hits.empty:
        print("no sound matches (check the duration range and --tag)")
    else:
        print(hits.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0


def _region_of(args: argparse.Namespace) -> tuple[float, float] | None:
    """``(start, end)`` from ``--start``/``--end`` (both or neither), or ``None``."""
    if args.start is None and args.end is None:
        return None
    if args.start is None or args.end is None:
        raise SoundslikeError("a region needs both --start and --end (seconds)")
    return args.start, args.end


def _save_search(args: argparse.Namespace, library, hits, duration, weights) -> None:
    from .exports import export_table, to_csv
    from .session import save_session

    if args.csv is not None:
        to_csv(export_table(library, hits), args.csv)
        print(f"wrote {os.path.abspath(args.csv)}", file=sys.stderr)
    if args.save_session is not None:
        saved = save_session(args.save_session, query=args.query, results=hits, k=args.k,
                             duration=duration, weights=weights, library=library)
        print(f"wrote {saved}", file=sys.stderr)


def _duplicates(args: argparse.Namespace) -> int:
    from .duplicates import find_duplicates
    from .errors import ParameterError
    from .exports import export_table, to_csv, to_json
    from .library import load_library
    from .move_script import write_move_script

    for name in ("threshold", "min_correlation"):
        if not math.isfinite(getattr(args, name)):
            raise ParameterError(f"--{name.replace('_', '-')} must be a number, got "
                                 f"{getattr(args, name)}")
    if args.to is not None and args.script is None:
        raise ParameterError("--to is the move script's folder: give --script MOVE.py too")
    library = load_library(args.library)
    groups = find_duplicates(library, threshold=args.threshold,
                             min_correlation=args.min_correlation,
                             check_audio=not args.no_audio_check, progress=not args.quiet)
    for path, reason in sorted(groups.attrs.get("unreadable", {}).items()):
        print(f"{path}: not checked ({reason})", file=sys.stderr)
    table = export_table(library, groups)
    if args.csv is not None:
        to_csv(table, args.csv)
    if args.json is not None:
        to_json(table, args.json)
    if args.script is not None:
        write_move_script(groups, args.script, to=args.to)
    if not args.quiet:
        for number, members in groups.groupby("group", sort=True):
            print(f"group {number}: {len(members)} files")
            for member in members.itertuples():
                mark = "keep   " if member.keep else "discard"
                print(f"  {mark} {_shown(member.path)}")
    discards = groups[~groups["keep"]]
    megabytes = discards["size"].clip(lower=0).sum() / 1e6
    print(f"{library.path}: {groups['group'].nunique()} groups of near-duplicates, "
          f"{len(groups)} files; {len(discards)} could go ({megabytes:.1f} MB)")
    for what, path in (("table", args.csv), ("JSON", args.json), ("move script", args.script)):
        if path is not None:
            print(f"{what}: {os.path.abspath(path)}")
    if args.script is not None:
        import shlex

        print(f"check it with: python3 {shlex.quote(_shown(os.path.abspath(args.script)))} "
              "--dry-run"
              + ("" if args.to else " --to DIR"))
    return 0


def _shown(path: str) -> str:
    """A path on one line: as it is, or escaped when it holds a newline or another control."""
    return path if path.isprintable() else ascii(path)


def parse_weights(text: str) -> dict[str, float]:
    """``"cnn=1,timbre=0.5"`` → ``{"cnn": 1.0, "timbre": 0.5}``, checked like the API's weights.

    Example:
        >>> parse_weights("timbre=0.5, envelope=0")
        {'timbre': 0.5, 'envelope': 0.0}
    """
    from .errors import ParameterError
    from .space import check_weights

    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        aspect, equals, value = item.partition("=")
        if not equals:
            raise ParameterError(f"--weights: expected ASPECT=NUMBER, got {item!r}")
        try:
            weights[aspect.strip()] = float(value)
        except ValueError:
            raise ParameterError(f"--weights: {aspect.strip()!r} needs a number, "
                                 f"got {value.strip()!r}") from None
    check_weights(weights)
    return weights


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN: an aspect the library has no descriptors for
    return value.item() if hasattr(value, "item") else value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``soundslike`` command.

    Example:
        >>> main(["search", "demo.parquet", "data/demo/kenney/coin1.wav"])  # doctest: +SKIP
    """
    args = _parser().parse_args(argv)
    try:
        command = {"index": _index, "search": _search, "duplicates": _duplicates}
        return command[args.command](args)
    except SoundslikeError as exc:
        print(f"soundslike: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except BrokenPipeError:  # the reader went away (`| head`): nothing left to say
        with contextlib.suppress(OSError, ValueError):  # no flush error at exit either
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"soundslike: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("soundslike: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
