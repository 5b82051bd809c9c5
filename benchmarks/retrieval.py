"""Retrieval quality: does a sound find its siblings? Reference pipeline against each step.

Part 1 (demo only, as before): files that share a stem minus a trailing number are siblings
(``coin1.wav``, ``coin2.wav``). Every sound with at least one sibling is a query against the rest
of the library; we report hit@5 (a sibling in the top five) and mAP (mean average precision of
the siblings' ranks), for the default embedder next to an MFCC baseline and chance.

Part 2 (benchmarks/sound_collections.py: demo, perturb, lincity-ng, widelands, wesnoth): the
reference pipeline (CNN, zero padding, raw cosine), each step alone (repeat-filling short sounds;
the library-fitted CNN space; descriptors fused with the CNN) and their combination, with 95 %
bootstrap intervals (2000 resamples of the queries; the gain's interval is paired). Every default
(fill, shrinkage, aspect weights) is chosen on the SELECTION collections and reported on the
HELD_OUT ones, maximising the smallest mAP gain over the selection collections (the target is "no
collection worse"); a leave-one-collection-out table repeats the choice without each collection in
turn (demo and perturb are one source, so they leave together). Also: the descriptors' cost
next to the CNN's on the same waveforms, and the time a weight change takes to re-rank 10k sounds.

Run: ``.venv/bin/python benchmarks/retrieval.py [FOLDER] [--fresh]`` (default ``data/demo``).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import sound_collections as bench  # noqa: E402
from soundslike_nb.audio import load  # noqa: E402
from soundslike_nb.descriptors import DESCRIPTOR_VERSION, describe, fill_block  # noqa: E402
from soundslike_nb.scan import scan_folders  # noqa: E402
from soundslike_nb.space import ASPECT_NAMES, SimilaritySpace  # noqa: E402

_TRAILING_NUMBER = re.compile(r"[\s_\-.]*\d+$")
SELECTION = ("demo", "perturb", "lincity-ng")
HELD_OUT = ("widelands", "wesnoth")
RELATED = {"demo": {"demo", "perturb"}, "perturb": {"demo", "perturb"}}
SHRINKAGES: tuple[float | str, ...] = ("ledoit-wolf", 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)
WEIGHT_GRID = (0.0, 0.1, 0.25, 0.5, 1.0)
BLOCK_SAMPLES = 99 * 1024  # the shortest sound that fills the CNN's 100-frame block
RESAMPLES = 2000


def family(path: str) -> str:
    """``.../coin3.wav`` → ``coin``: the stem without its trailing number."""
    return _TRAILING_NUMBER.sub("", Path(path).stem).lower()


def retrieval_scores(vectors: np.ndarray, labels: list[str], *, k: int = 5
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per-query hit@k and average precision, for queries that have at least one sibling."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return ranking_scores(unit @ unit.T, np.asarray(labels), k=k)


def ranking_scores(similarity: np.ndarray, labels: np.ndarray, *, k: int = 5
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Hit@k and average precision per query row of an (n, n) similarity matrix."""
    similarity = np.array(similarity, dtype=np.float64)
    np.fill_diagonal(similarity, -np.inf)
    relevant_count = (labels[:, None] == labels[None, :]).sum(1) - 1
    queries = np.flatnonzero(relevant_count > 0)
    order = np.argsort(-similarity[queries], axis=1, kind="stable")[:, :-1]  # itself comes last
    is_relevant = labels[order] == labels[queries, None]
    ranks = np.arange(1, is_relevant.shape[1] + 1)
    precision = np.cumsum(is_relevant, axis=1) / ranks
    average_precision = (precision * is_relevant).sum(1) / relevant_count[queries]
    return is_relevant[:, :k].any(1).astype(float), average_precision


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


def demo_table(folder: str) -> None:
    """Part 1: the CNN against an MFCC baseline and chance on one folder."""
    from soundslike_nb.embedders import get_embedder

    files = scan_folders([folder]).files
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


