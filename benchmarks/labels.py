"""Labels that spread: tag 5 % of each category, predict the rest, against a majority baseline.

Collections whose sounds carry a category (built or fetched at benchmark time, cached under
``$SOUNDSLIKE_BENCH_CACHE``, default ``/tmp/soundslike-bench``; nothing here is shipped):

- ``openarena`` (Debian ``openarena-data``, GPL-2+): the sounds inside its ``.pk3`` archives;
  category = the folder under ``sound/`` (``weapons``, ``items``, ``voices``, ``player``...);
- ``widelands`` (Debian ``widelands-data``, GPL-2+): category = the folder under ``sound/``
  (``animals``, ``farm``, ``smiths``...; ``world/critters`` is ``critters``);
- ``wesnoth`` (Debian ``wesnoth-1.16-data``, GPL-2+): its sound folder is flat, so the category
  is the file name's first word (``human-die-1.ogg`` → ``human``): a name, not a folder;
- ``demo`` (``data/demo``, CC0): category = the file stem minus its number (``coin3`` → ``coin``).

Categories of fewer than 3 sounds are left out (one of them tagged leaves at most one to guess).
Byte-identical files are kept once. Each collection is indexed with ``build_library`` (the
product's own path; cached, incremental), then for each of ``--draws`` seeded draws: in every
category ``max(1, round(5 %))`` sounds are tagged with it, ``Library.suggest_labels`` predicts the
others, and we count accuracy (right label among those given one) and coverage (share given one)
at each confidence threshold, next to the majority-class baseline (every untagged sound gets the
category with the most tagged sounds; ties to the larger category) on the same draws.

The method and the default threshold are chosen on ``SELECTION`` and reported on ``HELD_OUT``.

Run: ``.venv/bin/python benchmarks/labels.py [--draws 20]`` (about 10 minutes on 2 shared cores;
``--costs 100000`` measures what tags cost at that many rows instead).

Results (20 draws; 2 shared CPU cores; the aisfx CNN + descriptors space of the product). The
choice maximised the mean of: accuracy at full coverage, accuracy on the most confident half, and
the one-label R-precision, on the selection collections: 5 voters, sharpness 5, reach 10 (0.557;
k 3-10, sharpness 2.5-10, reach 5-20 all within 0.02). The share of the vote alone, without the
closeness factor, ranked as well on the first two (0.01 better) but says nothing in the lasso
case (it is 1.0 everywhere with one label). Default confidence 0.6: the lowest at which the
selection collections reach a mean accuracy of 0.8.

| collection | role | sounds | categories | majority | acc., all | acc. at 0.6 | coverage at 0.6 |
|---|---|---|---|---|---|---|---|
| openarena | selection | 296 | 8 | 0.333 | 0.616 (1.8x) | 0.935 (2.8x) | 0.373 |
| demo | selection | 50 | 10 | 0.098 | 0.474 (4.9x) | 0.774 (7.9x) | 0.188 |
| widelands | held out | 97 | 11 | 0.365 | 0.525 (1.4x) | 0.939 (2.6x) | 0.207 |
| wesnoth | held out | 194 | 30 | 0.041 | 0.532 (13.1x) | 0.974 (24.0x) | 0.158 |

One label only (5 % of one category tagged, the others not), at 0.6: precision 0.35 / 0.16 /
0.18 / 0.15 against a guess of 0.12 / 0.08 / 0.08 / 0.03 (openarena / demo / widelands /
wesnoth), recall 0.49 / 0.77 / 0.74 / 0.80.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import sound_collections as bench  # noqa: E402

CACHE = bench.CACHE.parent / "labels"
SELECTION = ("openarena", "demo")
HELD_OUT = ("widelands", "wesnoth")
SHARE_TAGGED = 0.05
MIN_CATEGORY = 3
_WORD = re.compile(r"[a-z]+")


# ------------------------------------------------------------------------------ collections
def _openarena() -> dict[str, str]:
    """path → category for the sounds in openarena-data's archives (extracted once)."""
    unpacked = bench._fetch("openarena-data") / "usr/share/games/openarena"
    target = CACHE / "openarena-sounds"
    done = target / ".complete"
    if not done.exists():
        for archive in sorted(unpacked.rglob("*.pk3")):
            with zipfile.ZipFile(archive) as pack:
                for member in pack.namelist():
                    parts = Path(member).parts
                    if (len(parts) < 3 or parts[0] != "sound" or ".." in parts
                            or not member.lower().endswith((".wav", ".ogg"))):
                        continue
                    path = target.joinpath(*parts)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(pack.read(member))
        done.touch()
    return {str(path): path.relative_to(target).parts[1]
            for path in sorted(target.rglob("*")) if path.suffix.lower() in {".wav", ".ogg"}}


