"""Search speed and recall of SoundIndex against numpy brute force, measured in the same run.

Synthetic, seeded, clustered 512-d vectors: each cluster is a centre on the sphere plus variation
along its own random 16-d subspace plus a little isotropic noise, with Zipf-like cluster sizes.
Queries are fresh draws from the same clusters (new sounds like the library's, not library rows).
Durations are log-uniform from 0.05 to 600 s, independent of the vectors. For each size and kind,
and for no filter, a filter keeping ~90 % and one keeping ~1 % of the rows, it prints latency per
query (median of one-at-a-time calls, and in a batch of 100), recall@10 against exact search,
build time and the index's size next to the raw float32 vectors, and numpy brute force (matmul,
mask, argpartition) with the speed-ups over it.

    .venv/bin/python benchmarks/search.py                      # 10k, 100k, 1M: ~12 min on 2 cores
    .venv/bin/python benchmarks/search.py --sizes 10000 100000

faiss uses every core it is given (OMP_NUM_THREADS); numpy's BLAS likewise.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from soundslike_nb.search import SoundIndex
from soundslike_nb.sidecar import content_key

DIMENSION = 512
SUBSPACE_RANK = 16
NOISE_NORM = 0.2
MIN_DURATION_S, MAX_DURATION_S = 0.05, 600.0
K = 10
_RATIO = MAX_DURATION_S / MIN_DURATION_S
# Log-uniform durations: a bound at quantile p is MIN * RATIO**p.
FILTERS = {
    "none": None,
    "90%": (MIN_DURATION_S * _RATIO**0.10, None),
    "1%": (1.0, 1.0 * _RATIO**0.01),
}


def clustered_library(
    n_rows: int, n_queries: int, *, dimension: int = DIMENSION, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors, durations_s, queries): clustered float32 rows, log-uniform durations, queries."""
    rng = np.random.default_rng(seed)
    n_clusters = max(8, round(math.sqrt(n_rows)))
    n_groups = max(4, round(math.sqrt(n_clusters)))
    groups = _unit(rng.standard_normal((n_groups, dimension)))
    jitter = 0.7 * rng.standard_normal((n_clusters, dimension)) / math.sqrt(dimension)
    centres = _unit(groups[rng.integers(n_groups, size=n_clusters)] + jitter).astype(np.float32)
    weights = np.minimum(rng.zipf(1.5, n_clusters), 50).astype(float)
    weights /= weights.sum()
    bases = rng.standard_normal((n_clusters, SUBSPACE_RANK, dimension), dtype=np.float32)
    bases /= math.sqrt(dimension)
    scales = rng.uniform(0.3, 0.8, n_clusters) * math.sqrt(dimension) / SUBSPACE_RANK

    def draw(count: int) -> np.ndarray:
        out = np.empty((count, dimension), np.float32)
        start = 0
        for cluster, size in enumerate(rng.multinomial(count, weights)):
            if size:
                spread = rng.standard_normal((size, SUBSPACE_RANK), dtype=np.float32)
                noise = rng.standard_normal((size, dimension), dtype=np.float32)
                block = out[start : start + size]
                np.matmul(spread * np.float32(scales[cluster]), bases[cluster], out=block)
                block += centres[cluster] + noise * np.float32(NOISE_NORM / math.sqrt(dimension))
                start += size
        return out

    vectors = draw(n_rows)
    durations_s = np.exp(rng.uniform(math.log(MIN_DURATION_S), math.log(MAX_DURATION_S), n_rows))
    return vectors, durations_s, draw(n_queries)


def numpy_search(unit_vectors, durations_s, unit_queries, duration) -> np.ndarray:
    """The baseline: all similarities by matmul, rows outside the range masked, argpartition."""
    sims = unit_queries @ unit_vectors.T
    if duration is not None:
        sims[:, ~in_range(durations_s, duration)] = -np.inf
    top = np.argpartition(-sims, K - 1, axis=1)[:, :K]
    top_sims = np.take_along_axis(sims, top, axis=1)
    top = np.take_along_axis(top, np.argsort(-top_sims, axis=1, kind="stable"), axis=1)
    return np.where(np.take_along_axis(sims, top, axis=1) > -np.inf, top, -1)


def in_range(durations_s: np.ndarray, duration) -> np.ndarray:
    """Rows with lo <= duration <= hi (either bound None for open)."""
    lo, hi = duration if duration is not None else (None, None)
    mask = np.ones(len(durations_s), bool)
    if lo is not None:
        mask &= durations_s >= lo
    if hi is not None:
        mask &= durations_s <= hi
    return mask