# ------------------------------------------------------------------------ features, cached
def features(collection: bench.Collection, embedder, *, fresh: bool) -> dict[str, np.ndarray]:
    """CNN embeddings (zero and repeat fill) and descriptors, each cached on disk.

    Also the seconds the CNN and the descriptors took on the same 16-sound batches (``times``),
    measured when the descriptors were last computed.
    """
    import soundslike_nb.descriptors as descriptors_module
    from soundslike_nb.analysis import AnalysisSettings

    stats = [(p, Path(p).stat().st_size, Path(p).stat().st_mtime) for p in collection.paths]
    source = Path(descriptors_module.__file__).read_bytes()

    def cache(kind: str, *parts) -> Path:
        key = hashlib.sha256(json.dumps([stats, *parts], default=str).encode()).hexdigest()[:16]
        return bench.CACHE / "features" / f"{collection.name}-{kind}-{key}.npz"

    cnn_file = cache("cnn", embedder.provenance, BLOCK_SAMPLES)
    descriptor_file = cache("descriptors", DESCRIPTOR_VERSION,
                            hashlib.sha256(source).hexdigest())
    result: dict[str, np.ndarray] = {}
    for path in (cnn_file, descriptor_file):
        if path.exists() and not fresh:
            with np.load(path) as stored:
                result.update({name: stored[name] for name in stored.files})
    if "zero" in result and "descriptors" in result:
        return result
    max_duration_s = AnalysisSettings().max_duration_s  # what a build analyses
    waveforms = [load(p, sample_rate=44100, max_duration=max_duration_s)[0]
                 for p in collection.paths]
    zero, descriptors, embed_s, describe_s = [], [], 0.0, 0.0
    for start in range(0, len(waveforms), 16):  # the Analyzer's batch
        batch = waveforms[start:start + 16]
        began = time.perf_counter()
        zero.append(embedder.embed(batch))
        middle = time.perf_counter()
        descriptors.append(describe(batch, 44100))
        embed_s += middle - began
        describe_s += time.perf_counter() - middle
    descriptor_file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(descriptor_file, descriptors=np.concatenate(descriptors),
             durations=np.array([len(w) / 44100 for w in waveforms]),
             times=np.array([embed_s, describe_s]))
    result.update(descriptors=np.concatenate(descriptors), times=np.array([embed_s, describe_s]),
                  durations=np.array([len(w) / 44100 for w in waveforms]))
    if "zero" not in result:
        repeat = np.concatenate(zero)
        short = [i for i, w in enumerate(waveforms) if len(w) < BLOCK_SAMPLES]
        for start in range(0, len(short), 16):
            rows = short[start:start + 16]
            repeat[rows] = embedder.embed([fill_block(waveforms[i], length=BLOCK_SAMPLES)
                                           for i in rows])
        np.savez(cnn_file, zero=np.concatenate(zero), repeat=repeat)  # folder made above
        result.update(zero=np.concatenate(zero), repeat=repeat)
    return result


# ------------------------------------------------------------------------------ evaluation
class Evaluator:
    """Per-aspect cosine matrices of one collection, combined under any weights."""

    def __init__(self, name: str, labels: Sequence[str], feats: dict[str, np.ndarray]) -> None:
        self.name, self.labels, self.feats = name, np.asarray(labels), feats
        self._cache: dict[tuple, dict[str, np.ndarray]] = {}
        self._scores: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def aspect_similarities(self, fill: str, cnn: str, shrinkage) -> dict[str, np.ndarray]:
        key = (fill, cnn, shrinkage)
        if key not in self._cache:
            space = SimilaritySpace(cnn=cnn, shrinkage=shrinkage)
            rows = space.fit_transform(self.feats[fill], self.feats["descriptors"])
            self._cache[key] = {name: rows[:, s] @ rows[:, s].T
                                for name, s in space.slices.items()}
        return self._cache[key]

    def scores(self, config: dict) -> tuple[np.ndarray, np.ndarray]:
        key = json.dumps(config, sort_keys=True)
        if key not in self._scores:
            self._scores[key] = self._compute(config)
        return self._scores[key]

    def _compute(self, config: dict) -> tuple[np.ndarray, np.ndarray]:
        similarities = self.aspect_similarities(config["fill"], config["cnn"],
                                                config["shrinkage"])
        combined = sum(config["weights"][name] * similarities[name] for name in ASPECT_NAMES
                       if config["weights"][name])
        return ranking_scores(combined, self.labels)


