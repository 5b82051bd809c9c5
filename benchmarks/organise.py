"""Near-duplicates, measured: planted copies found, distinct takes kept apart, time at 100k rows.

Each source sound is rendered 7 ways, the renderings a library really holds: an MP3 and an Ogg
Vorbis round trip, resampled to 22.05 kHz, +6 dB (float WAV, no clipping), -6 dB, 5 ms trimmed
at the start and 3 ms at the end, and a stereo copy. The sources come in families of distinct
takes of one kind of sound (``coin1`` ... ``coin5``; Debian games' ``bird2_01``, ``bird2_02``),
which must *not* be grouped. The truth: one group per source, of its 8 files.

- ``demo`` (data/demo, 56 sources): where the defaults were chosen (``audio_match``:
  16 kHz, correlation 0.92, low band 2 kHz at 0.96; ``duplicate_candidates``: cosine 0.9);
- ``lincity-ng`` (Debian game data, fetched by ``sound_collections``): its first run missed
  three low-bitrate MP3s of noisy sounds, which is why the low-band check exists (its
  threshold still comes from the demo's distinct takes): not a clean report any more;
- ``wesnoth``, ``widelands`` (Debian): reported, never looked at while choosing.
Debian collections: up to ``--sources`` sources, whole families of >= 2 takes, seeded.

Scores: pair precision and recall (pairs of files put in one group, against pairs of one
source), groups found exactly, and groups that merged distinct sources. Then the candidate stage
at 100,000 rows (the real embeddings of those libraries, each repeated with small perturbations
and durations jittered: neighbourhoods as dense as real ones, far more near-copies than a real
library), for the banded exact path and the clustered join (faiss k-means), and the audio
check's cost per pair.

Measured 2026-12-05 (2 CPU cores shared with other jobs, load ~8: timings are upper bounds):

| collection | role | files | sources | pair precision | pair recall | exact groups | merged |
|---|---|---|---|---|---|---|---|
| demo | chosen on | 448 | 56 | 1.000 | 1.000 | 1.000 | 0 |
| lincity-ng | looked at | 640 | 80 | 1.000 | 0.997 | 0.988 | 0 |
| wesnoth | reported | 632 | 79 | 1.000 | 1.000 | 1.000 | 0 |
| widelands | reported | 640 | 80 | 1.000 | 0.991 | 0.963 | 0 |

No group merged two sources (no distinct sibling merged). Misses: one 11 kHz MP3 (lincity-ng),
three Ogg copies of 13-15 s high-pitched ambiences at 22 kHz (widelands: correlation 0.84-0.92,
too little energy below 2 kHz for the low-band check). Candidate stage at 100,000 rows:
banded exact 9.6 s (764,882 pairs), clustered join 26.4 s, all durations equal (the worst
case, clustered join) 37.3 s. Audio check: ~1.5 ms decoding per file, ~20 ms per pair of
2.8 s sounds; only candidate pairs are checked, and pairs already joined are skipped.

Run: ``.venv/bin/python benchmarks/organise.py [--sources 80] [--rows 100000]``
(first run: ~4 minutes of embedding on 2 cores; libraries are cached under
``/tmp/soundslike-bench/organise``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sound_collections as bench  # noqa: E402

from soundslike_nb.audio_match import MatchSettings, correlation, decode_for_match  # noqa: E402
from soundslike_nb.duplicate_candidates import CandidateSettings, candidate_pairs  # noqa: E402

CACHE = bench.CACHE.parent / "organise"
RENDER_VERSION = 1
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
RENDERINGS = ("original", "mp3", "ogg", "22k", "plus6dB", "minus6dB", "trimmed", "stereo")


def render(source: str, folder: Path) -> list[Path]:
    """The source (copied as it is) and its 7 renderings, in ``folder``."""
    import soundfile as sf
    import soxr

    data, rate = sf.read(source, always_2d=True, dtype="float32")
    mono = data.mean(axis=1)
    folder.mkdir(parents=True, exist_ok=True)
    original = folder / f"original{Path(source).suffix.lower()}"
    shutil.copy(source, original)
    mp3_rate = rate if rate in MP3_RATES else 44100
    cut = mono[int(0.005 * rate):len(mono) - int(0.003 * rate)]
    writes = [
        ("mp3.mp3", mono if mp3_rate == rate else soxr.resample(mono, rate, mp3_rate), mp3_rate,
         {"format": "MP3"}),
        ("ogg.ogg", mono, rate, {"format": "OGG", "subtype": "VORBIS"}),
        ("22k.wav", soxr.resample(mono, rate, 22050), 22050, {"subtype": "PCM_16"}),
        ("plus6dB.wav", 2.0 * mono, rate, {"subtype": "FLOAT"}),
        ("minus6dB.wav", 0.5 * mono, rate, {"subtype": "PCM_16"}),
        ("trimmed.wav", cut, rate, {"subtype": "PCM_24"}),
        ("stereo.wav", np.stack([mono, mono], axis=1), rate, {"subtype": "PCM_16"}),
    ]
    paths = [original]
    for name, samples, sample_rate, options in writes:
        sf.write(folder / name, samples, sample_rate, **options)
        paths.append(folder / name)
    return paths


def sources_of(name: str, limit: int) -> tuple[list[str], list[str]]:
    """Source files and their families: whole families (>= 2 takes), seeded, up to ``limit``."""
    collection = bench.demo() if name == "demo" else bench.debian(name)
    by_family: dict[str, list[str]] = {}
    for path, family in zip(collection.paths, collection.families):
        by_family.setdefault(family, []).append(path)
    rng = np.random.default_rng(17)
    chosen: list[str] = []
    families: list[str] = []
    for family in rng.permutation(sorted(by_family)):
        members = by_family[family]
        if name != "demo" and len(members) < 2:
            continue
        if len(chosen) + len(members) > limit:
            continue
        chosen += members
        families += [family] * len(members)
    return chosen, families


def planted_library(name: str, limit: int):
    """The planted folder's library (built once, cached) and each row's source."""
    from soundslike_nb import build_library, load_library

    folder = CACHE / f"{name}-v{RENDER_VERSION}-{limit}"
    out = folder.with_suffix(".parquet")
    sources, families = sources_of(name, limit)
    truth: dict[str, tuple[str, str]] = {}
    for number, (source, family) in enumerate(zip(sources, families)):
        target = folder / f"{number:04d}"
        paths = (render(source, target) if not (target / "stereo.wav").exists()
                 else sorted(target.iterdir()))
        for path in paths:
            truth[str(path)] = (source, family)
    library = load_library(out) if out.exists() else build_library(folder, out=out,
                                                                    progress=False)
    return library, truth


def scores(groups, truth: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Pair precision / recall, exact groups, merged sources and merged siblings."""
    predicted = {path: group for path, group in zip(groups["path"], groups["group"])}
    paths = sorted(truth)
    source = np.array([truth[path][0] for path in paths])
    family = np.array([truth[path][1] for path in paths])
    group = np.array([predicted.get(path, -1 - i) for i, path in enumerate(paths)])
    same_source = source[:, None] == source[None, :]
    same_group = group[:, None] == group[None, :]
    upper = np.triu(np.ones_like(same_source), 1)
    true_pairs = int((same_source & upper).sum())
    found_pairs = int((same_group & upper).sum())
    hits = int((same_source & same_group & upper).sum())
    members: dict[int, set[str]] = {}
    for path, label in zip(paths, group):
        members.setdefault(int(label), set()).add(truth[path][0])
    merged = [sources for label, sources in members.items() if label >= 0 and len(sources) > 1]
    merged_siblings = sum(len({family[source == s][0] for s in sources}) < len(sources)
                          for sources in merged)
    exact = 0
    for one in np.unique(source):
        labels = set(group[source == one].tolist())
        if len(labels) == 1 and (group == next(iter(labels))).sum() == (source == one).sum():
            exact += 1
    return {"files": len(paths), "sources": len(np.unique(source)),
            "families": len(np.unique(family)),
            "precision": hits / found_pairs if found_pairs else 1.0,
            "recall": hits / true_pairs if true_pairs else 1.0,
            "exact groups": exact / len(np.unique(source)),
            "merged groups": len(merged), "merged siblings": merged_siblings}