def interleaved_ms(searches, queries, *, single: int, budget_s: float) -> list[tuple[float, float]]:
    """Per search: (median ms of one-query calls, ms per query in a batch call, best of two).

    The searches take turns on each query so that both see the same neighbours on shared cores;
    the median, because those neighbours preempt a few calls by tens of ms.
    """
    started, times = time.perf_counter(), [[] for _ in searches]
    for query in queries[:single]:
        for search, spent in zip(searches, times):
            before = time.perf_counter()
            search(query[None, :])
            spent.append(time.perf_counter() - before)
        if time.perf_counter() - started > budget_s:
            break
    batch = [math.inf] * len(searches)
    for _ in range(2):
        for at, search in enumerate(searches):
            before = time.perf_counter()
            search(queries)
            batch[at] = min(batch[at], (time.perf_counter() - before) / len(queries) * 1e3)
    return [(float(np.median(spent)) * 1e3, ms) for spent, ms in zip(times, batch)]


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f[f >= 0]) & set(t[t >= 0])) for f, t in zip(found, truth))
    return hits / max(1, int((truth >= 0).sum()))


def run_size(n_rows: int, *, kinds: list[str], n_queries: int, single: int, seed: int) -> None:
    started = time.perf_counter()
    vectors, durations_s, queries = clustered_library(n_rows, n_queries, seed=seed)
    made_s = time.perf_counter() - started
    print(f"\n## {n_rows:,} rows x {DIMENSION} (data made in {made_s:.0f} s)")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # the baseline gets unit rows free
    unit_queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    truths = {
        name: numpy_search(vectors, durations_s, unit_queries, duration)
        for name, duration in FILTERS.items()
    }
    header = (
        f"{'kind':<6} {'filter':<6} {'kept':>6} {'build s':>8} {'size/raw':>8} "
        f"{'1 query ms':>10} {'batch ms/q':>10} {'recall@10':>9} {'numpy 1q ms':>11} "
        f"{'numpy b ms/q':>12} {'x faster 1q':>11} {'x faster b':>10}"
    )
    print(header)
    for kind in kinds:
        measure_kind(kind, vectors, durations_s, queries, truths, single=single)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"       process peak RSS so far {peak_gib:.1f} GiB")


def measure_kind(kind, vectors, durations_s, queries, truths, *, single: int) -> None:
    """Build one kind, time its save/load, and print one line per filter with numpy beside it."""
    started = time.perf_counter()
    index = SoundIndex(vectors, durations_s, kind=kind)
    build_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "library.index"
        index.save(path)
        size_ratio = path.stat().st_size / vectors.nbytes
        started = time.perf_counter()
        content_key(vectors, durations_s)  # what a library checks before reusing its index
        key_s = time.perf_counter() - started
        loaded = SoundIndex.load(path)
        load_s = time.perf_counter() - started - key_s
        if (loaded.kind, len(loaded)) != (index.kind, len(index)):
            raise RuntimeError("the saved index did not load back as it was saved")
    for name, duration in FILTERS.items():
        found = index.search(queries, k=K, duration=duration).indices
        (single_ms, batch_ms), (np_single, np_batch) = interleaved_ms(
            [
                lambda q, d=duration: index.search(q, k=K, duration=d),
                lambda q, d=duration: numpy_search(vectors, durations_s, _unit(q), d),
            ],
            queries, single=single, budget_s=20.0,
        )  # fmt: skip
        truth = truths[name]
        print(
            f"{index.kind:<6} {name:<6} {in_range(durations_s, duration).mean():>6.1%} "
            f"{build_s:>8.1f} {size_ratio:>8.3f} {single_ms:>10.2f} {batch_ms:>10.3f} "
            f"{recall_at_k(found, truth):>9.3f} {np_single:>11.2f} {np_batch:>12.3f} "
            f"{np_single / single_ms:>11.1f} {np_batch / batch_ms:>10.1f}"
        )
    print(f"       {index!r}; content_key {key_s:.2f} s + load (mmap) {load_s:.3f} s")


def _unit(array: np.ndarray) -> np.ndarray:
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--kinds", nargs="+", default=["exact", "ivf"], choices=["exact", "ivf"])
    parser.add_argument("--queries", type=int, default=100, help="batch size and recall queries")
    parser.add_argument("--single", type=int, default=50, help="queries timed one at a time")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    threads = os.environ.get("OMP_NUM_THREADS", f"all ({os.cpu_count()})")
    print(f"# SoundIndex vs numpy brute force: k={K}, CPU threads {threads}")
    for n_rows in args.sizes:
        run_size(
            n_rows, kinds=args.kinds, n_queries=args.queries, single=args.single, seed=args.seed
        )


if __name__ == "__main__":
    main()
