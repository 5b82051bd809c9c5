"""Benchmark collections: sounds with known siblings, built or fetched at benchmark time.

Nothing here is shipped: the perturbation set is rendered from ``data/demo`` and the game sounds
are downloaded from Debian into a cache outside the repository
(``$SOUNDSLIKE_BENCH_CACHE/collections``, default ``/tmp/soundslike-bench/collections``).

Collections and how their sibling families are defined:

- ``demo``: ``data/demo``; family = file stem minus a trailing number (``coin3`` → ``coin``),
  singletons stay in the library as distractors (they are never queries);
- ``perturb``: each demo sound plus 7 renderings of it (gain, EQ, +-2 semitone pitch shift,
  time stretch, added noise, a synthetic room reverb, trimming; seeded); family = source file;
- ``lincity-ng``, ``widelands``, ``wesnoth``: the sound effects (not the music) of the Debian
  packages ``lincity-ng-data``, ``widelands-data`` and ``wesnoth-1.16-data``; family = folder +
  stem minus a trailing number and its separator (``sound/animals/bird2_03.ogg`` →
  ``sound/animals/bird2``); byte-identical files are kept once; only families of >= 2 files kept.

Licences (from each package's ``debian/copyright``): lincity-ng-data GPL-2+ (its sound effects
dual-licensed GPL / CC BY-SA 2.0), widelands-data GPL-2+, wesnoth-1.16-data GPL-2+. The demo
sounds are Kenney's, CC0. ``supertux-data`` was tried and dropped: only 3 families of >= 2.

Run ``.venv/bin/python benchmarks/sound_collections.py`` to build them all and print a summary.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from soundslike_nb.audio import AUDIO_EXTENSIONS, load  # noqa: E402

CACHE = Path(os.environ.get("SOUNDSLIKE_BENCH_CACHE",
                            Path(tempfile.gettempdir()) / "soundslike-bench")) / "collections"
RATE = 44100
PERTURB_VERSION = 1
_TRAILING_NUMBER = re.compile(r"[\s_\-.]*\d+$")


@dataclass(frozen=True)
class Collection:
    """Sound files and the sibling family of each."""

    name: str
    paths: tuple[str, ...]
    families: tuple[str, ...]
    licence: str
    source: str

    @property
    def queries(self) -> int:
        """How many sounds have at least one sibling."""
        counts: dict[str, int] = {}
        for family in self.families:
            counts[family] = counts.get(family, 0) + 1
        return sum(count for count in counts.values() if count > 1)


def stem_family(path: str | Path) -> str:
    """``.../coin3.wav`` → ``coin``: the stem without its trailing number, lower case."""
    return _TRAILING_NUMBER.sub("", Path(path).stem).lower()


def demo() -> Collection:
    """The bundled demo library; singletons are distractors."""
    paths = sorted(str(p) for p in (ROOT / "data" / "demo").rglob("*")
                   if p.suffix.lower() in AUDIO_EXTENSIONS)
    return Collection("demo", tuple(paths), tuple(stem_family(p) for p in paths), "CC0-1.0",
                      "data/demo (Kenney)")


# ------------------------------------------------------------------------ perturbations
def _shelf(waveform: np.ndarray, *, gain_db: float, frequency: float, high: bool) -> np.ndarray:
    """RBJ cookbook shelving filter (slope 1)."""
    from scipy.signal import lfilter

    amplitude = 10 ** (gain_db / 40)
    omega = 2 * np.pi * frequency / RATE
    alpha = np.sin(omega) / 2 * np.sqrt(2)
    cos, root = np.cos(omega), 2 * np.sqrt(amplitude) * alpha
    sign = 1 if high else -1
    b = amplitude * np.array([(amplitude + 1) + sign * (amplitude - 1) * cos + root,
                              -2 * sign * ((amplitude - 1) + sign * (amplitude + 1) * cos),
                              (amplitude + 1) + sign * (amplitude - 1) * cos - root])
    a = np.array([(amplitude + 1) - sign * (amplitude - 1) * cos + root,
                  2 * sign * ((amplitude - 1) - sign * (amplitude + 1) * cos),
                  (amplitude + 1) - sign * (amplitude - 1) * cos - root])
    return lfilter(b / a[0], a / a[0], waveform).astype(np.float32)


def _room_reverb(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Convolution with exponentially decaying noise (RT60 0.3-0.9 s), 30-50 % wet."""
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.3, 0.9)
    length = int(rt60 * RATE)
    t = np.arange(length) / RATE
    response = rng.standard_normal(length) * 10 ** (-3 * t / rt60)
    response[: int(0.01 * RATE)] = 0.0  # 10 ms pre-delay
    wet = fftconvolve(waveform, response)
    wet *= np.sqrt(np.sum(waveform ** 2) / max(np.sum(wet ** 2), 1e-20))
    mix = rng.uniform(0.3, 0.5)
    dry = np.concatenate([waveform, np.zeros(len(wet) - len(waveform))])
    return ((1 - mix) * dry + mix * wet).astype(np.float32)