def quality(names: list[str], limit: int) -> list:
    from soundslike_nb.duplicates import find_duplicates

    print("\n## Planted renderings: groups against the truth (one group per source)\n")
    print("| collection | role | files | sources | families | pair precision | pair recall "
          "| exact groups | groups merging sources (of them siblings) | time s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    libraries = []
    for name in names:
        library, truth = planted_library(name, limit)
        started = time.perf_counter()
        groups = find_duplicates(library)
        seconds = time.perf_counter() - started
        result = scores(groups, truth)
        role = {"demo": "chosen on", "lincity-ng": "looked at"}.get(name, "reported")
        print(f"| {name} | {role} | {result['files']} | {result['sources']} | "
              f"{result['families']} | {result['precision']:.3f} | {result['recall']:.3f} | "
              f"{result['exact groups']:.3f} | {result['merged groups']} "
              f"({result['merged siblings']}) | {seconds:.1f} |")
        libraries.append((name, library, groups, truth))
    return libraries


def misses(libraries) -> None:
    """Which renderings were missed (split off their source's group), per collection."""
    print("\n## Where the misses are (files not in their source's group, by rendering)\n")
    for name, _library, groups, truth in libraries:
        predicted = dict(zip(groups["path"], groups["group"]))
        by_source: dict[str, list[str]] = {}
        for path, (source, _family) in truth.items():
            by_source.setdefault(source, []).append(path)
        missed: dict[str, int] = {}
        for paths in by_source.values():
            labels = [predicted.get(path) for path in paths]
            majority = max(set(labels), key=labels.count)
            for path, label in zip(paths, labels):
                if label != majority or label is None:
                    kind = Path(path).stem
                    missed[kind] = missed.get(kind, 0) + 1
        print(f"- {name}: {missed or 'none'}")


def audio_cost(libraries) -> float:
    """Seconds per audio check (decode both at 16 kHz + correlate), on real candidate pairs."""
    settings = MatchSettings()
    paths = [path for _, library, _, _ in libraries for path in library.rows["path"][:200]]
    started = time.perf_counter()
    waveforms = [decode_for_match(path, settings) for path in paths]
    decoded = time.perf_counter() - started
    started = time.perf_counter()
    pairs = 0
    for first, second in itertools.pairwise(waveforms):
        correlation(first, second, settings)
        pairs += 1
    correlated = time.perf_counter() - started
    per_pair = correlated / pairs + 2 * decoded / len(paths)
    print(f"\naudio check: decode {1000 * decoded / len(paths):.1f} ms per file, correlate "
          f"{1000 * correlated / pairs:.1f} ms per pair (mean length "
          f"{np.mean([len(w) for w in waveforms]) / settings.sample_rate:.2f} s)")
    return per_pair


def large(libraries, rows: int, seed: int = 0) -> None:
    """The candidate stage at ``rows`` rows built from the real embeddings and durations."""
    rng = np.random.default_rng(seed)
    vectors = np.concatenate([lib.embeddings for _, lib, _, _ in libraries]).astype(np.float32)
    durations = np.concatenate([lib.rows["duration"].to_numpy() for _, lib, _, _ in libraries])
    picks = rng.integers(0, len(vectors), rows)
    scale = np.linalg.norm(vectors, axis=1).mean()
    noisy = vectors[picks] + rng.standard_normal((rows, vectors.shape[1])).astype(
        np.float32) * (0.25 * scale / np.sqrt(vectors.shape[1]))
    jittered = durations[picks] * np.exp(rng.normal(0, 0.3, rows))
    print(f"\n## Candidate stage at {rows:,} rows ({os.cpu_count()} CPU cores)\n")
    print("| path | seconds | candidate pairs | pairs per row |")
    print("|---|---|---|---|")
    for label, settings in (("banded exact (default)", CandidateSettings()),
                            ("clustered join (forced)", CandidateSettings(exact_budget=0))):
        started = time.perf_counter()
        first, _, _ = candidate_pairs(noisy, jittered, settings=settings)
        seconds = time.perf_counter() - started
        print(f"| {label} | {seconds:.1f} | {len(first):,} | {len(first) / rows:.2f} |")
    same = np.full(rows, 1.0)
    started = time.perf_counter()
    first, _, _ = candidate_pairs(noisy, same)
    seconds = time.perf_counter() - started
    print(f"| every sound 1.000 s long (auto: clustered join) | {seconds:.1f} "
          f"| {len(first):,} | {len(first) / rows:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", nargs="+",
                        default=["demo", "lincity-ng", "wesnoth", "widelands"])
    parser.add_argument("--sources", type=int, default=80, help="sources per Debian collection")
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    print("# Near-duplicates (benchmarks/organise.py)")
    libraries = quality(args.collections, args.sources)
    misses(libraries)
    audio_cost(libraries)
    large(libraries, args.rows)


if __name__ == "__main__":
    main()