def config(*, fill="zero", cnn="raw", shrinkage=1.0, weights=None) -> dict:
    merged = {"cnn": 1.0, "timbre": 0.0, "spectrum": 0.0, "envelope": 0.0, **(weights or {})}
    return {"fill": fill, "cnn": cnn, "shrinkage": shrinkage, "weights": merged}


def grid() -> list[dict]:
    """Every candidate default: fill x CNN space x descriptor weights (CNN weight 1)."""
    spaces = [("raw", 1.0)] + [("whiten", s) for s in SHRINKAGES]
    configs = []
    for fill, (cnn, shrinkage) in itertools.product(("zero", "repeat"), spaces):
        for timbre, spectrum, envelope in itertools.product(WEIGHT_GRID, repeat=3):
            configs.append(config(fill=fill, cnn=cnn, shrinkage=shrinkage, weights={
                "timbre": timbre, "spectrum": spectrum, "envelope": envelope}))
    return configs


def choose(evaluators: dict[str, Evaluator], names: Sequence[str], candidates: list[dict]
           ) -> dict:
    """The candidate whose smallest mAP gain over ``names`` is largest (then: largest mean gain).

    The worst case, not the mean, because the target is "no collection worse": a mean lets one
    easy collection (the perturbations) buy losses on the others.
    """
    references = {n: evaluators[n].scores(config())[1].mean() for n in names}
    best, best_score = candidates[0], (-np.inf, -np.inf)
    for candidate in candidates:
        gains = [evaluators[n].scores(candidate)[1].mean() - references[n] for n in names]
        score = (round(min(gains), 9), round(float(np.mean(gains)), 9))
        if score > best_score:
            best, best_score = candidate, score
    return best


