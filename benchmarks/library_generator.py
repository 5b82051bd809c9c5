"""Large synthetic libraries shaped like real sound effects: CNN embeddings and descriptors.

A sound is a point of a low-dimensional latent space (``latent_dim``): categories, families of
variants inside them (``family_size`` sounds on average), then the sound itself. Its CNN
embedding is a rectified random linear image of the latent point plus noise (the aisfx CNN ends
in a ReLU and a max over time: non-negative, correlated units), and its 86 descriptors another
linear image of the same point plus their own noise, so the aspects agree the way real ones do
(timbre descriptors and the CNN both see the same sound). Durations are log-normal.

The parameters below are calibrated (``--calibrate``) on the largest real library this machine
can assemble (benchmarks/real_sounds.py) by the statistics the index cares about, measured in
the product's fused space (a :class:`~soundslike_nb.space.SimilaritySpace` fitted on the
library, its ``index_rows``) at the real library's size: local intrinsic dimension (MLE, 20
neighbours), relative contrast (mean distance over nearest-neighbour distance), and the share of
IVF lists a query probes for recall@10 0.95. ``stress`` generators (the clustered vectors of the
former benchmark with random or CNN-derived descriptors) are far harder and stay as stress
cases.

    .venv/bin/python benchmarks/library_generator.py             # real vs generated, side by side
    .venv/bin/python benchmarks/library_generator.py --calibrate # search the parameters again
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from soundslike_nb.descriptors import FEATURE_NAMES  # noqa: E402
from soundslike_nb.space import SimilaritySpace  # noqa: E402

EMBEDDING_DIM = 512


@dataclass(frozen=True)
class GeneratorParams:
    """The generator's knobs (defaults: calibrated on real sounds, see the module)."""

    latent_dim: int = 12
    family_size: float = 4.0
    category_spread: float = 1.0
    family_spread: float = 0.8
    sound_spread: float = 0.2
    embedding_noise: float = 0.35
    descriptor_noise: float = 0.5
    log_duration_mean: float = -0.22  # the real sounds' durations: median 0.8 s
    log_duration_sd: float = 1.19


def generate(n_rows: int, *, seed: int = 0, params: GeneratorParams = GeneratorParams()
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings (n, 512) float32, descriptors (n, 86) float32, durations_s (n,)).

    The mixing matrices depend on ``seed`` only, so that a library and its queries drawn with
    :func:`generate_queries` share them.

    Example:
        >>> embeddings, descriptors, durations = generate(100, seed=1)
        >>> embeddings.shape, descriptors.shape, bool((embeddings >= 0).all())
        ((100, 512), (100, 86), True)
    """
    return _draw(n_rows, seed=seed, params=params, draw_seed=seed)


def generate_queries(n_queries: int, n_rows: int, *, seed: int = 0,
                     params: GeneratorParams = GeneratorParams()
                     ) -> tuple[np.ndarray, np.ndarray]:
    """New sounds of the same categories and families as ``generate(n_rows, seed=seed)``
    (not library rows): (embeddings, descriptors)."""
    embeddings, descriptors, _ = _draw(n_rows, seed=seed, params=params, draw_seed=seed + 1_000_003,
                                       count=n_queries)
    return embeddings, descriptors


def _draw(n_rows: int, *, seed: int, params: GeneratorParams, draw_seed: int,
          count: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    count = n_rows if count is None else count
    structure = np.random.default_rng(seed)
    latent = params.latent_dim
    n_families = max(2, round(n_rows / params.family_size))
    n_categories = max(2, round(math.sqrt(n_families)))
    categories = params.category_spread * structure.standard_normal((n_categories, latent))
    family_category = structure.integers(n_categories, size=n_families)
    families = (categories[family_category]
                + params.family_spread * structure.standard_normal((n_families, latent)))
    to_embedding = structure.standard_normal((latent, EMBEDDING_DIM)) / math.sqrt(latent)
    embedding_bias = structure.normal(-0.3, 0.3, EMBEDDING_DIM)
    to_descriptors = structure.standard_normal((latent, len(FEATURE_NAMES))) / math.sqrt(latent)
    descriptor_scale = np.exp(structure.normal(0.0, 1.0, len(FEATURE_NAMES)))
    descriptor_offset = structure.normal(0.0, 2.0, len(FEATURE_NAMES))

    rng = np.random.default_rng(draw_seed)
    embeddings = np.empty((count, EMBEDDING_DIM), np.float32)
    descriptors = np.empty((count, len(FEATURE_NAMES)), np.float32)
    family_of = rng.integers(n_families, size=count)
    for start in range(0, count, 65_536):
        at = family_of[start:start + 65_536]
        points = families[at] + params.sound_spread * rng.standard_normal((len(at), latent))
        raw = points @ to_embedding + embedding_bias
        raw += params.embedding_noise * rng.standard_normal(raw.shape)
        embeddings[start:start + len(at)] = np.maximum(raw, 0.0)
        values = points @ to_descriptors
        values += params.descriptor_noise * rng.standard_normal(values.shape)
        descriptors[start:start + len(at)] = values * descriptor_scale + descriptor_offset
    durations = np.exp(rng.normal(params.log_duration_mean, params.log_duration_sd, count))
    return embeddings, descriptors, durations


def stress(n_rows: int, *, seed: int = 0, descriptors: str = "random"
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The former benchmark's clustered 512-d vectors with ``"random"`` descriptors or ones
    derived from the vectors (``"cnn"``): far harder than real sounds, a stress case only."""
    embeddings = np.abs(_clustered(n_rows, seed=seed))
    durations = np.exp(np.random.default_rng(seed).uniform(math.log(0.05), math.log(600), n_rows))
    rng = np.random.default_rng(seed + 7)
    if descriptors == "random":
        values = rng.standard_normal((n_rows, len(FEATURE_NAMES)))
    else:
        values = embeddings @ rng.standard_normal((EMBEDDING_DIM, len(FEATURE_NAMES)))
    return embeddings, values.astype(np.float32), durations


