"""Map agreement: do a query's search results sit near its star on the map?

For each held-out query sound: rank the library in the fitted similarity space at the default
weights (exact: ``argsort(-(index_rows @ query_row))``), take the top ``--top`` (10) results, and
count the fraction of them that are among the ``--near`` (30) map points nearest to the query's
star (Euclidean on the 2-D map). The score is that fraction averaged over queries, with a 95 %
bootstrap interval (2000 resamples of the sounds; the new - old difference is paired).

Two ways to draw the map and place the star, both ``LibraryMap(random_state=0)`` at its defaults:

- ``old``: the map is fitted on the library's raw CNN embeddings and the star is placed with
  ``LibraryMap.transform(raw embedding)`` (the map and the search live in different spaces);
- ``new``: the map is fitted on the rows the search compares, ``space.index_rows(...)``, and the
  star is placed with ``transform(space.index_rows(query))`` (:func:`new_map_and_star`, the one
  function to switch to the product's own map code once it does this).

Queries are never on the map: each collection is split ``--folds`` ways (seeded permutation);
each fold in turn is the queries, the rest is the library the space and both maps are fitted on,
so every sound is a query once per split. ``--repeats`` fresh splits (default 3; a different
split moves a collection's difference by a few hundredths, more than its own interval shows):
a sound's score is its mean over them. Chance is ``near / library size``: the score of a star
dropped at random. 1.0 means every result the list shows is within the star's neighbourhood on
the map; a score near chance means the map says nothing about where the results are.

Collections (benchmarks/sound_collections.py): ``demo`` (data/demo), ``perturb``, and the Debian
game-data packages ``lincity-ng``, ``wesnoth``, ``widelands`` (fetched with ``apt-get download``,
GPL, cached outside the repository). Each is built with the product (``build_library`` then
``load_library``) from a folder of links under the cache; the embeddings and descriptors are kept
in an ``.npz`` beside it, so a rerun (and a rerun on another version of the code) maps the very
same vectors. ``--fresh`` rebuilds.

    .venv/bin/python benchmarks/map_agreement.py    # demo, perturb, lincity-ng, wesnoth: ~1.5 min
    .venv/bin/python benchmarks/map_agreement.py --collections lincity-ng widelands --repeats 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import sound_collections as bench  # noqa: E402

CACHE = bench.CACHE.parent / "map-agreement"
COLLECTIONS: dict[str, Callable[[], bench.Collection]] = {
    "demo": bench.demo,
    "perturb": bench.perturbations,
    **{name: (lambda name=name: bench.debian(name)) for name in bench.DEBIAN},
}
DEFAULT_COLLECTIONS = ("demo", "perturb", "lincity-ng", "wesnoth")
RESAMPLES = 2000

MapAndStar = Callable[..., tuple[np.ndarray, np.ndarray]]


# -------------------------------------------------------------------------------- features
def library_features(collection: bench.Collection, *, fresh: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(embeddings, descriptors, paths) of a collection, as the product's library holds them.

    Built once with ``build_library`` from a folder of links to the collection's files (so the
    library holds exactly the collection), then cached as an ``.npz`` keyed by the file list.
    """
    digest = hashlib.sha256("\n".join(collection.paths).encode()).hexdigest()[:16]
    stored = CACHE / f"{collection.name}-{digest}.npz"
    if stored.exists() and not fresh:
        with np.load(stored, allow_pickle=False) as arrays:
            return arrays["embeddings"], arrays["descriptors"], [str(p) for p in arrays["paths"]]

    import soundslike_nb as sl

    folder = CACHE / f"{collection.name}-{digest}-files"
    folder.mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(collection.paths):
        link = folder / f"{number:04d}-{Path(path).name}"
        if not link.is_symlink():
            link.symlink_to(path)
    library_file = CACHE / f"{collection.name}-{digest}.parquet"
    if fresh and library_file.exists():
        library_file.unlink()
    sl.build_library(str(folder), out=str(library_file), progress=False)
    library = sl.load_library(str(library_file))
    if library.descriptors is None:
        raise SystemExit(f"{library_file}: the library has no descriptors")
    embeddings = np.asarray(library.embeddings, np.float32)
    descriptors = np.asarray(library.descriptors, np.float32)
    paths = [str(p) for p in library.rows["path"]]
    np.savez(stored, embeddings=embeddings, descriptors=descriptors, paths=np.array(paths),
             provenance=np.array(json.dumps(library.embedder_info, default=str)))
    return embeddings, descriptors, paths


