#!/usr/bin/env python3
"""Convert the aisfx 0.1.2 sound-effects embedding weights to ``safetensors``.

The default embedder of soundslike_nb is the "X-Sequential-CE" CNN of

    A. B. Ma and A. Lerch, "Representation Learning for the Automatic Indexing of
    Sound Effects Libraries", Proc. ISMIR 2022, pp. 866-875.

Its weights ship inside the ``aisfx`` 0.1.2 wheel on PyPI as a pickled PyTorch checkpoint
(``aisfx/models/checkpoint.pth``, licensed CC BY 4.0, "Copyright (c) 2022 A.B. Ma and
A. Lerch"). soundslike_nb never installs aisfx (it pins numpy 1.23 / librosa 0.9); instead this
script turns the checkpoint into a plain, pickle-free tensor file once:

1. ``pip download --no-deps aisfx==0.1.2`` into a temporary folder (or use ``--wheel``) and
   check the wheel's SHA-256 against ``WHEEL_SHA256``;
2. read ``aisfx/models/checkpoint.pth`` out of the wheel and check it against
   ``CHECKPOINT_SHA256`` *before* unpickling it (``torch.load(weights_only=True)`` with the
   two numpy globals the checkpoint needs allowed; if that fails, ``weights_only=False``,
   which is only reached for the verified file);
3. keep only the embedding network (``embedding_net.*``; the nine per-dataset classifier
   heads ``fc.*`` are dropped), drop the ``num_batches_tracked`` counters, strip the
   ``embedding_net.`` prefix and store float32 contiguous tensors;
4. check that a plain-torch re-implementation (``plain_forward`` below) loaded from the new
   tensors gives the same output as aisfx's own ``EmbeddingNet`` (imported from the wheel's
   ``aisfx/models/cnn2d.py``) loaded from the original checkpoint;
5. write ``soundslike_nb/embedders/weights/aisfx-ismir2022.safetensors`` (with provenance
   metadata) and ``LICENSE-aisfx-weights.txt`` (attribution + the wheel's LICENSE verbatim)
   and print their SHA-256.

Tensor names (40 tensors), for block ``N`` in 1..4 and conv/BN pair ``M`` in 1..2::

    conv_block{N}.conv{M}.weight         (C_out, C_in, 3, 3)   no conv bias
    conv_block{N}.bn{M}.weight           (C_out,)              BN gamma
    conv_block{N}.bn{M}.bias             (C_out,)              BN beta
    conv_block{N}.bn{M}.running_mean     (C_out,)
    conv_block{N}.bn{M}.running_var      (C_out,)

with C_out = 64, 128, 256, 512 for blocks 1-4 (C_in = 1 for conv_block1.conv1). The names are
those of aisfx's ``EmbeddingNet`` submodules, so an ``nn.Module`` with the same layout loads
them with ``load_state_dict(strict=True)`` (BatchNorm fills in ``num_batches_tracked``).

The conversion is deterministic: rerunning it gives a byte-identical file (the safetensors
header is rewritten with sorted keys).

How to run (system Python 3.11; any recent torch works)::

    python3 -m venv /tmp/aisfx-convert-venv
    /tmp/aisfx-convert-venv/bin/pip install torch safetensors numpy
    /tmp/aisfx-convert-venv/bin/python scripts/convert_aisfx_weights.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import struct
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

# Run from a checkout, often in a venv without soundslike_nb: take the checkout's (stdlib only).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from soundslike_nb._hashing import sha256_file

AISFX_VERSION = "0.1.2"
WHEEL_NAME = f"aisfx-{AISFX_VERSION}-py2.py3-none-any.whl"
WHEEL_SHA256 = "bfe219950715af179e9a1653e7117cc1852baef267cd6596c42cad74afe1d194"
CHECKPOINT_MEMBER = "aisfx/models/checkpoint.pth"
CHECKPOINT_SHA256 = "499ea75909c932a2f94c35fa722fa4fabc5bcb7e84917209cc5f7402627b7eb5"
MODEL_MEMBER = "aisfx/models/cnn2d.py"
LICENSE_MEMBER = f"aisfx-{AISFX_VERSION}.dist-info/licenses/LICENSE"

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT_DIR = REPO_ROOT / "soundslike_nb" / "embedders" / "weights"
WEIGHTS_NAME = "aisfx-ismir2022.safetensors"
LICENSE_NAME = "LICENSE-aisfx-weights.txt"

PREFIX = "embedding_net."
CHANNELS = (64, 128, 256, 512)
BN_EPS = 1e-5  # nn.BatchNorm2d default, as used by aisfx's ConvBlock

PAPER = (
    "A. B. Ma and A. Lerch, 'Representation Learning for the Automatic Indexing of Sound "
    "Effects Libraries', Proc. 23rd Int. Society for Music Information Retrieval Conf. "
    "(ISMIR 2022), Bengaluru, India, pp. 866-875. https://zenodo.org/record/7316800"
)
AUTHORS = "Alison Bernice Ma, Alexander Lerch"
COPYRIGHT = "Copyright (c) 2022 A.B. Ma and A. Lerch"
SOURCE_URL = "https://github.com/alisonbma/aisfx"


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors kept, in network order."""
    shapes: dict[str, tuple[int, ...]] = {}
    c_in = 1
    for n, c_out in enumerate(CHANNELS, start=1):
        for m in (1, 2):
            shapes[f"conv_block{n}.conv{m}.weight"] = (c_out, c_in if m == 1 else c_out, 3, 3)
        for m in (1, 2):
            for field in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"conv_block{n}.bn{m}.{field}"] = (c_out,)
        c_in = c_out
    return shapes


