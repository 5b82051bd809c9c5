"""Regions: find a sound planted inside long recordings, and what regions cost to index.

Seeded beds of 60-180 s each get four demo sounds planted at random times, at a signal-to-noise
ratio of +10, 0 or -5 dB (the planted sound's RMS over its own length against the bed's over
the same stretch). Two splits, so that settings chosen on one are reported on the other:

- **chosen** (the region settings were chosen on these): brown noise; a synthetic ambience of
  modulated, filtered noise with a mains hum and soft clicks; other demo sounds at -20 dB over
  quiet noise; half of the demo's sound families planted, the other half the distractors;
- **held-out**: rain (pink noise and dense droplets), traffic (a low rumble swelling as
  vehicles pass, over hiss), busy (many other sounds overlapping over soft noise); the other
  half of the families planted, the chosen half the distractors; the next seed.

The beds are analysed with regions; each planted sound's clean file is the query. Reported per
SNR:

- region recall@1 and @5: a region of the right bed that holds the planted onset (it starts
  within 0.5 s of it, or overlaps the planted sound by half of the shorter) is among the
  first 1 / 5 results (regions ranked with default weights in a space fitted on all rows,
  the library's own exact search, each moment listed once as `lib.search(..., per_file=0)`
  lists them: a region overlapping a better-ranked one of its bed by half is the same moment);
- *any take* @5: the same, where a region holding another take of the planted sound's family
  counts too (error1 and error5 are two takes of one sound; the planted half of the families
  may put both into the beds, and a query finding the other take first found the sound);
- the median onset error of the best-ranked such region;
- the whole-file baseline in the same run: the right bed among the first 1 / 5 beds when each
  bed is one vector (today's search without regions).

Then the cost: a library where half the audio is long files (chosen-kind beds) and half
one-shots (demo sounds resampled to other lengths), analysed without and with regions (same
process, warm model; wall clock and the process's CPU time), and the regions it gives. Demo
sounds are Kenney's (CC0); the planted ones are never among a bed's distractors.

    .venv/bin/python benchmarks/regions.py                           # 12 beds, ~40 min on 2 cores
    .venv/bin/python benchmarks/regions.py --beds 6                  # ~20 min
    .venv/bin/python benchmarks/regions.py --split none              # indexing time only
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from soundslike_nb.analysis import AnalysisSettings, Analyzer  # noqa: E402
from soundslike_nb.audio import load  # noqa: E402
from soundslike_nb.embedders import get_embedder  # noqa: E402
from soundslike_nb.scan import scan_folders  # noqa: E402
from soundslike_nb.searcher import distinct_moments  # noqa: E402
from soundslike_nb.segmentation import RegionSettings  # noqa: E402
from soundslike_nb.space import SimilaritySpace  # noqa: E402

RATE = 44100
SNRS_DB = (10.0, 0.0, -5.0)
PLANTS_PER_BED = 4
ONSET_SLACK_S = 0.5


@dataclass(frozen=True)
class Plant:
    bed: int
    sound: str
    start_s: float
    length_s: float


def _unit_rms(signal: np.ndarray) -> np.ndarray:
    return (signal / max(float(np.sqrt(np.mean(signal**2))), 1e-9)).astype(np.float32)


def _brown(rng: np.random.Generator, frames: int) -> np.ndarray:
    walk = np.cumsum(rng.standard_normal(frames))
    walk -= np.convolve(walk, np.ones(4410) / 4410, mode="same")  # no drift
    return _unit_rms(walk)


def _ambience(rng: np.random.Generator, frames: int) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    t = np.arange(frames) / RATE
    wind = sosfilt(butter(2, [200, 1800], "bandpass", fs=RATE, output="sos"),
                   rng.standard_normal(frames))
    wind *= 1 + 0.6 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t + rng.uniform(0, 6))
    hum = 0.3 * sum(np.sin(2 * np.pi * 50 * harmonic * t) / harmonic for harmonic in (1, 2, 3))
    clicks = np.zeros(frames)
    for at in rng.integers(0, frames - 200, size=int(frames / RATE)):
        clicks[at:at + 200] += rng.uniform(0.5, 2) * np.exp(-np.arange(200) / 30)
    return _unit_rms(_unit_rms(wind) + _unit_rms(hum) * 0.5 + clicks)


def _scattered(rng: np.random.Generator, frames: int, sounds: list[np.ndarray]) -> np.ndarray:
    bed = 0.1 * rng.standard_normal(frames)
    for _ in range(int(frames / RATE / 3)):
        sound = sounds[rng.integers(len(sounds))]
        at = int(rng.integers(0, max(1, frames - len(sound))))
        bed[at:at + len(sound)] += 0.1 * _unit_rms(sound)[:frames - at]
    return _unit_rms(bed)


def _rain(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Pink-ish noise with dense, soft droplets (a held-out kind of bed)."""
    from scipy.signal import lfilter

    pink = lfilter([0.049922, -0.095993, 0.050612, -0.004408], [1, -2.494956, 2.017265,
                                                                -0.522189],
                   rng.standard_normal(frames))
    drops = np.zeros(frames)
    for at in rng.integers(0, frames - 400, size=int(20 * frames / RATE)):
        ring = np.sin(2 * np.pi * rng.uniform(1500, 5000) * np.arange(400) / RATE)
        drops[at:at + 400] += rng.uniform(0.2, 1) * ring * np.exp(-np.arange(400) / 60)
    return _unit_rms(_unit_rms(pink) + 0.5 * _unit_rms(drops))


