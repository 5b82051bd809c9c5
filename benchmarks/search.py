"""Search through the library's own path at 10k / 100k / 1M sounds shaped like real ones.

Libraries come from benchmarks/library_generator.py (calibrated on real sound effects: the
statistics are printed by that script, real and generated side by side). Each library is
searched the way ``Library.search_features`` searches it (``Searcher.search(...).to_frame()``:
query transform, weighted index search, exact per-aspect cosines of the hits, the DataFrame),
with queries that are new sounds of the same families (not library rows). For the default
weighting and two steered ones, with no filter, a duration filter keeping ~90 % and one keeping
~1 % of the rows, it prints the median single-query latency end to end, recall@10 against exact
scoring in the same fused space, and numpy brute force over the same fused float32 rows in the
same run (matmul, mask, argpartition), one method after the other. Then each step of a search
timed alone (query transform, weighted query, index, exact scoring of the hits, the table),
build time and index size next to the fused float32 rows, the reopening time, and a slider
move (weights changing step by step, as the notebook's re-rank).

    .venv/bin/python benchmarks/search.py                      # 10k, 100k, 1M
    .venv/bin/python benchmarks/search.py --sizes 10000 100000

faiss and numpy's BLAS use every core they are given (OMP_NUM_THREADS).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.library_generator import generate, generate_queries  # noqa: E402
from soundslike_nb.analysis import SoundFeatures  # noqa: E402
from soundslike_nb.search._common import one_blas_thread  # noqa: E402
from soundslike_nb.searcher import Searcher  # noqa: E402
from soundslike_nb.sidecar import SidecarStore  # noqa: E402
from soundslike_nb.space import DEFAULT_WEIGHTS, check_weights  # noqa: E402

K = 10
WEIGHTINGS = {
    "default": dict(DEFAULT_WEIGHTS),
    "timbre-heavy": {"cnn": 0.3, "timbre": 1.0, "spectrum": 0.2, "envelope": 0.2},
    "envelope only": {"cnn": 0.0, "timbre": 0.0, "spectrum": 0.0, "envelope": 1.0},
}
SLIDER = [{"timbre": t} for t in np.linspace(0.1, 1.0, 10)]


def filters(durations_s: np.ndarray) -> dict[str, tuple[float, float] | None]:
    """No filter, one keeping ~90 % of the rows (the shortest tenth out), one keeping ~1 %."""
    q = np.quantile(durations_s, [0.10, 0.50, 0.51])
    return {"none": None, "90%": (float(q[0]), None), "1%": (float(q[1]), float(q[2]))}


def numpy_top(rows: np.ndarray, durations_s: np.ndarray, query: np.ndarray, duration
              ) -> np.ndarray:
    """The baseline: every score by matmul, rows outside the range masked, argpartition."""
    sims = rows @ query
    if duration is not None:
        lo, hi = duration
        mask = durations_s >= lo
        if hi is not None:
            mask &= durations_s <= hi
        sims[~mask] = -np.inf
    top = np.argpartition(-sims, K)[:K]
    return top[np.argsort(-sims[top], kind="stable")]


def recall(found: list[np.ndarray], truth: list[np.ndarray]) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
    return hits / max(1, sum(len(t) for t in truth))


def timed(call, *args, **kwargs) -> float:
    """Milliseconds one ``call(*args, **kwargs)`` takes."""
    before = time.perf_counter()
    call(*args, **kwargs)
    return (time.perf_counter() - before) * 1e3


def library_search(searcher: Searcher, features: SoundFeatures, **options) -> pd.DataFrame:
    """What ``Library.search_features`` runs."""
    return searcher.search(features, **options).to_frame()


def steps(searcher: Searcher, queries: list[SoundFeatures], weights: dict[str, float],
          single: int) -> dict[str, float]:
    """Median milliseconds of each step of ``Searcher.search(...).to_frame()``, timed alone
    (on one BLAS thread, as a search runs them)."""
    space, merged = searcher.space, check_weights(weights)
    timing = range(min(single, len(queries)))
    with one_blas_thread():
        transformed = [space.transform(q.embedding[None], q.descriptors[None])[0]
                       for q in queries]
        weighted = [space.weighted_query(t, merged) for t in transformed]
        found = [searcher.index.search(w, k=K).indices[0] for w in weighted]
        hits = [searcher._hits(f, q, merged, t, k=K, per_file=None)
                for f, q, t in zip(found, queries, transformed)]
        medians = {
            "transform": [timed(space.transform, queries[at].embedding[None],
                                queries[at].descriptors[None]) for at in timing],
            "weighted query": [timed(space.weighted_query, transformed[at], merged)
                               for at in timing],
            "index": [timed(searcher.index.search, weighted[at], k=K) for at in timing],
            "hits": [timed(searcher._hits, found[at], queries[at], merged, transformed[at],
                           k=K, per_file=None) for at in timing],
            "table": [timed(hits[at].to_frame) for at in timing],
        }
    return {name: float(np.median(values)) for name, values in medians.items()}


def run_size(n_rows: int, *, n_queries: int, single: int, seed: int) -> None:
    started = time.perf_counter()
    embeddings, descriptors, durations_s = generate(n_rows, seed=seed)
    query_embeddings, query_descriptors = generate_queries(n_queries, n_rows, seed=seed)
    table = pd.DataFrame({"name": [f"sound {i}" for i in range(n_rows)],
                          "path": [f"/lib/sound_{i}.wav" for i in range(n_rows)],
                          "duration": durations_s})
    made_s = time.perf_counter() - started
    print(f"\n## {n_rows:,} sounds (generated in {made_s:.0f} s)", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        store = SidecarStore(Path(folder) / "library.parquet")
        started = time.perf_counter()
        searcher = Searcher.for_library(table, embeddings, descriptors, store=store,
                                        content=f"bench-{n_rows}-{seed}")
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        reopened = Searcher.for_library(table, embeddings, descriptors, store=store,
                                        content=f"bench-{n_rows}-{seed}")
        reopen_ms = (time.perf_counter() - started) * 1e3
        index_bytes = sum(path.stat().st_size for path in Path(folder).glob("*.index*"))
        del reopened
        report_size(searcher, embeddings, descriptors, durations_s, query_embeddings,
                    query_descriptors, build_s=build_s, reopen_ms=reopen_ms,
                    index_bytes=index_bytes, single=single)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"process peak RSS so far {peak_gib:.1f} GiB", flush=True)


def report_size(searcher: Searcher, embeddings, descriptors, durations_s, query_embeddings,
                query_descriptors, *, build_s: float, reopen_ms: float, index_bytes: int,
                single: int) -> None:
    space, index = searcher.space, searcher.index
    rows = space.index_rows(embeddings, descriptors)
    fused_bytes = rows.nbytes
    queries = [SoundFeatures(e, d) for e, d in zip(query_embeddings, query_descriptors)]
    transformed = space.transform(query_embeddings, query_descriptors)
    print(f"{index!r}\nbuild (space + index) {build_s:.1f} s; index file {index_bytes / 2**20:,.0f}"
          f" MiB = {index_bytes / fused_bytes:.2f} x the fused float32 rows "
          f"({fused_bytes / 2**20:,.0f} MiB); reopening unchanged {reopen_ms:.0f} ms")
    print(f"{'weights':14} {'filter':6} {'kept':>6} {'end to end ms':>13} {'index ms':>8} "
          f"{'recall@10':>9} {'numpy ms':>9} {'x numpy':>8}")
    for weighting, weights in WEIGHTINGS.items():
        multiplier = space.query_weights(check_weights(weights)) / np.sqrt(
            space.query_weights(DEFAULT_WEIGHTS))
        weighted = transformed * multiplier
        for name, duration in filters(durations_s).items():
            kept = 1.0 if duration is None else float(np.mean(
                (durations_s >= duration[0])
                & (durations_s <= (np.inf if duration[1] is None else duration[1]))))
            truth = [numpy_top(rows, durations_s, query, duration) for query in weighted]
            found = [searcher.search(features, k=K, duration=duration, weights=weights).positions
                     for features in queries]
            # One method at a time: numpy's BLAS threads spin for a while after each call and
            # would slow whatever single-threaded call came next.
            timing = range(min(single, len(queries)))
            time.sleep(0.5)  # let numpy's BLAS threads stop spinning after the reference
            for at in range(3):  # warm caches and pages first
                library_search(searcher, queries[at], k=K, duration=duration, weights=weights)
            ours = [timed(library_search, searcher, queries[at], k=K, duration=duration,
                          weights=weights) for at in timing]
            bare = [timed(index.search, weighted[at], k=K, duration=duration) for at in timing]
            brute = [timed(numpy_top, rows, durations_s, weighted[at], duration) for at in timing]
            end, only, numpy_ms = (float(np.median(v)) for v in (ours, bare, brute))
            print(f"{weighting:14} {name:6} {kept:6.1%} {end:13.2f} {only:8.2f} "
                  f"{recall(found, truth):9.3f} {numpy_ms:9.1f} {numpy_ms / end:8.1f}",
                  flush=True)
    print("steps alone, no filter (ms): " + "; ".join(
        f"{weighting}: " + ", ".join(f"{name} {ms:.2f}" for name, ms in
                                     steps(searcher, queries, weights, single).items())
        for weighting, weights in WEIGHTINGS.items()))
    slider = []
    for at, step in enumerate(SLIDER * max(1, single // len(SLIDER))):
        slider.append(timed(library_search, searcher, queries[at % len(queries)], k=100,
                            weights=step))
    print(f"slider move (timbre 0.1 -> 1.0, k=100, table included): median "
          f"{np.median(slider):.1f} ms, worst {max(slider):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=100, help="recall queries")
    parser.add_argument("--single", type=int, default=50, help="queries timed one at a time")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    threads = os.environ.get("OMP_NUM_THREADS", f"all ({os.cpu_count()})")
    print(f"# Library search vs numpy brute force in the fused space: k={K}, CPU threads "
          f"{threads}, median of {args.single} single queries")
    for n_rows in args.sizes:
        run_size(n_rows, n_queries=args.queries, single=args.single, seed=args.seed)


if __name__ == "__main__":
    main()