def plain_forward(w: dict[str, torch.Tensor], spec: torch.Tensor) -> torch.Tensor:
    """The aisfx embedding network in plain torch (inference mode).

    ``spec``: (batch, 100 frames, 96 mel bands), already log-compressed and divided by
    9.457798957824707. Returns (batch, 512).
    """
    x = spec.unsqueeze(1)  # (batch, 1, time, freq)
    for n in range(1, 5):
        for m in (1, 2):
            p = f"conv_block{n}."
            x = F.conv2d(x, w[f"{p}conv{m}.weight"], bias=None, stride=1, padding=1)
            x = F.batch_norm(
                x,
                w[f"{p}bn{m}.running_mean"],
                w[f"{p}bn{m}.running_var"],
                w[f"{p}bn{m}.weight"],
                w[f"{p}bn{m}.bias"],
                training=False,
                eps=BN_EPS,
            )
            x = F.relu(x)
        if n < 4:  # block 4 uses a (1, 1) max-pool, i.e. none
            x = F.max_pool2d(x, kernel_size=(2, 2))
    x = x.mean(dim=3)  # mean over frequency -> (batch, 512, time)
    return x.max(dim=2).values  # max over time -> (batch, 512)


def get_wheel(wheel: Path | None, workdir: Path) -> Path:
    if wheel is None:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            f"aisfx=={AISFX_VERSION}", "-d", str(workdir),
        ]  # fmt: skip
        print("running:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        wheel = workdir / WHEEL_NAME
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: SHA-256 {digest} != expected {WHEEL_SHA256}")
    print(f"wheel {wheel.name} sha256 {digest} (ok)")
    return wheel


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Unpickle the (already checksum-verified) aisfx checkpoint."""
    multiarray: Any = getattr(np, "_core", np).multiarray
    allowed: list[Any] = [
        (multiarray.scalar, "numpy.core.multiarray.scalar"),
        np.dtype,
        type(np.dtype(np.int64)),
    ]
    try:
        with torch.serialization.safe_globals(allowed):
            state, datasets = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # fall back only for the already verified file
        print(f"weights_only load failed ({type(exc).__name__}); using weights_only=False")
        state, datasets = torch.load(path, map_location="cpu", weights_only=False)
    return dict(state), dict(datasets)


def extract_embedding(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    shapes = expected_shapes()
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if not key.startswith(PREFIX) or key.endswith(".num_batches_tracked"):
            continue
        name = key.removeprefix(PREFIX)
        if name not in shapes:
            raise SystemExit(f"unexpected tensor in checkpoint: {key}")
        if tuple(tensor.shape) != shapes[name]:
            raise SystemExit(f"{key}: shape {tuple(tensor.shape)} != {shapes[name]}")
        out[name] = tensor.detach().to(torch.float32).contiguous().clone()
    missing = sorted(set(shapes) - set(out))
    if missing:
        raise SystemExit(f"missing tensors: {missing}")
    dropped = sorted(k for k in state if not k.startswith(PREFIX))
    print(f"kept {len(out)} tensors; dropped {len(dropped)} classifier-head tensors (fc.*)")
    return {name: out[name] for name in shapes}


def check_against_aisfx(
    model_py: Path, state: dict[str, torch.Tensor], converted: dict[str, torch.Tensor]
) -> None:
    """aisfx's own EmbeddingNet (original checkpoint) vs. plain_forward (converted tensors)."""
    spec = importlib.util.spec_from_file_location("aisfx_cnn2d", model_py)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.EmbeddingNet("max", 3, 1, 64)  # as in aisfx.inference.load_bestModel
    net.load_state_dict(
        {k.removeprefix(PREFIX): v for k, v in state.items() if k.startswith(PREFIX)}
    )
    net.eval()

    generator = torch.Generator().manual_seed(0)
    inputs = [
        torch.rand(3, 100, 96, generator=generator),  # a standard 100-frame block
        torch.rand(2, 37, 96, generator=generator) * 1.2,  # odd sizes exercise floor pooling
    ]
    with torch.no_grad():
        for x in inputs:
            ref = net(x)
            got = plain_forward(converted, x)
            err = (ref - got).abs().max().item()
            print(f"check {tuple(x.shape)} -> {tuple(got.shape)}: max |diff| = {err:.3g}")
            if got.shape != (x.shape[0], 512) or err > 1e-5:
                raise SystemExit("plain re-implementation does not match aisfx EmbeddingNet")

    # The names must also load strictly into a module tree laid out like aisfx's.
    fresh = module.EmbeddingNet("max", 3, 1, 64)
    fresh.load_state_dict(converted, strict=True)


def canonicalise_header(path: Path) -> None:
    """Rewrite the safetensors JSON header with sorted keys so the file is reproducible."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + size :])


def license_text(wheel_license: str, weights_sha: str) -> str:
    paper = textwrap.fill(PAPER, width=88, initial_indent=" " * 12, subsequent_indent=" " * 12)
    head = f"""\
aisfx-ismir2022.safetensors - attribution and licence
=====================================================

Work:       Pre-trained weights of the "X-Sequential-CE" sound-effects embedding model
            (embedding network only), from the paper
{paper}
Authors:    {AUTHORS}
            {COPYRIGHT}
Licence:    Creative Commons Attribution 4.0 International (CC BY 4.0),
            https://creativecommons.org/licenses/by/4.0/ - full text below, copied
            verbatim from the LICENSE file of the source wheel.
Source:     PyPI package aisfx {AISFX_VERSION} ({SOURCE_URL}),
            file {WHEEL_NAME} (sha256 {WHEEL_SHA256}),
            member {CHECKPOINT_MEMBER} (sha256 {CHECKPOINT_SHA256}).

Changes made (by the soundslike_nb project, scripts/convert_aisfx_weights.py):
  - converted from a pickled PyTorch checkpoint to the safetensors format;
  - kept only the embedding network ("embedding_net." prefix removed from the names);
    the per-dataset classifier heads ("fc.*") and the BatchNorm "num_batches_tracked"
    counters were dropped;
  - tensors stored as float32 (they already were); no values were changed.
Result:     {WEIGHTS_NAME} (sha256 {weights_sha})

The authors do not endorse soundslike_nb. The weights are provided "as is", without
warranties; see sections 5 and 6 of the licence below.

=======================================================================
LICENSE file of {WHEEL_NAME}
=======================================================================

"""
    return head + wheel_license.rstrip() + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="use this aisfx 0.1.2 wheel, no download")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="aisfx-convert-") as tmp:
        workdir = Path(tmp)
        wheel = get_wheel(args.wheel, workdir)
        with zipfile.ZipFile(wheel) as zf:
            for member in (CHECKPOINT_MEMBER, MODEL_MEMBER, LICENSE_MEMBER):
                zf.extract(member, workdir)
        checkpoint = workdir / CHECKPOINT_MEMBER
        digest = sha256_file(checkpoint)
        if digest != CHECKPOINT_SHA256:
            raise SystemExit(f"checkpoint SHA-256 {digest} != expected {CHECKPOINT_SHA256}")
        print(f"checkpoint {CHECKPOINT_MEMBER} sha256 {digest} (ok)")

        state, datasets = load_checkpoint(checkpoint)
        print(f"training sets in checkpoint: {sorted(datasets)}")
        tensors = extract_embedding(state)
        check_against_aisfx(workdir / MODEL_MEMBER, state, tensors)
        wheel_license = (workdir / LICENSE_MEMBER).read_text(encoding="utf-8")

    metadata = {
        "format": "pt",
        "name": "aisfx X-Sequential-CE embedding network (ISMIR 2022)",
        "authors": AUTHORS,
        "copyright": COPYRIGHT,
        "license": "CC-BY-4.0",
        "paper": PAPER,
        "source": f"PyPI aisfx=={AISFX_VERSION} ({SOURCE_URL})",
        "source_wheel": WHEEL_NAME,
        "source_wheel_sha256": WHEEL_SHA256,
        "source_checkpoint": CHECKPOINT_MEMBER,
        "source_checkpoint_sha256": CHECKPOINT_SHA256,
        "conversion": (
            "scripts/convert_aisfx_weights.py: kept embedding_net.* only, prefix stripped, "
            "num_batches_tracked and fc.* heads dropped, float32, values unchanged"
        ),
        "architecture": (
            "input (B,100,96) log-mel block -> unsqueeze(1); 4 blocks of "
            "[conv3x3 pad1 no-bias, BN(eps 1e-5), ReLU] x2 with 64/128/256/512 channels, "
            "2x2 max-pool after blocks 1-3; mean over freq (dim 3), max over time (dim 2) -> 512"
        ),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = args.out_dir / WEIGHTS_NAME
    save_file(tensors, str(weights_path), metadata=metadata)
    canonicalise_header(weights_path)
    weights_path.chmod(0o644)

    reloaded = load_file(str(weights_path))
    if set(reloaded) != set(tensors):
        raise SystemExit("reloaded tensor names differ")
    for name, tensor in tensors.items():
        if not torch.equal(reloaded[name], tensor):
            raise SystemExit(f"reloaded tensor {name} differs")

    weights_sha = sha256_file(weights_path)
    license_path = args.out_dir / LICENSE_NAME
    license_path.write_text(license_text(wheel_license, weights_sha), encoding="utf-8")

    print("tensors:")
    for name, tensor in tensors.items():
        print(f"  {name:34s} {tuple(tensor.shape)}")
    print(f"wrote {weights_path} ({weights_path.stat().st_size} bytes)")
    print(f"sha256 {weights_sha}  {WEIGHTS_NAME}")
    print(f"wrote {license_path}")
    print(f"sha256 {sha256_file(license_path)}  {LICENSE_NAME}")


if __name__ == "__main__":
    main()