def _clustered(n_rows: int, *, seed: int, subspace_rank: int = 16, noise_norm: float = 0.2
               ) -> np.ndarray:
    """The former benchmarks/search.py vectors: clusters around centres on the sphere (Zipf
    sizes), each spread along its own random 16-d subspace, plus isotropic noise."""
    rng = np.random.default_rng(seed)
    dimension = EMBEDDING_DIM
    n_clusters = max(8, round(math.sqrt(n_rows)))
    n_groups = max(4, round(math.sqrt(n_clusters)))
    groups = rng.standard_normal((n_groups, dimension))
    groups /= np.linalg.norm(groups, axis=1, keepdims=True)
    jitter = 0.7 * rng.standard_normal((n_clusters, dimension)) / math.sqrt(dimension)
    centres = groups[rng.integers(n_groups, size=n_clusters)] + jitter
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = np.minimum(rng.zipf(1.5, n_clusters), 50).astype(float)
    weights /= weights.sum()
    bases = rng.standard_normal((n_clusters, subspace_rank, dimension)) / math.sqrt(dimension)
    scales = rng.uniform(0.3, 0.8, n_clusters) * math.sqrt(dimension) / subspace_rank
    labels = rng.choice(n_clusters, size=n_rows, p=weights)
    spread = rng.standard_normal((n_rows, subspace_rank)) * scales[labels, None]
    out = np.einsum("nr,nrd->nd", spread, bases[labels]) + centres[labels]
    out += rng.standard_normal((n_rows, dimension)) * noise_norm / math.sqrt(dimension)
    return out.astype(np.float32)