def _traffic(rng: np.random.Generator, frames: int) -> np.ndarray:
    """A low rumble that swells as vehicles pass, over broadband hiss (a held-out kind)."""
    from scipy.signal import butter, sosfilt

    t = np.arange(frames) / RATE
    rumble = sosfilt(butter(2, 300, "lowpass", fs=RATE, output="sos"),
                     rng.standard_normal(frames))
    swell = np.full(frames, 0.3)
    for centre in rng.uniform(0, t[-1], size=max(1, int(t[-1] / 8))):
        swell += np.exp(-((t - centre) / rng.uniform(1.5, 4)) ** 2)
    hiss = 0.2 * rng.standard_normal(frames)
    return _unit_rms(_unit_rms(rumble) * swell + hiss)


def _busy(rng: np.random.Generator, frames: int, sounds: list[np.ndarray]) -> np.ndarray:
    """Many other sounds overlapping at random levels over soft noise (a held-out kind)."""
    bed = 0.2 * rng.standard_normal(frames)
    for _ in range(int(frames / RATE)):
        sound = sounds[rng.integers(len(sounds))]
        at = int(rng.integers(0, max(1, frames - len(sound))))
        bed[at:at + len(sound)] += rng.uniform(0.05, 0.2) * _unit_rms(sound)[:frames - at]
    return _unit_rms(bed)


def _family(path: Path) -> str:
    return path.stem.rstrip("0123456789").lower()