# --------------------------------------------------------------------- the two placements
def old_map_and_star(library_embeddings: np.ndarray, library_descriptors: np.ndarray,
                     query_embeddings: np.ndarray, query_descriptors: np.ndarray, *,
                     space) -> tuple[np.ndarray, np.ndarray]:
    """The map as it was: UMAP of the raw CNN embeddings, a query placed by its raw embedding.

    Returns (library coordinates (n, 2), stars (m, 2)).
    """
    from soundslike_nb.projection import LibraryMap

    atlas = LibraryMap(random_state=0).fit(library_embeddings)
    return atlas.coordinates, atlas.transform(query_embeddings)


def new_map_and_star(library_embeddings: np.ndarray, library_descriptors: np.ndarray,
                     query_embeddings: np.ndarray, query_descriptors: np.ndarray, *,
                     space) -> tuple[np.ndarray, np.ndarray]:
    """The map in the search's space: UMAP of ``space.index_rows`` (the rows the search
    compares), a query placed by its own ``index_rows``.

    Returns (library coordinates (n, 2), stars (m, 2)). This is the one function to point at the
    product's map code once it draws the map in the search's space.
    """
    from soundslike_nb.projection import LibraryMap

    atlas = LibraryMap(random_state=0).fit(space.index_rows(library_embeddings,
                                                            library_descriptors))
    return atlas.coordinates, atlas.transform(space.index_rows(query_embeddings,
                                                               query_descriptors))


PLACEMENTS: dict[str, MapAndStar] = {"old": old_map_and_star, "new": new_map_and_star}


# ------------------------------------------------------------------------------ measuring
def search_top(space, library_embeddings: np.ndarray, library_descriptors: np.ndarray,
               query_embeddings: np.ndarray, query_descriptors: np.ndarray, *, top: int
               ) -> np.ndarray:
    """(m, top) library rows each query's search returns at the default weights, exact."""
    rows = space.index_rows(library_embeddings, library_descriptors)
    queries = np.stack([space.query_row(embedding, descriptors)
                        for embedding, descriptors in zip(query_embeddings, query_descriptors)])
    scores = queries @ rows.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :top]


def agreement(coordinates: np.ndarray, stars: np.ndarray, results: np.ndarray, *, near: int
              ) -> np.ndarray:
    """Per query: the fraction of its results among the ``near`` map points nearest its star."""
    distances = np.linalg.norm(stars[:, None, :] - coordinates[None, :, :], axis=2)
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :near]
    return np.array([np.isin(found, close).mean() for found, close in zip(results, nearest)])


