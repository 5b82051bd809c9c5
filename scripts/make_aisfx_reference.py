#!/usr/bin/env python3
"""Make ``tests/fixtures/aisfx_reference.npz`` with the aisfx package's own inference code.

soundslike_nb re-implements the aisfx 0.1.2 embedder (Ma & Lerch, ISMIR 2022) without
depending on aisfx. This script runs the *original* pipeline - aisfx 0.1.2 with Essentia, as
``aisfx.inference.main`` does with its defaults - over the audio files of a folder, so that
the re-implementation can be tested against it. It runs in an isolated virtual environment,
never in the project's own one (see "How to rerun" below).

Per file it calls exactly what ``aisfx.inference.main(dir_audio, dir_export)`` calls, with the
same arguments (``spectrogram_type='essentia'``, ``spec_norm='original'``,
``drop_partial_block=True``, ``emb_hop_size=0.5``, on the CPU):

1. ``aisfx.spectrogram.spectrogram_essentia.compute_spectrogram`` (Essentia: 44.1 kHz mono,
   frames of 2048 every 1024 samples, 96 HTK mel bands 0-22050 Hz, ``log10(1e4 * x + 1)``);
2. ``aisfx.preprocessing.spectrogram_normalize`` (divide by 9.457798957824707);
3. ``aisfx.inference.model_get_embedding`` (blocks of 100 frames, hop 50, the network).

``main`` itself cannot be used as is: it feeds every file of the folder to Essentia (also
LICENSES.csv and READMEs), names its outputs by basename only (``laser1.wav`` and
``laser1.mp3`` collide) and stops at the first file of 50 frames or fewer (about 1.16 s),
where ``aisfx.preprocessing.compute_hopSize`` fails ``assert(hop_size < data.shape[0])``.
For those short files this script calls ``aisfx.preprocessing.blocking`` with the same
arguments itself (one zero-padded 100-frame block) and marks them in ``short_fallback``.
Only files with an audio extension (``AUDIO_SUFFIXES``) are used. The checkpoint's SHA-256 is
checked and the numpy globals it pickles are allowed, so aisfx's own ``torch.load`` (which
passes no ``weights_only``) works under torch >= 2.6.

Because short sound effects never reach two blocks, the script also embeds one long signal:
the concatenation, in sorted path order and with nothing in between, of the folder's
16-bit mono 44.1 kHz ``.wav`` files (written to a temporary 16-bit wav, so a test can rebuild
it exactly from the same files). It exercises the 50-frame block hop and the dropping of the
last partial block.

Arrays in the ``.npz`` (``n`` files, ``b`` blocks, ``t`` spectrogram frames in all):

- ``paths`` (n,) str: POSIX paths relative to the folder, sorted;
- ``embeddings`` (n, 512) float32: mean over the file's blocks of aisfx's block embeddings
  (aisfx itself saves the per-block array; it neither averages nor L2-normalises);
- ``block_embeddings`` (b, 512) float32 and ``block_counts`` (n,) int64: aisfx's output;
- ``spectrograms`` (t, 96) float32 and ``n_frames`` (n,) int64: the normalised Essentia mel
  spectrograms (frames x bands) that went into the network, concatenated;
- ``short_fallback`` (n,) bool: see above;
- ``concat_paths`` (m,) str, ``concat_n_frames`` () int64, ``concat_embedding`` (512,)
  float32, ``concat_block_embeddings`` (c, 512) float32: the long signal;
- ``versions`` () str: versions and settings used.

Note: Essentia's streaming FrameCutter (``silentFrames='noise'``) adds random -100 dB noise
to digitally silent frames (mean power below 1e-10), so files with such frames give slightly
different values on each run (about 1e-5 in the normalised spectrogram). data/demo has no
such frame: two runs gave identical arrays.

How to rerun (Linux x86-64, Python 3.11). ``numpy==1.23.0`` (aisfx's pin) has no wheel for
Python 3.11 and builds from source in about 12 minutes; ``numpy==1.23.5`` is the nearest
wheel. ``essentia==2.1b6.dev1110`` is the newest Essentia wheel that accepts numpy < 1.25;
setuptools < 81 keeps ``pkg_resources`` for librosa 0.9.2 (not used on the Essentia path)::

    python3 -m venv /tmp/aisfx-ref-venv
    /tmp/aisfx-ref-venv/bin/pip install numpy==1.23.0
    /tmp/aisfx-ref-venv/bin/pip install aisfx==0.1.2 essentia==2.1b6.dev1110 \\
        torch==2.13.0 "setuptools<81"
    /tmp/aisfx-ref-venv/bin/python scripts/make_aisfx_reference.py data/demo

aisfx 0.1.2 pins numpy==1.23.0, librosa==0.9.2, tqdm==4.62.3 and argparse==1.1 and names
neither torch nor essentia; ``versions`` in the fixture records what was used.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

# Run from a checkout, often in a venv without soundslike_nb: take the checkout's (stdlib only).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from soundslike_nb._hashing import sha256_file

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".m4a"})
CHECKPOINT_SHA256 = "499ea75909c932a2f94c35fa722fa4fabc5bcb7e84917209cc5f7402627b7eb5"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = REPO_ROOT / "data" / "demo"
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "aisfx_reference.npz"

# The defaults of aisfx.inference.main.
SPECTROGRAM_TYPE = "essentia"
SPEC_NORM = "original"
DROP_PARTIAL_BLOCK = True
EMB_HOP_SIZE = 0.5
USE_CUDA = False

# (spectrogram (frames, 96), block embeddings (blocks, 512), short_fallback)
Embedder = Callable[[Path], tuple[np.ndarray, np.ndarray, bool]]


def wait_for(folder: Path, marker: str, timeout_s: float) -> None:
    """Wait until ``folder/marker`` exists (the demo folder may still be being written)."""
    deadline = time.monotonic() + timeout_s
    while not (folder / marker).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{folder / marker} did not appear within {timeout_s:.0f} s")
        print(f"waiting for {folder / marker} ...", flush=True)
        time.sleep(30)


def audio_files(folder: Path) -> list[Path]:
    files = [
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in AUDIO_SUFFIXES
    ]
    if not files:
        raise SystemExit(f"no audio files under {folder}")
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def read_pcm16_mono_44k(path: Path) -> bytes | None:
    """The raw frames of a 16-bit mono 44.1 kHz PCM wav, or None for any other file."""
    if path.suffix.lower() != ".wav":
        return None
    try:
        with wave.open(str(path), "rb") as handle:
            params = (handle.getnchannels(), handle.getsampwidth(), handle.getframerate())
            if params != (1, 2, 44100):
                return None
            return handle.readframes(handle.getnframes())
    except wave.Error:
        return None


def allow_checkpoint_globals() -> None:
    """Let aisfx's plain ``torch.load`` read its checkpoint with torch's safe unpickler.

    The checkpoint pickles numpy int64 scalars; torch >= 2.6 defaults to ``weights_only=True``
    and refuses them unless allowed. Older torch loads with ``weights_only=False`` anyway.
    """
    import torch

    core: Any = np._core if hasattr(np, "_core") else np.core  # numpy 2 / numpy 1
    allowed: list[Any] = [
        (core.multiarray.scalar, "numpy.core.multiarray.scalar"),
        np.dtype,
        type(np.dtype(np.int64)),
    ]
    with contextlib.suppress(AttributeError, TypeError):  # torch < 2.5
        torch.serialization.add_safe_globals(allowed)


def make_embedder() -> Embedder:
    """Load the model as ``aisfx.inference.main`` does; return a per-file embedder."""
    import torch
    from aisfx import inference, preprocessing, utils

    checkpoint = Path(inference.get_path_modelWeights())
    if sha256_file(checkpoint) != CHECKPOINT_SHA256:
        raise SystemExit(f"{checkpoint}: unexpected SHA-256")
    allow_checkpoint_globals()

    spectrogram_compute = utils.spectrogram_selector(SPECTROGRAM_TYPE)
    cuda = utils.cuda_select(use_cuda=USE_CUDA)
    weights, ds_dict = inference.load_weights(cuda)
    model = inference.load_bestModel(weights, ds_dict, cuda)

    def embed(path: Path) -> tuple[np.ndarray, np.ndarray, bool]:
        spec = spectrogram_compute(
            filename=str(path),
            sr=inference.SAMPLE_RATE,
            block_size=inference.SPEC_BLOCK_LENGTH,
            hop_size=inference.SPEC_HOP_LENGTH,
            n_mels=inference.MEL_BINS,
            f_min=inference.F_MIN,
            f_max=inference.F_MAX,
        )
        spec = preprocessing.spectrogram_normalize(spec, spec_norm=SPEC_NORM, mn=None, mx=None)
        try:
            emb = inference.model_get_embedding(spec, EMB_HOP_SIZE, DROP_PARTIAL_BLOCK, model, cuda)
            fallback = False
        except AssertionError:
            # compute_hopSize: assert(hop_size < data.shape[0]) fails for <= 50 frames.
            blocks = preprocessing.blocking(
                spec,
                block_size=inference.EMB_BLOCK_LENGTH,
                hop_size=int(np.round(inference.EMB_BLOCK_LENGTH * EMB_HOP_SIZE)),
                drop_partial_block=DROP_PARTIAL_BLOCK,
            )
            with torch.no_grad():
                emb = model.get_embedding(torch.Tensor(blocks).to(cuda)).cpu()
            fallback = True
        return np.asarray(spec, dtype=np.float32), np.asarray(emb, dtype=np.float32), fallback

    return embed


def versions_text() -> str:
    names = ["aisfx", "essentia", "torch", "numpy", "librosa", "scipy", "numba", "tqdm"]
    found = []
    for name in names:
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    settings = (
        f"spectrogram_type={SPECTROGRAM_TYPE} spec_norm={SPEC_NORM} "
        f"drop_partial_block={DROP_PARTIAL_BLOCK} emb_hop_size={EMB_HOP_SIZE} device=cpu"
    )
    return (
        "made by scripts/make_aisfx_reference.py with aisfx's own inference code; "
        f"python {platform.python_version()} ({sys.platform}, {platform.machine()}); "
        f"{' '.join(found)}; {settings}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=DEFAULT_FOLDER)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--wait-for",
        default="LICENSES.csv",
        help="file inside the folder to wait for before starting ('' to not wait)",
    )
    parser.add_argument("--wait-timeout", type=float, default=25 * 60)
    args = parser.parse_args(argv)
    folder: Path = args.folder.resolve()

    if args.wait_for:
        wait_for(folder, args.wait_for, args.wait_timeout)
    files = audio_files(folder)
    embed = make_embedder()

    paths: list[str] = []
    specs: list[np.ndarray] = []
    blocks: list[np.ndarray] = []
    short: list[bool] = []
    for path in files:
        spec, block_emb, fallback = embed(path)
        paths.append(path.relative_to(folder).as_posix())
        specs.append(spec)
        blocks.append(block_emb)
        short.append(fallback)
        note = " (short: blocking called directly)" if fallback else ""
        print(f"{paths[-1]}: {spec.shape[0]} frames, {block_emb.shape[0]} block(s){note}")

    concat_paths: list[str] = []
    pcm: list[bytes] = []
    for path in files:
        frames = read_pcm16_mono_44k(path)
        if frames is not None:
            concat_paths.append(path.relative_to(folder).as_posix())
            pcm.append(frames)
    if not pcm:
        raise SystemExit("no 16-bit mono 44.1 kHz wav files to concatenate")
    with tempfile.TemporaryDirectory(prefix="aisfx-ref-") as tmp:
        concat_wav = Path(tmp) / "concat.wav"
        with wave.open(str(concat_wav), "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(44100)
            handle.writeframes(b"".join(pcm))
        concat_spec, concat_blocks, concat_short = embed(concat_wav)
    if concat_short:
        raise SystemExit("the concatenated signal is too short to exercise blocking")
    print(
        f"concatenation of {len(concat_paths)} wav files: {concat_spec.shape[0]} frames, "
        f"{concat_blocks.shape[0]} blocks"
    )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        paths=np.array(paths, dtype=str),
        embeddings=np.stack([b.mean(axis=0) for b in blocks]).astype(np.float32),
        block_embeddings=np.concatenate(blocks).astype(np.float32),
        block_counts=np.array([b.shape[0] for b in blocks], dtype=np.int64),
        spectrograms=np.concatenate(specs).astype(np.float32),
        n_frames=np.array([s.shape[0] for s in specs], dtype=np.int64),
        short_fallback=np.array(short, dtype=bool),
        concat_paths=np.array(concat_paths, dtype=str),
        concat_n_frames=np.array(concat_spec.shape[0], dtype=np.int64),
        concat_embedding=concat_blocks.mean(axis=0).astype(np.float32),
        concat_block_embeddings=concat_blocks.astype(np.float32),
        versions=np.array(versions_text()),
    )
    print(f"wrote {args.out} ({len(paths)} files); {versions_text()}")


if __name__ == "__main__":
    main()