def make_beds(folder: Path, *, count: int, snr_db: float, seed: int,
              held_out_from: int | None = None
              ) -> tuple[list[Path], list[Plant], dict[str, Path]]:
    """``count`` beds with planted demo sounds; returns the bed files, the plants and the
    query file of each planted sound. ``held_out_from``: the seed of the chosen beds; the
    other half of the sound families (the chosen beds' distractors) is planted, and the chosen
    half are the distractors, into other kinds of bed (rain, traffic, busy), none of which
    the region settings were chosen on."""
    rng = np.random.default_rng(seed)
    demo = sorted(p for p in (ROOT / "data" / "demo").rglob("*")
                  if p.suffix.lower() in {".wav", ".ogg", ".mp3", ".flac"})
    # Planted and distractor sounds come from different families (coin1 and coin3 are one),
    # so that finding a planted sound is not confused with telling two takes apart.
    families = sorted({_family(path) for path in demo})
    held_out = held_out_from is not None
    order = (np.random.default_rng(held_out_from).permutation(families) if held_out
             else rng.permutation(families))
    planted_families = set(order[: len(families) // 2].tolist())
    if held_out:
        planted_families = set(families) - planted_families
    planted_files = [path for path in demo if _family(path) in planted_families]
    distractors = [load(path, sample_rate=RATE)[0] for path in demo
                   if _family(path) not in planted_families]
    planted_audio = {p.name: load(p, sample_rate=RATE)[0] for p in planted_files}
    folder.mkdir(parents=True, exist_ok=True)
    beds, plants = [], []
    for index in range(count):
        seconds = float(rng.choice([60, 90, 180]))
        frames = int(seconds * RATE)
        kind = index % 3
        if held_out:
            bed = (_rain(rng, frames) if kind == 0 else _traffic(rng, frames) if kind == 1
                   else _busy(rng, frames, distractors))
        else:
            bed = (_brown(rng, frames) if kind == 0 else _ambience(rng, frames) if kind == 1
                   else _scattered(rng, frames, distractors))
        slots = np.sort(rng.choice(np.arange(2, int(seconds) - 4, 4), PLANTS_PER_BED,
                                   replace=False)).astype(float)
        for slot in slots:
            name = planted_files[int(rng.integers(len(planted_files)))].name
            sound = planted_audio[name]
            start = slot + rng.uniform(0, 1.5)
            first = int(start * RATE)
            stretch = bed[first:first + len(sound)]
            gain = np.sqrt(np.mean(stretch**2)) * 10 ** (snr_db / 20)
            bed[first:first + len(sound)] += gain * _unit_rms(sound)[:len(stretch)]
            plants.append(Plant(index, name, float(start), len(sound) / RATE))
        path = folder / f"bed{index:02d}.wav"
        sf.write(path, 0.05 * bed / max(1.0, float(np.abs(0.05 * bed).max()) / 0.99), RATE,
                 subtype="FLOAT")
        beds.append(path)
    return beds, plants, {p.name: p for p in planted_files}


def analyse(analyzer: Analyzer, folder: Path):
    files = scan_folders([folder]).files
    started, cpu = time.perf_counter(), time.process_time()
    batches = list(analyzer.analyse_files(files))
    return batches, time.perf_counter() - started, time.process_time() - cpu


def rows_of(batches) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """File and region rows together: embeddings, descriptors, owner path, span (nan for a
    whole file)."""
    embeddings, descriptors, owners, spans = [], [], [], []
    for batch in batches:
        paths = [item.entry.path for item in batch.decoded]
        embeddings.append(batch.embeddings)
        descriptors.append(batch.descriptors)
        owners += paths
        spans.append(np.full((len(paths), 2), np.nan))
        regions = batch.regions
        if regions is not None and len(regions):
            embeddings.append(regions.embeddings)
            descriptors.append(regions.descriptors)
            owners += [paths[owner] for owner in regions.owners]
            spans.append(regions.spans_s)
    return (np.concatenate(embeddings), np.concatenate(descriptors), owners,
            np.concatenate(spans))


def hit(span: np.ndarray, plant: Plant) -> bool:
    start, end = span
    if abs(start - plant.start_s) <= ONSET_SLACK_S:
        return True
    overlap = min(end, plant.start_s + plant.length_s) - max(start, plant.start_s)
    return overlap >= 0.5 * min(end - start, plant.length_s)


def evaluate(snr_db: float, *, beds: int, analyzer: Analyzer, embedder, seed: int,
             held_out_from: int | None = None) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        bed_paths, plants, queries = make_beds(Path(scratch) / "beds", count=beds,
                                               snr_db=snr_db, seed=seed,
                                               held_out_from=held_out_from)
        batches, _, _ = analyse(analyzer, Path(scratch) / "beds")
        embeddings, descriptors, owners, spans = rows_of(batches)
        space = SimilaritySpace().fit(embeddings, descriptors)
        rows = space.index_rows(embeddings, descriptors)
        query_features = {name: Analyzer(embedder).analyse(path)
                          for name, path in queries.items()}
    whole = np.isnan(spans[:, 0])
    bed_of = {str(path): index for index, path in enumerate(bed_paths)}
    owner_bed = np.array([bed_of[owner] for owner in owners])
    found1 = found5 = whole1 = whole5 = family5 = 0
    errors = []
    for plant in plants:
        features = query_features[plant.sound]
        scores = rows @ space.query_row(features.embedding, features.descriptors)
        # Any occurrence of the planted sound counts (a sound may be planted in two beds).
        occurrences = [p for p in plants if p.sound == plant.sound]
        # regions ranked as `lib.search(..., per_file=0)` lists them: each moment once
        ranked = np.argsort(-np.where(whole, -np.inf, scores))[:min(int((~whole).sum()), 400)]
        top = ranked[distinct_moments(owner_bed[ranked], spans[ranked], per_file=None)][:5]
        held = [next((p for p in occurrences if p.bed == owner_bed[row] and hit(spans[row], p)),
                     None) for row in top]
        found1 += held[0] is not None
        found5 += any(occurrence is not None for occurrence in held)
        takes = [p for p in plants if _family(Path(p.sound)) == _family(Path(plant.sound))]
        family5 += any(p.bed == owner_bed[row] and hit(spans[row], p)
                       for row in top for p in takes)
        for row, occurrence in zip(top, held):
            if occurrence is not None:
                errors.append(abs(spans[row, 0] - occurrence.start_s))
                break
        beds_ranked = owner_bed[whole][np.argsort(-scores[whole])]
        wanted = {p.bed for p in occurrences}
        whole1 += beds_ranked[0] in wanted
        whole5 += bool(set(beds_ranked[:5].tolist()) & wanted)
    count = len(plants)
    return {"snr": snr_db, "plants": count, "regions": int((~whole).sum()),
            "recall@1": found1 / count, "recall@5": found5 / count,
            "family@5": family5 / count,
            "onset_error": float(np.median(errors)) if errors else float("nan"),
            "whole@1": whole1 / count, "whole@5": whole5 / count}


def cost(*, beds: int, embedder, seed: int) -> dict:
    """Analysis time and rows without and with regions, half of the audio in long files."""
    rng = np.random.default_rng(seed + 1)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "library"
        bed_paths, _, _ = make_beds(folder / "long", count=beds, snr_db=0.0, seed=seed)
        long_s = sum(sf.info(path).duration for path in bed_paths)
        demo = [load(p, sample_rate=RATE)[0] for p in sorted((ROOT / "data" / "demo").rglob("*"))
                if p.suffix.lower() in {".wav", ".ogg", ".mp3"}]
        short_s, index = 0.0, 0
        (folder / "short").mkdir(parents=True)
        while short_s < long_s:
            sound = demo[index % len(demo)]
            factor = rng.uniform(1.0, 6.0)  # resampled: another length, another pitch
            import soxr

            rendered = soxr.resample(sound, RATE, RATE / factor).astype(np.float32)
            sf.write(folder / "short" / f"shot{index:04d}.wav", rendered, RATE)
            short_s += len(rendered) / RATE
            index += 1
        plain = Analyzer(embedder, AnalysisSettings(regions=None))  # regions are the default
        with_regions = Analyzer(embedder, AnalysisSettings(regions=RegionSettings()))
        analyse(plain, folder / "short")  # warm up the model and the caches
        times = {}
        for name, analyzer in (("without", plain), ("with", with_regions),
                               ("without again", plain)):
            batches, seconds, cpu_s = analyse(analyzer, folder)
            regions = sum(len(b.regions) for b in batches if b.regions is not None)
            times[name] = (seconds, cpu_s, regions)
    # the process's CPU time too: the wall clock also counts whatever else the cores ran
    baseline = min(times["without"][0], times["without again"][0])
    cpu_baseline = min(times["without"][1], times["without again"][1])
    return {"long_s": long_s, "short_s": short_s, "files": index + beds,
            "without_s": baseline, "with_s": times["with"][0], "regions": times["with"][2],
            "ratio": times["with"][0] / baseline, "cpu_without_s": cpu_baseline,
            "cpu_with_s": times["with"][1], "cpu_ratio": times["with"][1] / cpu_baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beds", type=int, default=12, help="long recordings per SNR")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=["chosen", "held-out", "both", "none"],
                        default="both",
                        help="the beds and sounds the settings were chosen on, the held-out "
                             "ones (other bed kinds, other sound families, seed + 1), both, or "
                             "none (only the indexing time)")
    parser.add_argument("--no-cost", action="store_true", help="skip the indexing-time part")
    args = parser.parse_args()
    embedder = get_embedder("aisfx")
    analyzer = Analyzer(embedder, AnalysisSettings(regions=RegionSettings()))
    print(f"{args.beds} beds of 60-180 s, {PLANTS_PER_BED} planted demo sounds each; "
          f"aisfx, default weights, exact search over the regions, each moment once\n")
    splits = {"chosen": (False, args.seed), "held-out": (True, args.seed + 1)}
    chosen = {"both": ["chosen", "held-out"], "none": []}.get(args.split, [args.split])
    for split in chosen:
        held_out, seed = splits[split]
        print(f"\n{split}: " + ("rain, traffic and busy beds, the other sound families, seed "
                                f"{seed}" if held_out else "brown noise, ambience and scattered "
                                f"beds, seed {seed}") + "\n")
        print("| SNR | planted | regions | region recall@1 | recall@5 | any take @5 | "
              "median onset error | whole file @1 | whole file @5 |")
        print("|---|---|---|---|---|---|---|---|---|")
        for snr_db in SNRS_DB:
            row = evaluate(snr_db, beds=args.beds, analyzer=analyzer, embedder=embedder,
                           seed=seed, held_out_from=args.seed if held_out else None)
            print(f"| {row['snr']:+.0f} dB | {row['plants']} | {row['regions']} | "
                  f"{row['recall@1']:.2f} | {row['recall@5']:.2f} | {row['family@5']:.2f} | "
                  f"{row['onset_error']:.3f} s | {row['whole@1']:.2f} | {row['whole@5']:.2f} |",
                  flush=True)
    if args.no_cost:
        return
    spent = cost(beds=max(3, args.beds // 2), embedder=embedder, seed=args.seed)
    print(f"\nIndexing {spent['files']} files, {spent['long_s']:.0f} s in long files and "
          f"{spent['short_s']:.0f} s in one-shots: {spent['without_s']:.1f} s without regions, "
          f"{spent['with_s']:.1f} s with ({spent['regions']} regions): "
          f"{spent['ratio']:.2f}x; CPU time {spent['cpu_without_s']:.1f} s and "
          f"{spent['cpu_with_s']:.1f} s: {spent['cpu_ratio']:.2f}x")


if __name__ == "__main__":
    main()