def _widelands() -> dict[str, str]:
    root = bench._fetch("widelands-data") / "usr/share/games/widelands/data"
    found = {}
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if path.suffix.lower() not in {".wav", ".ogg", ".flac"} or "music" in parts:
            continue
        if parts[0] == "sound" and len(parts) >= 3:
            found[str(path)] = parts[1]
        elif parts[:2] == ("world", "critters"):
            found[str(path)] = "critters"
    return found


def _wesnoth() -> dict[str, str]:
    root = bench._fetch("wesnoth-1.16-data") / "usr/share/games/wesnoth/1.16/data/core/sounds"
    return {str(path): _WORD.findall(path.stem.lower())[0] for path in sorted(root.glob("*"))
            if path.suffix.lower() in {".wav", ".ogg"} and _WORD.findall(path.stem.lower())}


def _demo() -> dict[str, str]:
    collection = bench.demo()
    return dict(zip(collection.paths, collection.families))


SOURCES = {"openarena": _openarena, "demo": _demo, "widelands": _widelands,
           "wesnoth": _wesnoth}


def categorised(name: str) -> tuple[dict[str, str], str]:
    """(path of a link in a folder made for the collection → category, that folder): files
    byte-identical to an earlier one and categories of fewer than ``MIN_CATEGORY`` dropped."""
    found = SOURCES[name]()
    seen, kept = set(), {}
    for path, category in found.items():
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            kept[path] = category
    counts: dict[str, int] = {}
    for category in kept.values():
        counts[category] = counts.get(category, 0) + 1
    folder = CACHE / f"{name}-files"
    folder.mkdir(parents=True, exist_ok=True)
    links = {}
    for number, (path, category) in enumerate(kept.items()):
        if counts[category] < MIN_CATEGORY:
            continue
        link = folder / f"{number:04d}-{Path(path).name}"
        if not link.is_symlink():
            link.symlink_to(path)
        links[str(link.absolute())] = category
    return links, str(folder)


def library_of(name: str):
    """The collection's library (built once, incrementally) and each row's category."""
    import soundslike_nb as sl

    links, folder = categorised(name)
    started = time.perf_counter()
    library = sl.build_library(folder, out=str(CACHE / f"{name}.parquet"), progress=False)
    categories = np.array([links[path] for path in library.rows["path"]])
    print(f"# {name}: {len(library)} sounds, {len(set(categories))} categories, "
          f"library ready in {time.perf_counter() - started:.0f} s", flush=True)
    return library, categories