def interval(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    draws = rng.integers(0, len(values), (RESAMPLES, len(values)))
    means = values[draws].mean(1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def family_interval(values: np.ndarray, labels: np.ndarray, rng: np.random.Generator
                    ) -> tuple[float, float]:
    """Bootstrap over whole families (siblings' queries are not independent)."""
    groups = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    sums = np.array([values[g].sum() for g in groups])
    sizes = np.array([len(g) for g in groups])
    draws = rng.integers(0, len(groups), (RESAMPLES, len(groups)))
    means = sums[draws].sum(1) / sizes[draws].sum(1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def describe_config(chosen: dict) -> str:
    weights = ",".join(f"{n}={chosen['weights'][n]:g}" for n in ASPECT_NAMES)
    space = "raw" if chosen["cnn"] == "raw" else f"whiten(shrinkage={chosen['shrinkage']})"
    return f"fill={chosen['fill']} cnn={space} weights {weights}"


def steps(chosen: dict) -> dict[str, dict]:
    """The reference, each step alone, the combination (with either fill), descriptors only."""
    other_fill = "zero" if chosen["fill"] == "repeat" else "repeat"
    return {
        "reference (zero fill, raw cosine)": config(),
        "+ repeat fill alone": config(fill="repeat"),
        "+ fitted CNN space alone": config(cnn=chosen["cnn"], shrinkage=chosen["shrinkage"]),
        "+ descriptors alone (raw CNN)": config(weights=chosen["weights"]),
        "combination (chosen defaults)": chosen,
        f"combination with {other_fill} fill": {**chosen, "fill": other_fill},
        "descriptors only (no CNN)": config(weights={**chosen["weights"], "cnn": 0.0}),
    }


def report(evaluators: dict[str, Evaluator], chosen: dict) -> None:
    rng = np.random.default_rng(0)
    print(f"\n{'collection':11} {'method':35} {'hit@5 [95% CI]':>20} {'mAP [95% CI]':>20} "
          f"{'mAP gain [95% CI]':>25}")
    for name, evaluator in evaluators.items():
        role = "held out" if name in HELD_OUT else "selection"
        reference = evaluator.scores(config())[1]
        for label, candidate in steps(chosen).items():
            hits, precisions = evaluator.scores(candidate)
            h_low, h_high = interval(hits, rng)
            m_low, m_high = interval(precisions, rng)
            gain = precisions - reference
            g_low, g_high = interval(gain, rng)
            print(f"{name:11} {label:35} {hits.mean():6.3f} [{h_low:.3f},{h_high:.3f}] "
                  f"{precisions.mean():6.3f} [{m_low:.3f},{m_high:.3f}] "
                  f"{gain.mean():+7.3f} [{g_low:+.3f},{g_high:+.3f}]")
        gain = evaluator.scores(chosen)[1] - reference
        queries = evaluator.labels[(evaluator.labels[:, None] == evaluator.labels).sum(1) > 1]
        f_low, f_high = family_interval(gain, queries, rng)
        print(f"{name:11} ({role}; gain interval resampling whole families: "
              f"[{f_low:+.3f},{f_high:+.3f}])")


def through_the_library(collection: bench.Collection, feats: dict[str, np.ndarray],
                        embedder) -> float:
    """mAP of the product's own search path on a collection: a :class:`Library` holding the
    collection's embeddings and descriptors fits its space, builds its index and answers
    ``similar_to(row, k=n-1)`` with the default weights, for every row."""
    import pandas as pd

    from soundslike_nb.libfile import LibraryTable
    from soundslike_nb.library import Library

    count = len(collection.paths)
    rows = pd.DataFrame({"name": [Path(p).stem for p in collection.paths],
                         "path": list(collection.paths), "duration": feats["durations"],
                         "sample_rate": 44100, "channels": 1, "frames": 0, "size": 0,
                         "mtime": 0.0})
    table = LibraryTable(rows, feats["zero"].astype(np.float32),
                         {"embedder": embedder.provenance,
                          "descriptors": {"version": DESCRIPTOR_VERSION}},
                         descriptors=feats["descriptors"].astype(np.float32))
    library = Library(table)
    similarity = np.full((count, count), -np.inf)
    for row in range(count):
        hits = library.similar_to(row, k=count - 1)
        positions = [library.position_of(path) for path in hits["path"]]
        similarity[row, positions] = hits["similarity"].to_numpy()
    return float(ranking_scores(similarity, np.asarray(collection.families))[1].mean())


def leave_one_out(evaluators: dict[str, Evaluator], candidates: list[dict]) -> None:
    rng = np.random.default_rng(1)
    print(f"\n{'held out':11} {'chosen on the others':60} {'mAP ref':>7} {'mAP':>6} "
          f"{'gain [95% CI]':>22}")
    for name, evaluator in evaluators.items():
        others = [n for n in evaluators if n not in RELATED.get(name, {name})]
        chosen = choose(evaluators, others, candidates)
        reference = evaluator.scores(config())[1]
        precisions = evaluator.scores(chosen)[1]
        low, high = interval(precisions - reference, rng)
        print(f"{name:11} {describe_config(chosen):60} {reference.mean():7.3f} "
              f"{precisions.mean():6.3f} {precisions.mean() - reference.mean():+7.3f} "
              f"[{low:+.3f},{high:+.3f}]")


def short_sounds(evaluators: dict[str, Evaluator], chosen: dict) -> None:
    """Repeat fill against zero padding, in the reference and in the chosen combination."""
    rng = np.random.default_rng(2)
    print(f"\n{'collection':11} {'< 2.3 s':>8} {'reference: repeat - zero':>28} "
          f"{'combination: repeat - zero':>30}")
    for name, evaluator in evaluators.items():
        short = np.mean(evaluator.feats["durations"] < BLOCK_SAMPLES / 44100)
        cells = []
        for base in (config(), chosen):
            zero = evaluator.scores({**base, "fill": "zero"})[1]
            repeat = evaluator.scores({**base, "fill": "repeat"})[1]
            low, high = interval(repeat - zero, rng)
            cells.append(f"{(repeat - zero).mean():+.3f} [{low:+.3f},{high:+.3f}]")
        print(f"{name:11} {100 * short:7.0f}% {cells[0]:>28} {cells[1]:>30}")


def rerank_time(rows: int = 10_000) -> float:
    """Milliseconds to re-rank a 10k library after a weight change (exact SoundIndex, median)."""
    from soundslike_nb.descriptors import FEATURE_NAMES
    from soundslike_nb.search import SoundIndex

    rng = np.random.default_rng(0)
    embeddings = rng.random((rows, 512), dtype=np.float32)
    descriptors = rng.standard_normal((rows, len(FEATURE_NAMES)), np.float32)
    space = SimilaritySpace().fit(embeddings, descriptors)
    index = SoundIndex(space.transform(embeddings, descriptors), rng.uniform(0.1, 10, rows),
                       kind="exact")
    query = space.transform(embeddings[:1], descriptors[:1])[0]
    times = []
    for repeat in range(21):
        began = time.perf_counter()
        index.search(query * space.query_weights({"timbre": repeat / 20}), k=20)
        times.append(time.perf_counter() - began)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(ROOT / "data" / "demo"))
    parser.add_argument("--fresh", action="store_true", help="recompute cached features")
    parser.add_argument("--demo-only", action="store_true", help="part 1 only")
    args = parser.parse_args()
    demo_table(args.folder)
    if args.demo_only:
        return

    from soundslike_nb.embedders import get_embedder

    embedder = get_embedder("aisfx")
    evaluators, embed_s, describe_s, ratios = {}, 0.0, 0.0, []
    print(f"\ncollections (cache: {bench.CACHE})")
    for collection in bench.all_collections():
        feats = features(collection, embedder, fresh=args.fresh)
        embed_s += feats["times"][0]
        describe_s += feats["times"][1]
        ratios.append(f"{collection.name} {100 * feats['times'][1] / feats['times'][0]:.0f} %")
        evaluators[collection.name] = Evaluator(collection.name, collection.families, feats)
        print(f"  {collection.name:11} {len(collection.paths):4} sounds, "
              f"{len(set(collection.families)):3} families, {collection.queries:4} queries, "
              f"{feats['durations'].sum():6.0f} s; {collection.licence}")
    print(f"\ndescriptors cost {describe_s:.1f} s against {embed_s:.1f} s for the CNN on the same"
          f" batches: {100 * describe_s / embed_s:.1f} % (target <= 25 %; {', '.join(ratios)})")

    candidates = grid()
    chosen = choose(evaluators, SELECTION, candidates)
    print(f"\ndefaults chosen on {', '.join(SELECTION)} (held out: {', '.join(HELD_OUT)}):\n  "
          f"{describe_config(chosen)}")
    report(evaluators, chosen)
    print("\nshort sounds: mAP difference repeat fill - zero padding (paired 95% CI):")
    short_sounds(evaluators, chosen)
    print("\nthe same defaults through Library.similar_to (space fitted by the library, its "
          "index, weighted search), against the evaluation above:")
    for collection in bench.all_collections():
        feats = features(collection, embedder, fresh=False)
        product = through_the_library(collection, feats, embedder)
        expected = evaluators[collection.name].scores(chosen)[1].mean()
        print(f"  {collection.name:11} mAP {product:.3f} (evaluation {expected:.3f})")
    print("\nleave one collection out (demo and perturb leave together):")
    leave_one_out(evaluators, candidates)
    print(f"\nre-ranking 10k sounds after a weight change: {rerank_time():.1f} ms "
          "(target <= 100 ms)")


if __name__ == "__main__":
    main()
