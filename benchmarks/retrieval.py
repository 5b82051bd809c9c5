"""Retrieval quality on the demo library: does a sound find its siblings?

Files that share a stem minus a trailing number are siblings (``coin1.wav``, ``coin2.wav``).
Every sound with at least one sibling is a query against the rest of the library; we report
hit@5 (a sibling in the top five) and mAP (mean average precision of the siblings' ranks), for
the default embedder next to an MFCC baseline and chance, all measured in the same run.

Run: ``.venv/bin/python benchmarks/retrieval.py [FOLDER]`` (default ``data/demo``).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from soundslike_nb.audio import load  # noqa: E402
from soundslike_nb.scan import scan_folders  # noqa: E402

_TRAILING_NUMBER = re.compile(r"[\s_\-.]*\d+$")


def family(path: str) -> str:
    """``.../coin3.wav`` → ``coin``: the stem without its trailing number."""
    return _TRAILING_NUMBER.sub("", Path(path).stem).lower()


def retrieval_scores(vectors: np.ndarray, labels: list[str], *, k: int = 5
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per-query hit@k and average precision, for queries that have at least one sibling."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    labels_array = np.asarray(labels)
    hits, precisions = [], []
    for query, label in enumerate(labels_array):
        relevant = labels_array == label
        relevant[query] = False
        if not relevant.any():
            continue
        order = np.argsort(-similarity[query], kind="stable")[:-1]  # itself comes last
        is_relevant = relevant[order]
        hits.append(is_relevant[:k].any())
        ranks = np.flatnonzero(is_relevant) + 1
        precisions.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
    return np.asarray(hits, float), np.asarray(precisions)


def mfcc_baseline(waveforms: list[np.ndarray], rate: int) -> np.ndarray:
    """20 MFCCs + deltas, mean and std over time (80-d), z-scored over the collection."""
    import librosa

    rows = []
    for waveform in waveforms:
        mfcc = librosa.feature.mfcc(y=waveform, sr=rate, n_mfcc=20)
        frames = mfcc.shape[1]  # the shortest demo sounds have ~10 frames; delta needs >= width
        delta = (librosa.feature.delta(mfcc, width=9 if frames >= 9 else 3) if frames >= 3
                 else np.zeros_like(mfcc))
        rows.append(np.concatenate([mfcc.mean(1), mfcc.std(1), delta.mean(1), delta.std(1)]))
    features = np.asarray(rows)
    return (features - features.mean(0)) / (features.std(0) + 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(ROOT / "data" / "demo"))
    args = parser.parse_args()

    from soundslike_nb.embedders import get_embedder

    files = scan_folders([args.folder]).files
    paths = [entry.path for entry in files]
    labels = [family(path) for path in paths]
    waveforms = [load(path, sample_rate=44100)[0] for path in paths]
    families = {label: labels.count(label) for label in set(labels)}
    queries = sum(count for count in families.values() if count > 1)
    print(f"{len(paths)} sounds in {len(families)} families; {queries} queries have siblings")

    embedder = get_embedder("aisfx")
    methods: dict[str, Callable[[], np.ndarray]] = {
        "aisfx CNN (default)": lambda: embedder.embed(waveforms),
        "MFCC mean/std (baseline)": lambda: mfcc_baseline(waveforms, 44100),
        "chance (seeded random)": lambda: np.random.default_rng(0).standard_normal(
            (len(paths), 64)),
    }
    results = {}
    for name, compute in methods.items():
        started = time.perf_counter()
        vectors = compute()
        seconds = time.perf_counter() - started
        hits, precisions = retrieval_scores(vectors, labels)
        results[name] = (hits.mean(), precisions.mean(), seconds)

    baseline = results["MFCC mean/std (baseline)"]
    print(f"\n{'method':28} {'hit@5':>7} {'mAP':>7} {'mAP / MFCC':>11} {'time s':>8}")
    for name, (hit5, mean_ap, seconds) in results.items():
        print(f"{name:28} {hit5:7.3f} {mean_ap:7.3f} {mean_ap / baseline[1]:11.2f} "
              f"{seconds:8.2f}")


if __name__ == "__main__":
    main()