# ------------------------------------------------------------------------------ the trials
def draws(categories: np.ndarray, *, count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` seeded boolean masks of the tagged sounds: in each category
    ``max(1, round(SHARE_TAGGED * size))`` of its sounds."""
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(count):
        tagged = np.zeros(len(categories), dtype=bool)
        for category in np.unique(categories):
            members = np.flatnonzero(categories == category)
            size = max(1, round(SHARE_TAGGED * len(members)))
            tagged[rng.choice(members, size, replace=False)] = True
        masks.append(tagged)
    return masks


def majority(categories: np.ndarray, tagged: np.ndarray, rng: np.random.Generator) -> str:
    """The category with the most tagged sounds (ties drawn at random, seeded)."""
    names, counts = np.unique(categories[tagged], return_counts=True)
    return str(rng.choice(names[counts == counts.max()]))


def product_scores(library, categories: np.ndarray, tagged: np.ndarray, settings
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(predicted category, confidence) of every sound by ``soundslike_nb.labels.vote``."""
    from soundslike_nb.labels import vote

    names = np.unique(categories[tagged])
    seeds = (categories[:, None] == names[None, :]) & tagged[:, None]
    best, confidence = vote(library, seeds, settings=settings)
    return np.where(best >= 0, names[np.maximum(best, 0)], ""), confidence


def vote_scores(library, categories: np.ndarray, tagged: np.ndarray, *, k: int,
                sharpness: float) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, confidence) by the same vote with the share alone as its confidence (no
    closeness): the comparison that says what the closeness factor buys."""
    from soundslike_nb.labels import _space_rows

    rows = _space_rows(library.searcher, np.arange(len(library)))
    found = library.index.search(rows, k=min(k, int(tagged.sum())),
                                 allowed=library.searcher.file_mask(tagged))
    names = np.unique(categories[tagged])
    weights = np.where(found.indices >= 0, np.exp(sharpness * (found.similarities - 1)), 0)
    votes = np.zeros((len(library), len(names)))
    column = {name: number for number, name in enumerate(names)}
    for row in range(len(library)):
        for neighbour, weight in zip(found.indices[row], weights[row]):
            if neighbour >= 0:
                votes[row, column[categories[neighbour]]] += weight
    totals = np.maximum(votes.sum(axis=1), 1e-30)
    best = votes.argmax(axis=1)
    return names[best], votes[np.arange(len(best)), best] / totals


THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def score(predicted: np.ndarray, confidence: np.ndarray, categories: np.ndarray,
          tagged: np.ndarray) -> dict[float, tuple[float, float]]:
    """threshold → (accuracy among the untagged sounds given a label, their share)."""
    untagged = ~tagged
    right = predicted[untagged] == categories[untagged]
    result = {}
    for threshold in THRESHOLDS:
        covered = (confidence[untagged] >= threshold) & (confidence[untagged] > 0)
        result[threshold] = (float(right[covered].mean()) if covered.any() else float("nan"),
                             float(covered.mean()))
    # How well the confidence ranks: accuracy on the most confident half (ties in row order).
    order = np.argsort(-confidence[untagged], kind="stable")[:max(1, int(untagged.sum()) // 2)]
    result["half"] = (float(right[order].mean()), 0.5)
    return result


def evaluate(name: str, library, categories: np.ndarray, methods: dict, *, count: int
             ) -> dict[str, dict[float, tuple[float, float]]]:
    """Mean (accuracy, coverage) per method and threshold over ``count`` draws, with the
    majority baseline (at full coverage) on the same draws."""
    rng = np.random.default_rng(1)
    totals: dict[str, list] = {method: [] for method in methods}
    baseline = []
    for tagged in draws(categories, count=count):
        guess = majority(categories, tagged, rng)
        baseline.append(float((categories[~tagged] == guess).mean()))
        for method, run in methods.items():
            totals[method].append(score(*run(tagged), categories, tagged))
    summary = {"majority": {0.0: (float(np.mean(baseline)), 1.0)}}
    for method, results in totals.items():
        summary[method] = {threshold: (_mean_defined([r[threshold][0] for r in results]),
                                       float(np.mean([r[threshold][1] for r in results])))
                           for threshold in (*THRESHOLDS, "half")}
    return summary


def _mean_defined(values: list[float]) -> float:
    """The mean of the values that are not NaN (a draw where no sound passed the threshold)."""
    defined = [value for value in values if value == value]
    return float(np.mean(defined)) if defined else float("nan")


def method_grid(library, categories: np.ndarray) -> dict:
    from soundslike_nb.labels import SpreadSettings

    methods = {}
    # The grid of the last run; an earlier one (k 3-20, sharpness 5-20, reach 3-20) put
    # sharpness 5 and reach 5-10 on top, k 5 and 10 within 0.005 of each other.
    for k in (3, 5, 10):
        for sharpness in (2.5, 5.0, 10.0):
            for reach in (5, 10, 20):
                settings = SpreadSettings(neighbours=k, sharpness=sharpness, reach=reach)
                methods[f"vote k={k} sharp={sharpness:g} reach={reach}"] = (
                    lambda tagged, settings=settings:
                    product_scores(library, categories, tagged, settings))
            if k in (5, 10) and sharpness in (5.0, 10.0):
                methods[f"share only k={k} sharp={sharpness:g}"] = (
                    lambda tagged, k=k, sharpness=sharpness: vote_scores(
                        library, categories, tagged, k=k, sharpness=sharpness))
    return methods


def settings_of(method: str):
    """The :class:`SpreadSettings` a ``vote k=.. sharp=.. reach=..`` method name stands for."""
    from soundslike_nb.labels import SpreadSettings

    fields = dict(part.split("=") for part in method.split()[-3:])
    return SpreadSettings(neighbours=int(fields["k"]), sharpness=float(fields["sharp"]),
                          reach=int(fields["reach"]))


def one_label(library, categories: np.ndarray, method: str, threshold: float, *, count: int
              ) -> tuple[float, float, float, float]:
    """The lasso case: only ONE category is tagged (5 % of it). Means over categories and
    draws of: precision and recall of the suggestions at ``threshold`` among the untagged
    sounds; R-precision (precision of the as many most confident suggestions as the category
    has untagged sounds: no threshold); and the precision of a guess (the category's share)."""
    settings = settings_of(method)
    precisions, recalls, ranked, chances = [], [], [], []
    for tagged in draws(categories, count=count):
        for category in np.unique(categories):
            seeds = tagged & (categories == category)
            _, confidence = product_scores(library, categories, seeds, settings)
            untagged = ~seeds
            covered = untagged & (confidence >= threshold) & (confidence > 0)
            members = untagged & (categories == category)
            if covered.any():
                precisions.append(float((categories[covered] == category).mean()))
            recalls.append(float((covered & members).sum() / max(members.sum(), 1)))
            candidates = np.flatnonzero(untagged)
            top = candidates[np.argsort(-confidence[candidates], kind="stable")][
                :int(members.sum())]
            ranked.append(float((categories[top] == category).mean()) if len(top) else 0.0)
            chances.append(float(members.sum() / untagged.sum()))
    return (float(np.mean(precisions)) if precisions else float("nan"),
            float(np.mean(recalls)), float(np.mean(ranked)), float(np.mean(chances)))


# ------------------------------------------------------------------------------ the costs
def _timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def costs(count: int, *, seed: int = 0) -> None:
    """What tags cost on a library of ``count`` seeded clustered 512-d rows (no descriptors):
    writing a tag (the file read and rewritten) next to writing the file alone; the neighbour
    graph and a spread; a search filtered by a label next to one without. And what digests cost
    a build: SHA-256 of the collections' files next to the time their analysis took."""
    import pandas as pd

    import soundslike_nb as sl
    from soundslike_nb._moves import digests_of
    from soundslike_nb.analysis import SoundFeatures
    from soundslike_nb.labels import neighbour_graph
    from soundslike_nb.libfile import ROW_COLUMNS, LibraryTable, write_table

    rng = np.random.default_rng(seed)
    clusters = 200
    centres = rng.standard_normal((clusters, 512)).astype(np.float32)
    basis = rng.standard_normal((clusters, 16, 512)).astype(np.float32) / 4
    members = rng.integers(0, clusters, count)
    embeddings = (centres[members] + np.einsum("nk,nkd->nd", rng.standard_normal(
        (count, 16)).astype(np.float32), basis[members])
        + 0.1 * rng.standard_normal((count, 512)).astype(np.float32))
    rows = pd.DataFrame({
        "name": [f"sound {i}" for i in range(count)],
        "path": [f"/sfx/pack{i % 97}/sound {i}.wav" for i in range(count)],
        "duration": np.exp(rng.uniform(np.log(0.05), np.log(600), count)),
        "sample_rate": 44100, "channels": 2, "frames": 44100, "size": 176400,
        "mtime": 1.7e9}).astype(ROW_COLUMNS)
    out = CACHE / f"costs-{count}.parquet"
    CACHE.mkdir(parents=True, exist_ok=True)
    for stale in CACHE.glob(f"costs-{count}.parquet*"):
        stale.unlink()
    table = LibraryTable(rows, embeddings.astype(np.float32), provenance={
        "embedder": {"id": "synthetic", "dimension": 512}})
    write_s, _ = _timed(lambda: write_table(table, out))
    size_mb = out.stat().st_size / 1e6
    lib = sl.load_library(out)
    index_s, _ = _timed(lambda: lib.index)
    print(f"\n## costs at {count:,} rows x 512 ({size_mb:.0f} MB file; {lib.index!r} built in "
          f"{index_s:.1f} s)")
    print("| what | seconds |\n|---|---|")
    print(f"| write_table alone (baseline) | {write_s:.2f} |")
    picked = rng.choice(count, 1000, replace=False)
    tag_s, _ = _timed(lambda: lib.tag(picked, "impact"))
    print(f"| lib.tag(1,000 sounds): read, merge, rewrite under the write lock | {tag_s:.2f} |")
    again_s, _ = _timed(lambda: lib.tag(picked[:1], "second label"))
    print(f"| lib.tag(1 sound) | {again_s:.2f} |")
    graph_s, _ = _timed(lambda: neighbour_graph(lib, neighbours=10))
    print(f"| neighbour graph, k=10 (once per library content; kept beside it) | {graph_s:.1f} |")
    reload_s, _ = _timed(lambda: neighbour_graph(lib, neighbours=10))
    print(f"| neighbour graph read back | {reload_s:.2f} |")
    for share in (0.01, 0.05):
        tagged = rng.choice(count, int(share * count), replace=False)
        lib.untag(lib.carrying(["impact", "second label"]))
        lib.tag(tagged[: len(tagged) // 2], "impact")
        lib.tag(tagged[len(tagged) // 2:], "whoosh")
        spread_s, suggestions = _timed(lambda: lib.suggest_labels())
        print(f"| suggest_labels with {share:.0%} tagged (2 labels): {len(suggestions):,} "
              f"suggestions | {spread_s:.1f} |")
    queries = [SoundFeatures(embeddings[i], None) for i in rng.choice(count, 50)]
    plain_s, _ = _timed(lambda: [lib.hits(query, k=10) for query in queries])
    filtered_s, _ = _timed(lambda: [lib.hits(query, k=10, tags=["impact"]) for query in queries])
    print(f"| one search, no filter (mean of 50) | {plain_s / 50:.4f} |")
    print(f"| one search, tags=['impact'] ({int(lib.carrying('impact').sum()):,} sounds carry it; "
          f"the mask included) | {filtered_s / 50:.4f} |")

    print("\n## content digests (SHA-256 of each analysed file) next to the analysis")
    print("| collection | files | MB | hashing s | MB/s |\n|---|---|---|---|---|")
    for name in SOURCES:
        links, _ = categorised(name)
        paths = list(links)
        megabytes = sum(Path(path).stat().st_size for path in paths) / 1e6
        hash_s, _ = _timed(lambda paths=paths: digests_of(paths))
        print(f"| {name} | {len(paths)} | {megabytes:.1f} | {hash_s:.2f} | "
              f"{megabytes / max(hash_s, 1e-9):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", nargs="*", default=[*SELECTION, *HELD_OUT])
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--costs", type=int, default=0, metavar="ROWS",
                        help="measure what tags cost at this many rows instead (e.g. 100000)")
    arguments = parser.parse_args()
    if arguments.costs:
        costs(arguments.costs)
        return
    results = {}
    for name in arguments.collections:
        library, categories = library_of(name)
        started = time.perf_counter()
        results[name] = evaluate(name, library, categories, method_grid(library, categories),
                                 count=arguments.draws)
        results[name]["sounds"] = len(library)
        results[name]["library"] = (library, categories)
        print(f"# {name}: evaluated in {time.perf_counter() - started:.0f} s", flush=True)
    report(results, [name for name in arguments.collections if name in SELECTION],
           [name for name in arguments.collections if name in HELD_OUT])


def report(results: dict, selection: list[str], held_out: list[str]) -> None:
    """Choose the method on ``selection`` (the best mean of: accuracy at full coverage, and
    accuracy on the most confident half, which says how well its confidence ranks), then its
    threshold (the lowest whose mean accuracy on ``selection`` is at least 0.8), and print
    every collection's numbers for them."""
    methods = [method for method in next(iter(results.values()))
               if method not in ("majority", "sounds", "library")]

    def mean_over(names, method, threshold, which):
        return float(np.mean([results[name][method][threshold][which] for name in names]))

    lasso = {method: float(np.mean([one_label(*results[name]["library"], method, 1.0,
                                              count=3)[2] for name in selection]))
             for method in methods if method.startswith("vote")}

    def merit(method):
        return float(np.mean([mean_over(selection, method, 0.0, 0),
                              mean_over(selection, method, "half", 0),
                              lasso.get(method, 0.0)]))

    ranked = sorted(methods, key=lambda method: -merit(method))
    products = [method for method in ranked if method.startswith("vote")]
    print("\n## methods on the selection collections (top 15): accuracy at full coverage and "
          "on the most confident half per collection; one-label R-precision (mean); the mean "
          "of the three ('share only': the vote's share without closeness, no lasso score)")
    print(f"{'method':40} " + " ".join(f"{name:>15}" for name in selection))
    for method in ranked[:15]:
        cells = " ".join(f"{results[name][method][0.0][0]:7.3f} "
                         f"{results[name][method]['half'][0]:7.3f}" for name in selection)
        print(f"{method:40} {cells}  {lasso.get(method, float('nan')):.3f}  "
              f"{merit(method):.3f}")
    chosen = products[0]
    threshold = next((t for t in THRESHOLDS if mean_over(selection, chosen, t, 0) >= 0.8),
                     THRESHOLDS[-1])
    print(f"\nchosen on {', '.join(selection)}: {chosen}; default confidence {threshold}")
    print("\n| collection | role | sounds | majority acc. | acc. (all) | "
          f"acc. at {threshold} | coverage at {threshold} | ratio to majority |")
    print("|---|---|---|---|---|---|---|---|")
    for name in [*selection, *held_out]:
        base = results[name]["majority"][0.0][0]
        every = results[name][chosen][0.0][0]
        accuracy, coverage = results[name][chosen][threshold]
        role = "selection" if name in selection else "held out"
        print(f"| {name} | {role} | {results[name]['sounds']} | {base:.3f} | {every:.3f} | "
              f"{accuracy:.3f} | {coverage:.3f} | {every / base:.1f}x / {accuracy / base:.1f}x |")
    print(f"\n## one label only (the lasso case), {chosen} at {threshold}: precision / "
          "recall of its suggestions, R-precision, and a guess (the category's share)")
    for name in [*selection, *held_out]:
        precision, recall, r_precision, chance = one_label(
            *results[name]["library"], chosen, threshold, count=5)
        print(f"{name:10} precision {precision:.3f}  recall {recall:.3f}  "
              f"R-precision {r_precision:.3f}  guess {chance:.3f}")
    print("\n## the chosen method at each threshold: accuracy / coverage")
    for name in [*selection, *held_out]:
        cells = "  ".join(f"{t:.1f}: {results[name][chosen][t][0]:.2f}/"
                          f"{results[name][chosen][t][1]:.2f}" for t in THRESHOLDS)
        print(f"{name:10} {cells}")


if __name__ == "__main__":
    main()
