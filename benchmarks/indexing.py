"""Indexing speed: this pipeline against a straightforward per-file baseline, in one run.

Builds (once, cached outside the repository) folders of real-length sounds made from the demo
sounds — looped, pitched by resampling, at 44.1 and 48 kHz, mono and stereo — in three sets:
clips under 1 s, sounds of 1-10 s, and long sounds of 10-60 s. For each set it measures, each in
its own process (so that peak memory is its own):

- baseline: decode, resample, spectrogram, network (fp32), one file at a time;
- soundslike_nb: ``build_library`` end to end (threaded decoding overlapped with batched
  inference, bf16 where the CPU has it, descriptors), writing the library file;
- the same without the descriptors (what they add to the indexing time);
- soundslike_nb on a local Dask cluster of 2 worker processes.

Then, for big libraries: the load time of a 1M-row library file and the rescan time of an
unchanged folder of 100k files (hard links to one sound; the rescan must only stat).

Run: ``.venv/bin/python benchmarks/indexing.py [--quick] [--skip-big]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = Path(os.environ.get("SOUNDSLIKE_BENCH_CACHE", Path(tempfile.gettempdir()) /
                            "soundslike-bench"))

SETS = {  # name: (number of files, shortest s, longest s)
    "clips < 1 s": (400, 0.2, 1.0),
    "sounds 1-10 s": (120, 1.0, 10.0),
    "long 10-60 s": (16, 10.0, 60.0),
}


def make_corpus(name: str, count: int, low: float, high: float) -> Path:
    """Deterministic folder of sounds built from the demo sounds; reused when complete."""
    import soundfile as sf
    import soxr

    from soundslike_nb.audio import load
    from soundslike_nb.scan import scan_folders

    folder = CACHE / name.replace(" ", "_").replace("<", "lt")
    if folder.is_dir() and len(list(folder.glob("*.wav"))) == count:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    sources = [load(entry.path)[0] for entry in scan_folders([ROOT / "data" / "demo"]).files]
    rng = np.random.default_rng(7)
    for i in range(count):
        seconds = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        rate = 48000 if i % 3 == 0 else 44100
        pitch = 2 ** (rng.uniform(-4, 4) / 12)
        pieces, total = [], 0
        while total < seconds * rate:
            source = sources[rng.integers(len(sources))]
            piece = soxr.resample(source, 44100, rate * pitch) * rng.uniform(0.2, 1.0)
            pieces.append(piece)
            total += len(piece)
        mono = np.concatenate(pieces)[: int(seconds * rate)].astype(np.float32)
        data = np.stack([mono, np.roll(mono, 17)], axis=1) if i % 2 else mono
        sf.write(folder / f"{name.split()[0]}_{i:04d}.wav", data, rate, subtype="PCM_16")
    return folder


def run_baseline(folder: Path) -> dict:
    import soundfile as sf
    import soxr
    import torch
    from safetensors.torch import load_file

    from soundslike_nb.embedders import aisfx

    # The network as published (no folded batch norms, default layout, fp32), one file at a time.
    network = aisfx.AisfxNet()
    network.load_state_dict(load_file(Path(aisfx.__file__).parent / "weights" /
                                      aisfx.WEIGHTS_FILE))
    network.eval()
    filters = aisfx.mel_filterbank()
    files = sorted(folder.glob("*.wav"))
    started = time.perf_counter()
    audio_seconds = 0.0
    with torch.inference_mode():
        for path in files:
            data, rate = sf.read(path, dtype="float32", always_2d=True)
            mono = data.mean(axis=1)
            audio_seconds += len(mono) / rate
            if rate != 44100:
                mono = soxr.resample(mono, rate, 44100)
            blocks = aisfx.split_blocks(aisfx.log_mel(torch.from_numpy(mono), filters))
            network(blocks).mean(dim=0)
    return {"seconds": time.perf_counter() - started, "files": len(files),
            "audio_seconds": audio_seconds}


def run_ours(folder: Path, workers: int | None, *, descriptors: bool = True) -> dict:
    import soundslike_nb as sl

    if not descriptors:  # measure what the descriptors cost: the same build without them
        from soundslike_nb.analysis import Analyzer
        from soundslike_nb.descriptors import FEATURE_NAMES

        Analyzer._describe = lambda self, waveforms: np.zeros(
            (len(waveforms), len(FEATURE_NAMES)), np.float32)
    from soundslike_nb.distributed import cluster_client

    with (cluster_client(workers=workers) if workers else contextlib.nullcontext()) as client:
        if client is not None:
            client.run(lambda: __import__("soundslike_nb.embedders.aisfx"))  # warm imports
        with tempfile.TemporaryDirectory() as scratch:
            started = time.perf_counter()
            lib = sl.build_library(folder, out=Path(scratch) / "lib.parquet", progress=False,
                                   client=client)
            seconds = time.perf_counter() - started
    return {"seconds": seconds, "files": len(lib), "audio_seconds": lib.report.audio_seconds}


class _PipelineOnly:
    """Not a model: a cheap fixed projection of each sound's spectrum, so that the memory of the
    pipeline itself (scan, decode, batches, rows, library write) over 100k files can be measured
    in minutes instead of the ~25 min the CNN would take here."""

    id, sample_rate, dimension = "pipeline-only-benchmark", 44100, 512

    @property
    def provenance(self) -> dict:
        return {"id": self.id, "dimension": 512, "sample_rate": 44100, "weights_sha256": "none"}

    def embed(self, waveforms):
        projection = np.random.default_rng(0).standard_normal((129, 512)).astype(np.float32)
        return np.stack([np.abs(np.fft.rfft(w[:4096], 256)) @ projection for w in waveforms])


def run_memory(count: int) -> dict:
    """Peak memory of building a library of ``count`` files (links to a few demo sounds)."""
    import soundslike_nb as sl

    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        sounds = Path(scratch) / "sounds"
        sounds.mkdir()
        sources = sorted((ROOT / "data" / "demo" / "kenney").glob("*.wav"))[:8]
        originals = [sounds / f"sound_{i:07d}.wav" for i in range(len(sources))]
        for source, original in zip(sources, originals):
            original.write_bytes(source.read_bytes())
        for i in range(len(originals), count):
            os.link(originals[i % len(originals)], sounds / f"sound_{i:07d}.wav")
        started = time.perf_counter()
        lib = sl.build_library(sounds, out=Path(scratch) / "lib.parquet", progress=False,
                               embedder=_PipelineOnly())
        seconds = time.perf_counter() - started
    return {"files": len(lib), "seconds": seconds,
            "peak memory GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def run_big() -> dict:
    """1M-row library load, and the rescan of an unchanged 100k-file folder."""
    import pandas as pd

    import soundslike_nb as sl
    from soundslike_nb.descriptors import DESCRIPTOR_VERSION, FEATURE_NAMES
    from soundslike_nb.libfile import ROW_COLUMNS, LibraryTable, write_table

    results = {}
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        scratch = Path(scratch)
        n = 1_000_000
        rng = np.random.default_rng(0)
        rows = pd.DataFrame({"name": [f"sound {i}" for i in range(n)],
                             "path": [f"/library/sound_{i:07d}.wav" for i in range(n)],
                             "duration": rng.uniform(0.05, 600, n), "sample_rate": 44100,
                             "channels": 2, "frames": 44100, "size": 1000, "mtime": 1.0e9}
                            ).astype(ROW_COLUMNS)
        embeddings = rng.standard_normal((n, 512), dtype=np.float32)
        descriptors = rng.standard_normal((n, len(FEATURE_NAMES)), dtype=np.float32)
        provenance = {"embedder": {"id": "aisfx-ismir2022", "dimension": 512},
                      "descriptors": {"version": DESCRIPTOR_VERSION}}
        write_table(LibraryTable(rows, embeddings, provenance, descriptors=descriptors),
                    scratch / "big.parquet")
        del embeddings, descriptors
        started = time.perf_counter()
        lib = sl.load_library(scratch / "big.parquet")
        results["load 1M-row library s"] = time.perf_counter() - started
        assert len(lib) == n
        del lib

        sounds = scratch / "sounds"
        sounds.mkdir()
        source = next((ROOT / "data" / "demo" / "kenney").glob("coin1.wav"))
        originals = [sounds / f"sound_{i:07d}.wav" for i in range(4)]
        for original in originals:  # a filesystem allows ~65k links to one file
            original.write_bytes(source.read_bytes())
        for i in range(len(originals), 100_000):
            os.link(originals[i % len(originals)], sounds / f"sound_{i:07d}.wav")
        sl.build_library(originals[0], out=scratch / "small.parquet", progress=False)
        # A 100k-row library of those files, embedded once (the same vector: same sound).
        table = sl.load_library(scratch / "small.parquet")
        paths = sorted(str(p) for p in sounds.iterdir())
        stats = [os.stat(path) for path in paths]
        rows = pd.concat([table.rows] * len(paths), ignore_index=True)
        rows["path"] = paths
        rows["size"] = [stat.st_size for stat in stats]
        rows["mtime"] = [stat.st_mtime for stat in stats]
        write_table(LibraryTable(rows, np.repeat(table.embeddings, len(paths), axis=0),
                                 table.provenance,
                                 descriptors=np.repeat(table.descriptors, len(paths), axis=0)),
                    scratch / "links.parquet")
        started = time.perf_counter()
        lib = sl.build_library(sounds, out=scratch / "links.parquet", progress=False)
        results["rescan unchanged 100k files s"] = time.perf_counter() - started
        results["files embedded by the rescan"] = lib.report.embedded
    results["peak memory GB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return results


def _in_subprocess(*arguments: str) -> dict:
    output = subprocess.run([sys.executable, __file__, "--run", *arguments], check=True,
                            capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the files")
    parser.add_argument("--skip-big", action="store_true", help="skip the 1M / 100k part")
    parser.add_argument("--run", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        what, *rest = args.run
        if what == "big":
            result = run_big()
        elif what == "memory":
            result = run_memory(int(rest[0]))
        else:
            folder = Path(rest[0])
            workers = int(rest[1]) if len(rest) > 1 else None
            result = (run_baseline(folder) if what == "baseline" else
                      run_ours(folder, workers or None, descriptors=rest[2:] != ["nodesc"]))
            result["peak memory GB"] = resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(json.dumps(result))
        return

    print(f"{os.cpu_count()} CPU cores; corpus cached in {CACHE}")
    header = (f"{'set':15} {'method':22} {'files':>5} {'audio s':>8} {'wall s':>7} "
              f"{'x real':>7} {'files/s':>8} {'vs base':>8} {'peak GB':>8}")
    print(header)
    for name, (count, low, high) in SETS.items():
        count = max(4, count // 4) if args.quick else count
        folder = make_corpus(name + (" quick" if args.quick else ""), count, low, high)
        base = None
        for method, arguments in (("per-file baseline", ("baseline", str(folder))),
                                  ("soundslike_nb", ("ours", str(folder))),
                                  ("  without descriptors", ("ours", str(folder), "0", "nodesc")),
                                  ("soundslike_nb, Dask x2", ("ours", str(folder), "2"))):
            result = _in_subprocess(*arguments)
            speed = result["audio_seconds"] / result["seconds"]
            base = base or result["seconds"]
            files_per_s = result["files"] / result["seconds"]
            print(f"{name:15} {method:22} {result['files']:5d} {result['audio_seconds']:8.0f} "
                  f"{result['seconds']:7.1f} {speed:7.1f} {files_per_s:8.1f} "
                  f"{base / result['seconds']:8.2f} {result['peak memory GB']:8.2f}", flush=True)
    if not args.skip_big:
        for key, value in _in_subprocess("big").items():
            print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
        memory = _in_subprocess("memory", "100000")
        print(f"building a library of {memory['files']} files (pipeline only, no CNN): "
              f"{memory['seconds']:.0f} s, peak memory {memory['peak memory GB']:.2f} GB")


if __name__ == "__main__":
    main()