def _renderings(waveform: np.ndarray, rng: np.random.Generator
                ) -> dict[str, Callable[[], np.ndarray]]:
    import librosa

    n_fft = 512 if len(waveform) < 4096 else 2048
    rms = float(np.sqrt(np.mean(waveform ** 2))) or 1e-4
    steps = rng.choice([-1, 1]) * rng.uniform(1.0, 2.0)
    rate = rng.choice([rng.uniform(0.75, 0.9), rng.uniform(1.1, 1.3)])
    snr_db = rng.uniform(15.0, 25.0)
    start, end = rng.uniform(0.0, 0.1), rng.uniform(0.1, 0.3)
    return {
        "gain": lambda: waveform * np.float32(10 ** (rng.choice([-1, 1]) * rng.uniform(6, 12)
                                                     / 20)),
        "eq": lambda: _shelf(waveform, gain_db=rng.choice([-1, 1]) * rng.uniform(6, 10),
                             frequency=rng.uniform(300, 3000), high=bool(rng.integers(2))),
        "pitch": lambda: librosa.effects.pitch_shift(waveform, sr=RATE, n_steps=steps,
                                                     n_fft=n_fft),
        "stretch": lambda: librosa.effects.time_stretch(waveform, rate=rate, n_fft=n_fft),
        "noise": lambda: waveform + np.float32(rms * 10 ** (-snr_db / 20)) * rng.standard_normal(
            len(waveform)).astype(np.float32),
        "reverb": lambda: _room_reverb(waveform, rng),
        "trim": lambda: _trim(waveform, start, end),
    }


def _trim(waveform: np.ndarray, start: float, end: float) -> np.ndarray:
    """Cut a fraction at each end (keeping >= 50 ms) with 5 ms fades."""
    first = int(start * len(waveform))
    last = max(first + int(0.05 * RATE), len(waveform) - int(end * len(waveform)))
    piece = waveform[first:last].copy()
    fade = min(int(0.005 * RATE), len(piece) // 4)
    if fade:
        ramp = np.linspace(0, 1, fade, dtype=np.float32)
        piece[:fade] *= ramp
        piece[-fade:] *= ramp[::-1]
    return piece


def perturbations(*, seed: int = 0) -> Collection:
    """Each demo sound and 7 renderings of it (seeded, cached); family = the source sound."""
    import soundfile as sf

    folder = CACHE / f"perturb-v{PERTURB_VERSION}-seed{seed}"
    sources = demo().paths
    paths, families = [], []
    for number, source in enumerate(sources):
        family = Path(source).name  # laser1.mp3 and laser1.wav are two different sounds
        target = folder / family.replace(".", "_")
        names = ["original", "gain", "eq", "pitch", "stretch", "noise", "reverb", "trim"]
        files = [target / f"{name}.wav" for name in names]
        if not all(path.exists() for path in files):
            target.mkdir(parents=True, exist_ok=True)
            waveform = load(source, sample_rate=RATE)[0]
            rng = np.random.default_rng([seed, number])
            renders = {"original": lambda w=waveform: w, **_renderings(waveform, rng)}
            for name, path in zip(names, files):
                rendered = np.asarray(renders[name](), np.float32)
                sf.write(path, rendered, RATE, subtype="FLOAT")
        paths += [str(path) for path in files]
        families += [family] * len(files)
    return Collection("perturb", tuple(paths), tuple(families), "CC0-1.0 (renderings of demo)",
                      f"data/demo rendered 8 ways, seed {seed}")


# ------------------------------------------------------------------------------- Debian
@dataclass(frozen=True)
class DebianSource:
    package: str
    sound_root: str      # folder inside the package holding its sounds
    licence: str


DEBIAN = {
    "lincity-ng": DebianSource("lincity-ng-data", "usr/share/games/lincity-ng/sounds",
                               "GPL-2+ (sound effects dual GPL / CC BY-SA 2.0)"),
    "widelands": DebianSource("widelands-data", "usr/share/games/widelands/data", "GPL-2+"),
    "wesnoth": DebianSource("wesnoth-1.16-data", "usr/share/games/wesnoth/1.16", "GPL-2+"),
}


def _fetch(package: str) -> Path:
    """Download (``apt-get download``) and unpack (``dpkg-deb -x``) a package, once."""
    unpacked = CACHE / "unpacked" / package
    if (unpacked / ".complete").exists():
        return unpacked
    debs = CACHE / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if not list(debs.glob(f"{package}_*.deb")):
        # As root, apt warns that it cannot drop to its sandbox user; that is harmless here.
        done = subprocess.run(["apt-get", "-o", "APT::Sandbox::User=root", "download", package],
                              cwd=debs, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"apt-get download {package} failed (run apt-get update?): "
                               f"{done.stderr.strip()}")
    deb = sorted(debs.glob(f"{package}_*.deb"))[-1]
    unpacked.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    (unpacked / ".complete").touch()
    return unpacked


def debian(name: str) -> Collection:
    """A Debian game-data package's sound effects, in families of >= 2 files."""
    source = DEBIAN[name]
    root = _fetch(source.package) / source.sound_root
    seen: set[str] = set()
    by_family: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.suffix.lower() not in {".ogg", ".wav", ".flac"} or "music" in relative.parts:
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        family = f"{relative.parent.as_posix()}/{stem_family(path)}"
        by_family.setdefault(family, []).append(str(path))
    paths, families = [], []
    for family, members in sorted(by_family.items()):
        if len(members) >= 2:
            paths += members
            families += [family] * len(members)
    return Collection(name, tuple(paths), tuple(families), source.licence,
                      f"Debian package {source.package}")


def all_collections() -> list[Collection]:
    """Every benchmark collection, built or fetched as needed."""
    return [demo(), perturbations(), *(debian(name) for name in DEBIAN)]


def main() -> None:
    import soundfile as sf

    for collection in all_collections():
        seconds = sum(sf.info(path).duration for path in collection.paths)
        print(f"{collection.name:11} {len(collection.paths):4} sounds "
              f"{len(set(collection.families)):3} families {collection.queries:4} queries "
              f"{seconds:7.1f} s  {collection.licence}")


if __name__ == "__main__":
    main()
