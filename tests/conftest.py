"""Shared fixtures: seeded synthetic audio, the demo folder, and a demo library built once."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"


def tone(seconds: float, *, rate: int = 44100, frequency: float = 440.0, seed: int = 0,
         channels: int = 1, noise: float = 0.05) -> np.ndarray:
    """A decaying tone with a little seeded noise: (frames,) or (frames, channels) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    mono = 0.5 * np.sin(2 * np.pi * frequency * t) * np.exp(-3 * t) + noise * rng.standard_normal(
        t.size)
    mono = mono.astype(np.float32)
    return mono if channels == 1 else np.stack([mono] * channels, axis=1)


@pytest.fixture
def write_sound(tmp_path):
    """write_sound("name.wav", seconds=1.0, rate=..., channels=..., subtype=...) → Path."""
    import soundfile as sf

    def write(name: str, seconds: float = 1.0, *, rate: int = 44100, channels: int = 1,
              subtype: str | None = None, frequency: float = 440.0, seed: int = 0,
              folder: Path | None = None) -> Path:
        path = (folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = tone(seconds, rate=rate, frequency=frequency, seed=seed, channels=channels)
        sf.write(path, data, rate, subtype=subtype)
        return path

    return write


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    return DEMO


@pytest.fixture(scope="session")
def aisfx():
    from soundslike_nb.embedders import get_embedder

    return get_embedder("aisfx", device="cpu")


@pytest.fixture(scope="session")
def demo_library_file(tmp_path_factory, aisfx) -> Path:
    """The demo library, built once per test session (a copy of data/demo, so tests may edit)."""
    from soundslike_nb import build_library

    folder = tmp_path_factory.mktemp("demo") / "demo"
    shutil.copytree(DEMO, folder)
    out = folder.parent / "demo.parquet"
    build_library(folder, out=out, embedder=aisfx, progress=False)
    return out