# ---------------------------------------------------------------------------- statistics
def fused_rows(embeddings: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
    """The rows a library's index holds: its own fitted space's ``index_rows``."""
    return SimilaritySpace().fit(embeddings, descriptors).index_rows(embeddings, descriptors)


def statistics(rows: np.ndarray, *, k: int = 20, seed: int = 0) -> dict[str, float]:
    """Local intrinsic dimension (MLE over ``k`` neighbours, Levina-Bickel, mean of the
    per-point estimates), relative contrast and the IVF probe share for recall@10 0.95."""
    import faiss

    unit = np.ascontiguousarray(rows / np.linalg.norm(rows, axis=1, keepdims=True),
                                dtype=np.float32)
    n_rows = len(unit)
    rng = np.random.default_rng(seed)
    probe = np.sort(rng.choice(n_rows, min(n_rows, 1000), False))
    sims = unit[probe] @ unit.T
    distances = np.sqrt(np.maximum(2.0 - 2.0 * sims, 0.0))
    # itself and byte-identical copies (the demo's sounds are also in perturb) are no neighbours
    twins = distances < 2e-3  # float32 puts a row ~5e-4 from itself
    twins[np.arange(len(probe)), probe] = True
    sims[twins] = -np.inf
    distances[twins] = np.inf
    nearest = np.sort(np.partition(distances, k, axis=1)[:, :k], axis=1)
    nearest = np.maximum(nearest, 1e-9)
    lid = (k - 1) / np.log(nearest[:, -1:] / nearest[:, :-1]).sum(axis=1)
    finite = np.where(np.isfinite(distances), distances, np.nan)
    contrast = np.nanmean(finite, axis=1) / nearest[:, 0]

    nlist = max(4, round(math.sqrt(n_rows)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(unit.shape[1]), unit.shape[1], nlist,
                               faiss.METRIC_INNER_PRODUCT)
    index.cp.min_points_per_centroid = 1
    index.train(unit)
    index.add(unit)
    truth = np.argsort(-sims, axis=1)[:, :10]
    share = 1.0
    for nprobe in range(1, nlist + 1):
        index.nprobe = nprobe
        found = index.search(unit[probe], 11)[1]
        hits = sum(len(set(t) & set(f)) for t, f in zip(truth, found))
        if hits >= 0.95 * truth.size:
            share = nprobe / nlist
            break
    return {"lid": float(np.mean(lid)), "contrast": float(np.mean(contrast)),
            "probe_share": share}


def _distance(ours: dict[str, float], target: dict[str, float]) -> float:
    return (abs(math.log(ours["lid"] / target["lid"]))
            + abs(math.log(ours["contrast"] / target["contrast"]))
            + abs(math.log(max(ours["probe_share"], 0.01) / max(target["probe_share"], 0.01))))


def calibrate(target: dict[str, float], n_rows: int, base: GeneratorParams
              ) -> GeneratorParams:
    """A small grid search around ``base`` for the statistics nearest ``target``."""
    best, best_distance = base, math.inf
    # latent_dim: 8, 12 and 16 were tried first (sound spread 0.05-0.4, noise 0.1-0.6): 12
    # matches the real LID; the probe share then needs families spread more widely.
    for family, sound, noise in itertools.product((0.45, 0.8, 1.2), (0.05, 0.1, 0.2),
                                                  (0.1, 0.2, 0.35)):
        params = replace(base, family_spread=family, sound_spread=sound, embedding_noise=noise)
        ours = statistics(fused_rows(*generate(n_rows, seed=1, params=params)[:2]))
        distance = _distance(ours, target)
        print(f"  family {family:.2f} sound {sound:.2f} noise {noise:.2f}: "
              f"{_line(ours)}  distance {distance:.2f}", flush=True)
        if distance < best_distance:
            best, best_distance = params, distance
    return best


def _line(stats: dict[str, float]) -> str:
    return (f"LID {stats['lid']:5.1f}  contrast {stats['contrast']:5.2f}  "
            f"probe share {stats['probe_share']:6.1%}")


def main() -> None:
    from benchmarks.real_sounds import real_library

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args()
    real = real_library()
    n_rows = len(real["embeddings"])
    logs = np.log(np.maximum(real["durations"], 1e-3))
    params = replace(GeneratorParams(), log_duration_mean=float(logs.mean()),
                     log_duration_sd=float(logs.std()))
    started = time.perf_counter()
    target = statistics(fused_rows(real["embeddings"], real["descriptors"]))
    print(f"real: {_line(target)}", flush=True)
    if args.calibrate:
        params = calibrate(target, n_rows, params)
        print(f"chosen: {asdict(params)}")
    print(f"\n# fused rows at {n_rows:,} sounds (the real library's size)")
    print(f"{'library':34} {'LID':>5} {'contrast':>8} {'IVF probe share for 0.95':>25}")
    rows = {f"real ({len(set(real['source']))} collections)": target,
            "generated (calibrated)": statistics(fused_rows(*generate(n_rows, seed=1,
                                                                      params=params)[:2]))}
    for kind in ("random", "cnn"):
        rows[f"stress: clustered + {kind} descriptors"] = statistics(
            fused_rows(*stress(n_rows, seed=1, descriptors=kind)[:2]))
    for name, stats in rows.items():
        print(f"{name:34} {stats['lid']:5.1f} {stats['contrast']:8.2f} "
              f"{stats['probe_share']:25.1%}")
    print(f"real durations: median {np.exp(np.median(logs)):.2f} s, log sd {logs.std():.2f}"
          f"; measured in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
