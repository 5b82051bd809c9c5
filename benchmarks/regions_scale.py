"""Regions at scale: a library of 100,000 files, a third of its audio in long files, with and
without their regions: file size, reopening time, memory and search latency.

The files' vectors come from the generator calibrated on real sounds
(``benchmarks/library_generator.py``); each long file gets regions at ``--regions-per-s``
(0.5 a second: the segmentation's 4 s windows every 2 s over continuous sound, its most; events
in quieter takes give fewer), their vectors new sounds of the same generator. Both libraries are
written as library files, opened once (the space fitted, the index built and stored beside
the file), then reopened through ``load_library`` in a fresh process, whose memory is the
library's own (RSS after reopening and one search, minus before). Search latency: both
libraries in one process, their queries interleaved.

    .venv/bin/python benchmarks/regions_scale.py                 # 100k files
    .venv/bin/python benchmarks/regions_scale.py --files 20000   # quicker

Targets (issue 16): search latency with regions within 1.5x of files alone; memory and
reopening time within the README's budgets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from library_generator import generate, generate_queries  # noqa: E402

from soundslike_nb._checkpoint import DESCRIPTOR_PROVENANCE  # noqa: E402
from soundslike_nb.analysis import AnalysisSettings, SoundFeatures  # noqa: E402
from soundslike_nb.libfile import LibraryTable, write_table  # noqa: E402
from soundslike_nb.regions import Regions  # noqa: E402

QUERIES = 200


def make_libraries(folder: Path, *, files: int, regions_per_s: float, seed: int
                   ) -> dict[str, float]:
    """Write ``files.parquet`` and ``regions.parquet`` (the same files, with regions)."""
    rng = np.random.default_rng(seed)
    embeddings, descriptors, durations = generate(files, seed=seed)
    short_audio = float(durations.sum())
    # Long files: log-uniform 30 s to 10 min, until they hold half as much audio as the rest
    # (a third of the library's audio).
    long_lengths: list[float] = []
    while sum(long_lengths) < short_audio / 2:
        long_lengths.append(float(np.exp(rng.uniform(np.log(30), np.log(600)))))
    long_rows = rng.choice(files, size=len(long_lengths), replace=False)
    durations[long_rows] = long_lengths
    rows = pd.DataFrame({
        "name": [f"sound {i}" for i in range(files)],
        "path": [f"/library/folder_{i % 97}/sound_{i}.wav" for i in range(files)],
        "duration": durations, "sample_rate": np.int32(44100), "channels": np.int16(2),
        "frames": (durations * 44100).astype(np.int64), "size": np.int64(1 << 20),
        "mtime": 0.0})
    counts = np.maximum(1, np.round(np.asarray(long_lengths) * regions_per_s)).astype(int)
    order = np.argsort(long_rows)
    owners = np.repeat(long_rows[order], counts[order])
    starts = np.concatenate([np.arange(count) * 2.0 for count in counts[order]])
    spans = np.stack([starts, starts + rng.uniform(0.5, 4.0, len(starts))], axis=1)
    region_embeddings, region_descriptors = generate_queries(len(owners), files, seed=seed)
    regions = Regions(owners.astype(np.int64), spans, region_embeddings, region_descriptors)
    provenance = {"embedder": {"id": "synthetic", "dimension": 512},
                  "descriptors": DESCRIPTOR_PROVENANCE}
    plain = LibraryTable(rows, embeddings, provenance={
        **provenance, "analysis": AnalysisSettings(regions=None).record()},
        descriptors=descriptors)
    write_table(plain, folder / "files.parquet")
    with_regions = LibraryTable(rows, embeddings, provenance={
        **provenance, "analysis": AnalysisSettings().record()},
        descriptors=descriptors, regions=regions)
    write_table(with_regions, folder / "regions.parquet")
    queries = generate_queries(QUERIES, files, seed=seed + 7)
    np.save(folder / "query_embeddings.npy", queries[0])
    np.save(folder / "query_descriptors.npy", queries[1])
    return {"files": files, "long files": len(long_lengths), "regions": len(owners),
            "audio h": (short_audio + sum(long_lengths)) / 3600,
            "long share": sum(long_lengths) / (short_audio + sum(long_lengths))}


def opened(path: Path, *, first: bool) -> dict[str, float]:
    """In this (fresh) process: open the library (``first``: fitting the space and building
    the index, stored beside it; else reloading them) and search once; how long it took and
    the memory it holds then."""
    import psutil

    from soundslike_nb.library import load_library

    process = psutil.Process()
    before = process.memory_info().rss
    started = time.perf_counter()
    library = load_library(path)
    library.searcher  # noqa: B018 - the space and the index
    seconds = time.perf_counter() - started
    library.search_features(_queries(path)[0], k=10)
    if first:
        return {"first open s": seconds}
    sidecars = sum(os.path.getsize(f"{path}.{kind}") for kind in ("space", "index")
                   if os.path.exists(f"{path}.{kind}"))
    return {"file MB": os.path.getsize(path) / 1e6, "sidecars MB": sidecars / 1e6,
            "reopen s": seconds, "memory MB": (process.memory_info().rss - before) / 1e6}


def latencies(folder: Path) -> dict[str, dict[str, float]]:
    """Median single-query latency of both libraries, their queries interleaved (so that
    whatever else runs on the machine weighs on both alike)."""
    from soundslike_nb.library import load_library

    libraries = {name: load_library(folder / f"{name}.parquet") for name in ("files", "regions")}
    queries = _queries(folder / "files.parquet")
    steered = {"cnn": 0.3, "timbre": 1.0, "spectrum": 0.2, "envelope": 0.2}
    times: dict[str, dict[str, list[float]]] = {name: {"search ms": [], "steered ms": [],
                                                       "1 % duration ms": []}
                                                for name in libraries}
    for library in libraries.values():
        library.search_features(queries[0], k=10)  # warm
    for query in queries:
        for name, library in libraries.items():
            for what, options in (("search ms", {}), ("steered ms", {"weights": steered}),
                                  ("1 % duration ms", {"duration": (9.0, 12.0)})):
                started = time.perf_counter()
                library.search_features(query, k=10, **options)
                times[name][what].append(time.perf_counter() - started)
    return {name: {what: float(np.median(values) * 1e3) for what, values in kinds.items()}
            for name, kinds in times.items()}


def _queries(path: Path) -> list[SoundFeatures]:
    embeddings = np.load(path.parent / "query_embeddings.npy")
    descriptors = np.load(path.parent / "query_descriptors.npy")
    return [SoundFeatures(e, d) for e, d in zip(embeddings, descriptors)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--regions-per-s", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--first", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(opened(Path(args.measure), first=args.first)))
        return
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        made = make_libraries(Path(folder), files=args.files,
                              regions_per_s=args.regions_per_s, seed=args.seed)
        print(f"{made['files']:,} files ({made['long files']} long, "
              f"{made['long share']:.0%} of {made['audio h']:.0f} h of audio), "
              f"{made['regions']:,} regions; written in {time.perf_counter() - started:.0f} s",
              flush=True)
        results = {}
        for name in ("files", "regions"):
            results[name] = {}
            for first in (["--first"], []):
                output = subprocess.run(
                    [sys.executable, __file__, "--measure",
                     str(Path(folder) / f"{name}.parquet"), *first],
                    check=True, capture_output=True, text=True).stdout
                results[name].update(json.loads(output.strip().splitlines()[-1]))
        for name, measured in latencies(Path(folder)).items():
            results[name].update(measured)
    print(f"\n| {'':22} | files alone | with regions | ratio |")
    print("|---|---|---|---|")
    for key in results["files"]:
        alone, both = results["files"][key], results["regions"][key]
        print(f"| {key:22} | {alone:11.2f} | {both:12.2f} | {both / alone:5.2f}x |")


if __name__ == "__main__":
    main()
