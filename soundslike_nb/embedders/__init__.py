"""Embedding models: the :class:`Embedder` protocol and ``get_embedder``, the one way to get one.

Backends live in their own modules and are imported only when asked for, so that importing
soundslike_nb never pulls in torch or pyannote.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import EmbedderError

__all__ = ["DEFAULT_EMBEDDER", "Embedder", "get_embedder"]

#: The model used when none is named: the shipped sound-effects CNN, which works offline.
DEFAULT_EMBEDDER = "aisfx"

_AISFX_NAMES = {"aisfx", "aisfx-ismir2022"}


@runtime_checkable
class Embedder(Protocol):
    """What every backend provides.

    ``embed`` takes mono float32 waveforms at ``sample_rate`` and returns one
    ``dimension``-long float32 row per waveform.
    """

    id: str
    sample_rate: int
    dimension: int

    def embed(self, waveforms: Sequence[np.ndarray]) -> np.ndarray: ...

    @property
    def provenance(self) -> dict[str, Any]: ...


def get_embedder(
    name: str | os.PathLike = DEFAULT_EMBEDDER,
    *,
    token: str | None = None,
    device: str | None = None,
) -> Embedder:
    """Load an embedding model by name, hub id or local checkpoint path.

    Args:
        name: ``"aisfx"`` (default, offline), a pyannote.audio hub id such as
            ``"pyannote/embedding"``, or the path of a local pyannote checkpoint.
        token: Hugging Face token for gated hub models (default: ``$HF_TOKEN``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default: a GPU when there is one.

    Example:
        >>> embedder = get_embedder("aisfx")  # doctest: +SKIP
        >>> embedder.dimension  # doctest: +SKIP
        512
    """
    text = os.fspath(name).strip()
    if text.lower() in _AISFX_NAMES:
        if token is not None:
            raise EmbedderError("the aisfx model is shipped with soundslike_nb: it takes no token")
        from .aisfx import AisfxEmbedder

        return AisfxEmbedder(device=device)
    if os.path.exists(text) or text.startswith((".", "/", "~")) or text.endswith((".ckpt", ".bin")):
        from .pyannote import PyannoteEmbedder

        return PyannoteEmbedder.from_checkpoint(os.path.expanduser(text), device=device)
    if "/" in text:
        from .pyannote import PyannoteEmbedder

        return PyannoteEmbedder.from_hub(text, token=token, device=device)
    raise EmbedderError(
        f"unknown embedder {text!r}: use 'aisfx', a pyannote.audio hub id such as "
        "'pyannote/embedding', or the path of a local pyannote checkpoint"
    )