def measure(embeddings: np.ndarray, descriptors: np.ndarray, *, folds: int, repeats: int,
            seed: int, top: int, near: int) -> dict:
    """Per-sound scores of every placement: each sound is a query once per repeat (a fresh
    seeded split into ``folds``), its score the mean over the repeats."""
    from soundslike_nb.space import SimilaritySpace

    count = len(embeddings)
    scores = {name: np.zeros((repeats, count)) for name in PLACEMENTS}
    seconds = dict.fromkeys(PLACEMENTS, 0.0)
    library_sizes = []
    for repeat in range(repeats):
        order = np.random.default_rng([seed, repeat]).permutation(count)
        for fold in np.array_split(order, folds):
            library = np.setdiff1d(np.arange(count), fold)
            library_sizes.append(len(library))
            parts = (embeddings[library], descriptors[library], embeddings[fold],
                     descriptors[fold])
            space = SimilaritySpace().fit(embeddings[library], descriptors[library])
            results = search_top(space, *parts, top=top)
            for name, place in PLACEMENTS.items():
                started = time.perf_counter()
                coordinates, stars = place(*parts, space=space)
                seconds[name] += time.perf_counter() - started
                scores[name][repeat, fold] = agreement(np.asarray(coordinates),
                                                       np.asarray(stars), results, near=near)
    return {"scores": {name: values.mean(0) for name, values in scores.items()},
            "library": float(np.mean(library_sizes)), "queries": count, "seconds": seconds}


def interval(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """95 % bootstrap interval of the mean (queries resampled)."""
    draws = rng.integers(0, len(values), (RESAMPLES, len(values)))
    means = values[draws].mean(1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def cell(values: np.ndarray, rng: np.random.Generator, *, signed: bool = False) -> str:
    low, high = interval(values, rng)
    form = "+.3f" if signed else ".3f"
    return f"{values.mean():{form}} [{low:{form}},{high:{form}}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", nargs="+", default=list(DEFAULT_COLLECTIONS),
                        choices=sorted(COLLECTIONS), metavar="NAME",
                        help=f"any of {', '.join(sorted(COLLECTIONS))} "
                             f"(default: {' '.join(DEFAULT_COLLECTIONS)})")
    parser.add_argument("--folds", type=int, default=5,
                        help="library/query splits; each sound is a query once (default 5: "
                             "80 %% library, 20 %% queries)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh splits; each sound is a query once per repeat and scores "
                             "its mean (default 3)")
    parser.add_argument("--top", type=int, default=10, help="search results per query (10)")
    parser.add_argument("--near", type=int, default=30, help="map points near the star (30)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the splits and bootstrap")
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached libraries")
    args = parser.parse_args()
    if args.folds < 2:
        parser.error(f"--folds must be >= 2, got {args.folds}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")

    import soundslike_nb

    began = time.perf_counter()
    print(f"# map agreement: top {args.top} search results among the {args.near} map points "
          f"nearest the query's star; {args.repeats} x {args.folds} folds (seed {args.seed}), "
          f"queries held out\n"
          f"# package {Path(soundslike_nb.__file__).parent}; cache {CACHE}")
    rows = []
    for name in args.collections:
        started = time.perf_counter()
        embeddings, descriptors, _ = library_features(COLLECTIONS[name](), fresh=args.fresh)
        features_s = time.perf_counter() - started
        result = measure(embeddings, descriptors, folds=args.folds, repeats=args.repeats,
                         seed=args.seed, top=args.top, near=args.near)
        rows.append((name, result))
        print(f"  {name:11} {result['queries']:4} sounds: features {features_s:5.1f} s, maps "
              + ", ".join(f"{k} {s:5.1f} s" for k, s in result["seconds"].items()), flush=True)

    print(f"\n{'collection':11} {'library / queries':>17} {'chance':>7} {'old [95% CI]':>21} "
          f"{'new [95% CI]':>21} {'new - old [95% CI]':>24}")
    for name, result in rows:
        # One stream per collection: its intervals do not depend on which others ran.
        rng = np.random.default_rng([args.seed, zlib.crc32(name.encode())])
        old, new = result["scores"]["old"], result["scores"]["new"]
        print(f"{name:11} {result['library']:8.1f} / {result['queries']:<6} "
              f"{min(1.0, args.near / result['library']):7.3f} {cell(old, rng):>21} "
              f"{cell(new, rng):>21} {cell(new - old, rng, signed=True):>24}")
    print(f"\n(library: mean size over the folds; queries: every sound, held out once in each of "
          f"{args.repeats} splits)\ntotal {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
