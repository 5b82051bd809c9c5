"""The default embedder: the sound-effects CNN of Ma & Lerch (ISMIR 2022), shipped with its weights.

Model and weights come from the ``aisfx`` 0.1.2 package (code MIT; weights CC BY 4.0, "Copyright
(c) 2022 A.B. Ma and A. Lerch"); ``scripts/convert_aisfx_weights.py`` converted its checkpoint to
safetensors, so loading executes no pickle. The network is rebuilt here in plain torch with the
checkpoint's module names. The front end is the one the model was trained with (the Essentia path of
``aisfx.inference``, its default), computed in torch so it runs batched and on the GPU:

1. 44.1 kHz mono, at its own level (Essentia's loader does not normalise: replay gain -6 dB
   with a +6 dB offset, a factor of 1);
2. power mel spectrogram: frames of 2048 samples (Hann) every 1024, the first starting 1024
   samples before the sound, ``ceil(N / 1024) + 1`` frames in all (Essentia's framing);
   96 mel bands 0-22050 Hz, triangles linear in HTK mel, each normalised to unit sum;
3. ``log10(1e4 * S + 1) / 9.457798957824707`` (the training set's maximum);
4. blocks of 100 frames (2.32 s) with a 50-frame hop; a sound shorter than a block is zero-padded,
   the partial tail block of a longer one is dropped (as the reference does);
5. each block → 512-d (four conv blocks, mean over frequency, max over time); the sound's
   embedding is the mean over its blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from .._hashing import sha256_bytes
from ..errors import EmbedderError
from ._torch import cpu_has_fast_bf16, resolve_device

__all__ = ["AisfxEmbedder", "AisfxNet", "log_mel"]

SAMPLE_RATE = 44100
N_FFT = 2048
HOP = 1024
N_MELS = 96
LOG_MEL_MAX = 9.457798957824707
BLOCK_FRAMES = 100
BLOCK_HOP = 50

#: Bumped whenever the front end changes what a sound's vector is: libraries record it, and a
#: library made by another front end is refused (its vectors would not compare with a query's).
FRONTEND = "essentia-framing/1"

WEIGHTS_FILE = "aisfx-ismir2022.safetensors"
#: SHA-256 of the shipped safetensors file; checked at load time.
WEIGHTS_SHA256 = "e0f910358d02715dfa71ff8cec81b984307bf5091005721439e97afacbd1f7fc"


class _ConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, pool: bool) -> torch.Tensor:
        x = functional.relu(self.bn1(self.conv1(x)))
        x = functional.relu(self.bn2(self.conv2(x)))
        return functional.max_pool2d(x, 2) if pool else x


class AisfxNet(nn.Module):
    """The embedding network: (blocks, 100 frames, 96 mels) log-mel → (blocks, 512)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_block1 = _ConvBlock(1, 64)
        self.conv_block2 = _ConvBlock(64, 128)
        self.conv_block3 = _ConvBlock(128, 256)
        self.conv_block4 = _ConvBlock(256, 512)
        self.channels_last = False  # set by for_inference

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        x = blocks.unsqueeze(1)
        if self.channels_last:
            # NHWC: oneDNN's (and cuDNN's) fast layout, 1.2x (fp32) to 1.5x (bf16) here
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.conv_block1(x, pool=True)
        x = self.conv_block2(x, pool=True)
        x = self.conv_block3(x, pool=True)
        x = self.conv_block4(x, pool=False)
        return x.float().mean(dim=3).amax(dim=2)


