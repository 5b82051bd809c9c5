"""pyannote.audio embedding models (x-vector, WeSpeaker ResNet...) as soundslike_nb embedders.

A model comes from the Hugging Face hub (``get_embedder("pyannote/embedding", token=...)``) or
from a local checkpoint file (``get_embedder("models/xvector.ckpt")``); either way it is built as
pyannote's own ``Model.from_pretrained`` builds it (but without unpickling code, see below) and
run like ``Inference(model, window="whole")`` on in-memory waveforms, so no FFmpeg is needed.
Only models whose specifications say ``Problem.REPRESENTATION`` at ``Resolution.CHUNK`` (one
vector per input) are accepted.

How a sound becomes one vector:

* **Short sounds** are zero-padded, half before and half after, to the shortest input the
  architecture accepts: two output frames, because statistics pooling needs two frames for its
  standard deviation (XVectorSincNet: 5041 samples = 0.32 s at 16 kHz; WeSpeakerResNet34: 1680 =
  0.105 s). Zeros add silence, which sound-effect files are full of anyway; repeating the sound
  instead would invent a rhythm (one click becomes three). Centring keeps the sound away from
  the edges, where the valid convolutions see it through fewer windows.
* **Long sounds** (over ``WINDOW_S`` = 10 s) are cut into 10 s windows with a 5 s hop (50 %
  overlap), the last window aligned with the end of the sound, and the L2-normalised window
  embeddings are averaged. Ten seconds is several times the 2-5 s chunks these models are
  trained on, so each window's statistics are stable, while it bounds memory (one hour in a
  single pass needs gigabytes) and gives equal-length windows that batch exactly. The overlap
  means an event cut by one window boundary lies whole inside the neighbouring window, and all
  but the first and last 5 s weigh the same in the average; it costs about twice the compute of
  back-to-back windows. Normalising before averaging gives each window one vote, however loud.
* **Batching**: instance normalisation (SincNet) and fbank mean-centring (WeSpeaker) make the
  output depend on the padding, so inputs are never padded to a common length; inputs of
  exactly equal length (all windows of long sounds, equal-length clips) are run together, up to
  about 20 s of audio per pass on a CPU and 320 s on a GPU; others go one at a time through
  ``Inference``. Both give the same vectors (cosine > 0.9999).

Checkpoints, local or from the hub, are read with ``torch.load(weights_only=True)``, and
pyannote.audio's usage telemetry is turned off unless the user opted in: both are the job of
``soundslike_nb.embedders._pyannote_checkpoint``, which also holds :func:`convert_checkpoint`
(re-exported here) for a checkpoint you trust that the safe loading refuses.

Example:
    >>> from soundslike_nb.embedders import get_embedder
    >>> embedder = get_embedder("pyannote/wespeaker-voxceleb-resnet34-LM")  # doctest: +SKIP
    >>> embedder.embed([np.zeros(16000, np.float32)]).shape  # doctest: +SKIP
    (1, 256)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import validate_waveform
from ..errors import EmbedderError
from ._hub import CHECKPOINT_FILE as _CHECKPOINT_FILE
from ._hub import download as _download
from ._pyannote_checkpoint import convert_checkpoint
from ._pyannote_checkpoint import load_model as _load_model
from ._torch import resolve_device

__all__ = ["HOP_S", "WINDOW_S", "PyannoteEmbedder", "convert_checkpoint"]

#: Sounds longer than this are embedded as the average of windows this long (seconds).
WINDOW_S = 10.0
#: Step between consecutive windows (seconds): 50 % overlap.
HOP_S = 5.0

_CHECKPOINT_SUFFIXES = {".bin", ".ckpt", ".pt", ".pth", ".safetensors"}
# Audio per forward pass. On 2 CPU threads, XVectorSincNet gains ~25 % from batches of 4 x 5 s
# while WeSpeakerResNet34 loses ~30 % at 8 x 10 s: about 20 s per batch suits both.
_BATCH_SECONDS = {"cpu": 20.0, "cuda": 320.0}


def _check_is_embedding(model, label: str) -> None:
    from pyannote.audio.core.task import Problem, Resolution, Specifications

    specifications = getattr(model, "specifications", None)
    if isinstance(specifications, Specifications) and (
        specifications.problem == Problem.REPRESENTATION
        and specifications.resolution == Resolution.CHUNK
    ):
        return
    if isinstance(specifications, Specifications):
        found = (
            f"a {specifications.problem.name.lower().replace('_', ' ')} model "
            f"with {specifications.resolution.name.lower()} resolution"
        )
    else:
        found = f"specifications {specifications!r}"
    raise EmbedderError(
        f"{label!r} holds {type(model).__name__}, {found}, not an embedding model "
        "(one vector per sound: problem REPRESENTATION, resolution CHUNK); use an embedding "
        "model such as 'pyannote/embedding' or 'pyannote/wespeaker-voxceleb-resnet34-LM'"
    )


class PyannoteEmbedder:
    """A pyannote.audio embedding model behind the soundslike_nb ``Embedder`` protocol.

    Build one with :meth:`from_hub` or :meth:`from_checkpoint` (or ``get_embedder``).

    Example:
        >>> embedder = PyannoteEmbedder.from_checkpoint("xvector.ckpt")  # doctest: +SKIP
        >>> embedder.embed([np.zeros(8000, np.float32)]).shape  # doctest: +SKIP
        (1, 512)
    """

    def __init__(
        self,
        model,
        *,
        id: str,
        weights_sha256: str,
        revision: str | None = None,
        source: str | None = None,
        device: str | None = None,
        batch_size: int = 32,
    ) -> None:
        from pyannote.audio import Inference

        _check_is_embedding(model, id)
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        self.id = id
        self.sample_rate = int(model.hparams.sample_rate)
        self.batch_size = batch_size
        self._batch_samples = round(_BATCH_SECONDS.get(self.device.type, 20.0) * self.sample_rate)
        self._weights_sha256 = weights_sha256
        self._revision = revision
        self._source = source or id  # what get_embedder needs to load this model again
        self._inference = Inference(self.model, window="whole", device=self.device)
        self.min_samples = self._minimum_samples()
        probe = self._run([np.random.default_rng(0).standard_normal(self.min_samples)])
        if probe.ndim != 2 or not np.isfinite(probe).all():
            raise EmbedderError(
                f"{id!r}: {type(model).__name__} gave output of shape {probe.shape} "
                f"(finite: {np.isfinite(probe).all()}), not one finite vector per sound"
            )
        self.dimension = int(probe.shape[1])
        self.window_samples = round(WINDOW_S * self.sample_rate)
        self.hop_samples = round(HOP_S * self.sample_rate)

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, *, device: str | None = None
    ) -> PyannoteEmbedder:
        """Load a local pyannote.audio checkpoint file (or a directory holding pytorch_model.bin).

        Example:
            >>> PyannoteEmbedder.from_checkpoint("models/xvector.ckpt").id  # doctest: +SKIP
            'checkpoint:xvector.ckpt@1f0e3dad9990'
        """
        checkpoint = Path(path).expanduser()
        if checkpoint.is_dir():
            checkpoint = checkpoint / _CHECKPOINT_FILE
            if not checkpoint.is_file():
                raise EmbedderError(f"{os.fspath(path)!r}: directory without {_CHECKPOINT_FILE}")
            name = f"{checkpoint.parent.name}/{checkpoint.name}"
        elif checkpoint.is_file():
            name = checkpoint.name
        else:
            raise EmbedderError(f"no such checkpoint: {os.fspath(path)!r}")
        label = os.fspath(path)
        model, sha256 = _load_model(checkpoint, label, origin="local")
        _check_is_embedding(model, label)
        return cls(model, id=f"checkpoint:{name}@{sha256[:12]}", weights_sha256=sha256,
                   source=str(checkpoint.resolve()), device=device)

    @classmethod
    def from_hub(
        cls,
        hub_id: str,
        *,
        token: str | None = None,
        device: str | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> PyannoteEmbedder:
        """Download (or take from the cache) a pyannote.audio model on the Hugging Face hub.

        Args:
            hub_id: e.g. ``"pyannote/wespeaker-voxceleb-resnet34-LM"``.
            token: for gated models; default ``$HF_TOKEN``, then the ``hf auth login`` token.
            device: ``"cpu"``, ``"cuda"``...; default a GPU when there is one.
            revision: a branch, tag or commit of the hub repository (default ``main``).
            cache_dir: the Hugging Face cache to use (default ``$HF_HUB_CACHE``).

        Example:
            >>> PyannoteEmbedder.from_hub("pyannote/embedding", token="hf_...")  # doctest: +SKIP
        """
        if Path(hub_id).suffix.lower() in _CHECKPOINT_SUFFIXES:  # a mistyped path, not an id
            raise EmbedderError(f"no such checkpoint: {hub_id!r}")
        token = token or os.environ.get("HF_TOKEN") or None
        checkpoint = _download(hub_id, token=token, revision=revision, cache_dir=cache_dir)
        # pyannote's telemetry names pyannote's own models and calls the rest "huggingface"
        own = hub_id.lower().startswith(("pyannote/", "pyannoteai/"))
        origin = hub_id if own else "huggingface"
        model, sha256 = _load_model(checkpoint, hub_id, origin=origin)
        _check_is_embedding(model, hub_id)
        commit = checkpoint.parent.name if checkpoint.parent.parent.name == "snapshots" else None
        return cls(model, id=hub_id, weights_sha256=sha256, revision=commit, device=device)

    @property
    def provenance(self) -> dict[str, Any]:
        """What a library file records about the model, so that mismatches can be caught."""
        from pyannote.audio import __version__

        architecture = type(self.model)
        provenance = {
            "id": self.id,
            "backend": "pyannote.audio",
            "version": f"pyannote.audio {__version__} {architecture.__name__}",
            "architecture": f"{architecture.__module__}.{architecture.__name__}",
            "dimension": self.dimension,
            "sample_rate": self.sample_rate,
            "weights_sha256": self._weights_sha256,
            "source": self._source,
            "window_s": WINDOW_S,
            "hop_s": HOP_S,
            "min_samples": self.min_samples,
        }
        if self._revision is not None:
            provenance["revision"] = self._revision
        return provenance

    def embed(self, waveforms: Sequence[np.ndarray], *,
              progress: Callable[[float], None] | None = None) -> np.ndarray:
        """Embed mono waveforms at ``sample_rate``: one float32 row of ``dimension`` per sound;
        ``progress`` hears the share of the windows done (0 to 1) after each model batch.

        Example:
            >>> embedder.embed([np.zeros(800, np.float32), np.ones(16000)]).shape  # doctest: +SKIP
            (2, 512)
        """
        segments: list[np.ndarray] = []
        owners: list[int] = []
        count = 0
        for index, samples in enumerate(waveforms):
            waveform = validate_waveform(samples, name=f"waveform {index}")
            pieces = self._segments(waveform)
            segments.extend(pieces)
            owners.extend([index] * len(pieces))
            count += 1
        if not count:
            return np.zeros((0, self.dimension), np.float32)
        outputs = self._run(segments, progress=progress)
        if not np.isfinite(outputs).all():
            bad = sorted({owners[i] for i in np.flatnonzero(~np.isfinite(outputs).all(axis=1))})
            raise EmbedderError(f"{self.id}: non-finite embedding for waveform(s) {bad}")
        owner_array = np.asarray(owners)
        embeddings = np.empty((count, self.dimension), np.float32)
        for index in range(count):
            rows = outputs[owner_array == index]
            if len(rows) > 1:  # windows of a long sound: one vote each
                norms = np.linalg.norm(rows, axis=1, keepdims=True)
                rows = rows / np.maximum(norms, 1e-12)
            embeddings[index] = rows.mean(axis=0)
        return embeddings

    def _segments(self, waveform: np.ndarray) -> list[np.ndarray]:
        """Pad a short waveform; cut a long one into overlapping windows."""
        length = len(waveform)
        if length < self.min_samples:
            before = (self.min_samples - length) // 2
            return [np.pad(waveform, (before, self.min_samples - length - before))]
        if length <= self.window_samples:
            return [waveform]
        starts = list(range(0, length - self.window_samples + 1, self.hop_samples))
        if starts[-1] + self.window_samples < length:
            starts.append(length - self.window_samples)
        return [waveform[start : start + self.window_samples] for start in starts]

    def _run(self, segments: Sequence[np.ndarray], *,
             progress: Callable[[float], None] | None = None) -> np.ndarray:
        """Model outputs for ``segments``, batching those of equal length (exact, no padding)."""
        by_length: dict[int, list[int]] = {}
        for position, segment in enumerate(segments):
            by_length.setdefault(len(segment), []).append(position)
        outputs: list[np.ndarray | None] = [None] * len(segments)
        done = 0
        if any(len(positions) > 1 for positions in by_length.values()):
            from pyannote.audio.utils.reproducibility import fix_reproducibility

            fix_reproducibility(self.device)  # what Inference.__call__ does: no TF32 on GPUs
        with torch.inference_mode():
            for length, positions in by_length.items():
                size = max(1, min(self.batch_size, self._batch_samples // length))
                for first in range(0, len(positions), size):
                    batch = positions[first : first + size]
                    for position, row in zip(batch, self._forward([segments[p] for p in batch])):
                        outputs[position] = row
                    done += len(batch)
                    if progress is not None:
                        progress(done / len(segments))
        return np.stack(outputs).astype(np.float32, copy=False)

    def _forward(self, batch: list[np.ndarray]) -> np.ndarray:
        waveforms = torch.from_numpy(np.stack(batch).astype(np.float32, copy=False))
        try:
            if len(batch) == 1:
                output = self._inference({"waveform": waveforms, "sample_rate": self.sample_rate})
                return np.asarray(output)[None]
            # Inference takes one waveform at a time; equal lengths make this the same computation.
            return self._inference.infer(waveforms[:, None, :])
        except (RuntimeError, MemoryError) as exc:
            raise EmbedderError(
                f"{self.id}: running {type(self.model).__name__} on {len(batch)} input(s) of "
                f"{waveforms.shape[-1]} samples failed ({exc})"
            ) from None

    def _minimum_samples(self) -> int:
        """The shortest input giving two output frames (statistics pooling needs two)."""
        try:
            return int(self.model.receptive_field_size(num_frames=2))
        except (AttributeError, NotImplementedError, TypeError):
            return self.sample_rate // 2  # an architecture that cannot say: the probe checks it
