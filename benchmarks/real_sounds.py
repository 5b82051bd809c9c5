"""The largest real sound-effects library this machine can assemble, as the product's rows.

Every sound effect (music left out) of the demo, its perturbations and the Debian game-data
packages below, analysed the way a library build analyses them (the aisfx CNN with zero
padding, the classic descriptors), cached per collection under
``$SOUNDSLIKE_BENCH_CACHE/real-sounds`` so that each collection is analysed once. The fused rows
come from a :class:`~soundslike_nb.space.SimilaritySpace` fitted on all of them together, as a
library of these sounds would fit it. Used to calibrate ``benchmarks/library_generator.py``.

Packages (licences from their ``debian/copyright``): lincity-ng-data (GPL-2+), widelands-data
(GPL-2+), wesnoth-1.16-data (GPL-2+), openarena-data (GPL-2, sounds from its ``pak*.pk3``),
pingus-data (GPL-3+), frozen-bubble-data (GPL-2+).

    .venv/bin/python benchmarks/real_sounds.py      # analyse what is missing, print a summary
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import sound_collections as bench  # noqa: E402

CACHE = bench.CACHE.parent / "real-sounds"
PACKAGES = {"lincity-ng-data": "usr/share/games/lincity-ng/sounds",
            "widelands-data": "usr/share/games/widelands/data",
            "wesnoth-1.16-data": "usr/share/games/wesnoth/1.16",
            "openarena-data": "usr/share/games/openarena",
            "pingus-data": "usr/share/games/pingus",
            "frozen-bubble-data": "usr/share/games/frozen-bubble"}
_SUFFIXES = {".ogg", ".wav", ".flac"}


def _package_files(package: str, root: str) -> list[Path]:
    """The package's sound effects, byte-identical files once; pk3 archives unpacked."""
    unpacked = bench._fetch(package)
    files = []
    for path in sorted((unpacked / root).rglob("*")):
        if path.suffix.lower() == ".pk3":
            target = CACHE / "pk3" / package / path.stem
            if not (target / ".complete").exists():
                with zipfile.ZipFile(path) as archive:
                    for name in archive.namelist():
                        if Path(name).suffix.lower() in _SUFFIXES and "music" not in name.lower():
                            archive.extract(name, target)
                target.mkdir(parents=True, exist_ok=True)
                (target / ".complete").touch()
            files += sorted(p for p in target.rglob("*") if p.suffix.lower() in _SUFFIXES)
        elif path.suffix.lower() in _SUFFIXES and "music" not in path.as_posix().lower():
            files.append(path)
    seen: set[str] = set()
    unique = []
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            unique.append(path)
    return unique


def collections() -> dict[str, list[str]]:
    """Name → sound files of each collection."""
    found = {"demo": list(bench.demo().paths), "perturb": list(bench.perturbations().paths)}
    for package, root in PACKAGES.items():
        found[package] = [str(path) for path in _package_files(package, root)]
    return found


def analysed(name: str, paths: list[str], embedder) -> dict[str, np.ndarray]:
    """Embeddings, descriptors and durations of one collection (cached)."""
    from soundslike_nb.analysis import AnalysisSettings
    from soundslike_nb.audio import load
    from soundslike_nb.descriptors import DESCRIPTOR_VERSION, describe

    key = hashlib.sha256(repr((paths, embedder.provenance, DESCRIPTOR_VERSION)).encode())
    path = CACHE / f"{name}-{key.hexdigest()[:16]}.npz"
    if path.exists():
        with np.load(path) as stored:
            return {field: stored[field] for field in stored.files}
    rate = embedder.sample_rate
    limit = AnalysisSettings().max_duration_s
    embeddings, descriptors, durations = [], [], []
    for start in range(0, len(paths), 16):
        batch = [load(p, sample_rate=rate, max_duration=limit)[0] for p in paths[start:start + 16]]
        embeddings.append(embedder.embed(batch))
        descriptors.append(describe(batch, rate))
        durations += [len(waveform) / rate for waveform in batch]
    result = {"embeddings": np.concatenate(embeddings).astype(np.float32),
              "descriptors": np.concatenate(descriptors).astype(np.float32),
              "durations": np.asarray(durations)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **result)
    return result


def real_library(*, progress: bool = False) -> dict[str, np.ndarray]:
    """Every collection together: embeddings, descriptors, durations and ``source`` names."""
    from soundslike_nb.embedders import get_embedder

    embedder = get_embedder("aisfx")
    parts, sources = [], []
    for name, paths in collections().items():
        part = analysed(name, paths, embedder)
        if progress:
            print(f"  {name:19} {len(paths):5} sounds", flush=True)
        parts.append(part)
        sources += [name] * len(paths)
    return {field: np.concatenate([part[field] for part in parts])
            for field in ("embeddings", "descriptors", "durations")} | {
        "source": np.asarray(sources)}


def main() -> None:
    library = real_library(progress=True)
    print(f"{len(library['embeddings'])} real sounds in {len(set(library['source']))} "
          f"collections (cache: {CACHE})")


if __name__ == "__main__":
    main()