def for_inference(network: AisfxNet) -> AisfxNet:
    """The same function, faster: batch norms folded into the convolutions (eval mode), weights
    in channels-last layout. Outputs agree with the plain network to cosine > 0.999999."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    network = network.eval()
    for block in (network.conv_block1, network.conv_block2, network.conv_block3,
                  network.conv_block4):
        block.conv1 = fuse_conv_bn_eval(block.conv1, block.bn1)
        block.conv2 = fuse_conv_bn_eval(block.conv2, block.bn2)
        block.bn1, block.bn2 = nn.Identity(), nn.Identity()
    network.channels_last = True
    return network.to(memory_format=torch.channels_last)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def mel_filterbank(device: torch.device | str = "cpu") -> torch.Tensor:
    """(1025 bins, 96 mels) filters as Essentia's ``MelBands`` builds them for aisfx.

    Band edges are evenly spaced in HTK mel (on a float32 grid); each triangle is linear in mel
    (not in Hz, unlike librosa's) over the FFT bins between its outer edges, and sums to one.
    """
    mel_edges = np.linspace(0.0, _hz_to_mel(np.float64(SAMPLE_RATE / 2)), N_MELS + 2,
                            dtype=np.float32).astype(np.float64)
    hz_edges = 700.0 * (10.0 ** (mel_edges / 2595.0) - 1.0)
    bin_hz = np.arange(N_FFT // 2 + 1) * (SAMPLE_RATE / N_FFT)
    bin_mel = _hz_to_mel(bin_hz)
    spacing = SAMPLE_RATE / N_FFT
    filters = np.zeros((N_FFT // 2 + 1, N_MELS))
    for band in range(N_MELS):
        low, centre, high = mel_edges[band:band + 3]
        first = int(np.ceil(hz_edges[band] / spacing))
        last = min(int(np.floor(hz_edges[band + 2] / spacing)), N_FFT // 2)
        mels = bin_mel[first:last + 1]
        rising = (mels - low) / (centre - low)
        falling = (high - mels) / (high - centre)
        filters[first:last + 1, band] = np.clip(np.where(mels <= centre, rising, falling), 0, None)
    filters /= np.maximum(filters.sum(axis=0, keepdims=True), 1e-12)
    return torch.from_numpy(filters).to(device=device, dtype=torch.float32)


def frame_count(samples: int) -> int:
    """Essentia's frame count for a sound of ``samples``: ``ceil(samples / 1024) + 1``."""
    return -(-samples // HOP) + 1


def log_mel(waveform: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    """44.1 kHz mono waveform (time,) → (frames, 96) scaled log-mel, framed as Essentia does."""
    count = frame_count(waveform.shape[0])
    padded = functional.pad(waveform, (HOP, HOP * count - waveform.shape[0]))
    window = torch.hann_window(N_FFT, periodic=False, device=waveform.device)
    spectrum = torch.stft(padded, N_FFT, HOP, window=window, center=False, return_complex=True)
    power = spectrum.real.square() + spectrum.imag.square()  # (1025, frames)
    mel = filters.T @ power
    return (torch.log10(1e4 * mel + 1.0) / LOG_MEL_MAX).T.contiguous()


def split_blocks(spectrogram: torch.Tensor) -> torch.Tensor:
    """(frames, mels) → (blocks, 100, mels): zero-pad a short one, drop a partial tail block."""
    frames = spectrogram.shape[0]
    if frames < BLOCK_FRAMES:
        return functional.pad(spectrogram, (0, 0, 0, BLOCK_FRAMES - frames)).unsqueeze(0)
    count = (frames - BLOCK_FRAMES) // BLOCK_HOP + 1
    blocks = spectrogram.unfold(0, BLOCK_FRAMES, BLOCK_HOP)[:count]  # (blocks, mels, 100)
    return blocks.transpose(1, 2)


def block_weights(count: int, regions_s: np.ndarray) -> np.ndarray:
    """``(regions, count)`` float32 weights, each row summing to 1, of the blocks that hold a
    region: block ``b`` hears frames ``50 b .. 50 b + 99``, centred 1024 samples apart from the
    sound's start; a block counts when it holds at least half of the region (or the region
    half of it), weighted by how much of the region it holds; a region no block holds that
    much of takes the block that holds most of it.

    Example:
        >>> block_weights(3, np.array([[0.5, 1.0], [2.4, 2.9]])).round(2).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]
    """
    frame_s = HOP / SAMPLE_RATE
    starts = np.arange(count) * BLOCK_HOP * frame_s
    ends = starts + (BLOCK_FRAMES - 1) * frame_s
    spans = np.asarray(regions_s, dtype=np.float64).reshape(-1, 2)
    overlap = np.clip(np.minimum(spans[:, 1:2], ends) - np.maximum(spans[:, 0:1], starts),
                      0.0, None)
    shortest = np.minimum(spans[:, 1:2] - spans[:, 0:1], ends - starts)
    weights = np.where(overlap >= 0.5 * np.maximum(shortest, 1e-9), overlap, 0.0)
    empty = weights.sum(axis=1) == 0
    if empty.any() and count:
        best = overlap[empty].argmax(axis=1)
        weights[np.flatnonzero(empty), best] = 1.0
    totals = weights.sum(axis=1, keepdims=True)
    return (weights / np.where(totals > 0, totals, 1.0)).astype(np.float32)


class AisfxEmbedder:
    """The shipped sound-effects CNN as an :class:`~soundslike_nb.embedders.Embedder`.

    Args:
        device: ``"cpu"``, ``"cuda"``...; default: a GPU when there is one.
        precision: ``"auto"`` (bf16 on GPUs and on CPUs with native bf16, else fp32),
            ``"fp32"`` or ``"bf16"``.
        max_batch_blocks: how many 2.3 s blocks go through the network at once; default 4 on
            a CPU (measured fastest on 2 cores: larger batches fall out of cache) and 128 on a
            GPU.

    Example:
        >>> embedder = AisfxEmbedder(device="cpu")  # doctest: +SKIP
        >>> embedder.embed([np.zeros(44100, np.float32)]).shape  # doctest: +SKIP
        (1, 512)
    """

    id = "aisfx-ismir2022"
    version = "0.1.2"
    sample_rate = SAMPLE_RATE
    dimension = 512
    #: A region shorter than one block (2.32 s) is embedded from its own audio, not its blocks.
    region_block_s = BLOCK_FRAMES * HOP / SAMPLE_RATE

    def __init__(
        self, *, device: str | None = None, precision: str = "auto",
        max_batch_blocks: int | None = None,
    ) -> None:
        if precision not in {"auto", "fp32", "bf16"}:
            raise EmbedderError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}")
        if max_batch_blocks is not None and max_batch_blocks < 1:
            raise EmbedderError(f"max_batch_blocks must be >= 1, got {max_batch_blocks}")
        self.device = resolve_device(device)
        if max_batch_blocks is None:
            max_batch_blocks = 128 if self.device.type == "cuda" else 4
        if precision == "auto":
            fast = self.device.type == "cuda" or cpu_has_fast_bf16()
            precision = "bf16" if fast else "fp32"
        self.precision = precision
        self.max_batch_blocks = max_batch_blocks
        self.network = for_inference(self._load_network()).to(self.device)
        self.filters = mel_filterbank(self.device)

    def _load_network(self) -> AisfxNet:
        from safetensors.torch import load

        blob = resources.files(__package__).joinpath("weights", WEIGHTS_FILE).read_bytes()
        digest = sha256_bytes(blob)
        if digest != WEIGHTS_SHA256:
            raise EmbedderError(
                f"{WEIGHTS_FILE}: SHA-256 {digest} differs from the expected {WEIGHTS_SHA256} "
                "(corrupt install? reinstall soundslike_nb)"
            )
        network = AisfxNet()
        network.load_state_dict(load(blob))
        return network

    @property
    def provenance(self) -> dict[str, Any]:
        """What a library records about the model that embedded it."""
        return {
            "id": self.id,
            "backend": "aisfx",
            "version": self.version,
            "dimension": self.dimension,
            "sample_rate": self.sample_rate,
            "weights_sha256": WEIGHTS_SHA256,
            "frontend": FRONTEND,
        }

    def blocks(self, waveform: np.ndarray) -> torch.Tensor:
        """One waveform → its (blocks, 100, 96) network input, on the embedder's device."""
        samples = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32))
        return split_blocks(log_mel(samples.to(self.device), self.filters))

    def embed(self, waveforms: Sequence[np.ndarray], *,
              progress: Callable[[float], None] | None = None) -> np.ndarray:
        """Embed mono float32 waveforms at 44.1 kHz → (n, 512) float32.

        Blocks of all waveforms share network batches, so many short sounds cost few calls.
        ``progress`` hears the share of the network's work done (0 to 1) after each batch.
        """
        if len(waveforms) == 0:
            return np.zeros((0, self.dimension), np.float32)
        with torch.inference_mode():
            per_sound = [self.blocks(waveform) for waveform in waveforms]
            counts = torch.tensor([len(blocks) for blocks in per_sound], device=self.device)
            block_embeddings = self._run(torch.cat(per_sound), progress=progress)
            owners = torch.repeat_interleave(torch.arange(len(per_sound), device=self.device),
                                             counts)
            sums = torch.zeros(len(per_sound), self.dimension, device=self.device)
            sums.index_add_(0, owners, block_embeddings)
            means = sums / counts.unsqueeze(1)
        return means.cpu().numpy().astype(np.float32)

    def embed_regions(self, waveform: np.ndarray, regions_s: np.ndarray, *,
                      progress: Callable[[float], None] | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """One sound's embedding (as :meth:`embed` gives it) and its regions', from one pass of
        the network: a region's is the mean of the blocks that hold most of it
        (:func:`block_weights`). The network pools each block with a max over time, so a block
        hears the loudest sound inside it; regions cost no network time of their own.

        Args:
            waveform: mono float32 at 44.1 kHz.
            regions_s: ``(n, 2)`` start and end of each region in seconds.

        Returns:
            ``(512,)`` float32 for the sound, ``(n, 512)`` float32 for its regions.
        """
        spans = np.asarray(regions_s, dtype=np.float64).reshape(-1, 2)
        with torch.inference_mode():
            blocks = self.blocks(waveform)
            block_embeddings = self._run(blocks, progress=progress)
            weights = torch.from_numpy(block_weights(len(blocks), spans)).to(
                block_embeddings.device)
            regions = weights @ block_embeddings
            whole = block_embeddings.mean(dim=0)
        return (whole.cpu().numpy().astype(np.float32),
                regions.cpu().numpy().astype(np.float32))

    def _run(self, blocks: torch.Tensor, *,
             progress: Callable[[float], None] | None = None) -> torch.Tensor:
        outputs = []
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16,
                                  enabled=self.precision == "bf16")
        with autocast:
            for start in range(0, len(blocks), self.max_batch_blocks):
                end = start + self.max_batch_blocks
                outputs.append(self.network(blocks[start:end]).float())
                if progress is not None:
                    progress(min(end, len(blocks)) / len(blocks))
        return torch.cat(outputs)
