"""Embedding models: the :class:`Embedder` protocol and ``get_embedder``, the one way to get one.

Backends live in their own modules and are imported only when asked for, so that importing
soundslike_nb never pulls in torch or pyannote.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import EmbedderError

__all__ = ["DEFAULT_EMBEDDER", "Embedder", "check_same_model", "get_embedder", "is_shipped"]

#: The model used when none is named: the shipped sound-effects CNN, which works offline.
DEFAULT_EMBEDDER = "aisfx"

_AISFX_NAMES = {"aisfx", "aisfx-ismir2022"}


@runtime_checkable
class Embedder(Protocol):
    """What every backend provides.

    ``embed`` takes mono float32 waveforms at ``sample_rate`` and returns one
    ``dimension``-long float32 row per waveform; its optional keyword ``progress`` is called
    with the share of the work done (0 to 1) as it goes, for long sounds.
    """

    id: str
    sample_rate: int
    dimension: int

    def embed(self, waveforms: Sequence[np.ndarray], *,
              progress: Callable[[float], None] | None = None) -> np.ndarray: ...

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


def is_shipped(model_info: dict[str, Any]) -> bool:
    """Whether a provenance record names the shipped default model (the one model that loads
    without the user naming it).

    Example:
        >>> is_shipped({"id": "aisfx-ismir2022"}), is_shipped({"id": "pyannote/embedding"})
        (True, False)
    """
    return str(model_info.get("id", "")).lower() in _AISFX_NAMES


def check_same_model(expected: dict[str, Any], actual: dict[str, Any], *, where: str = "") -> None:
    """Refuse a model other than the one a library records, naming both.

    Example:
        >>> check_same_model({"id": "a", "dimension": 2}, {"id": "a", "dimension": 2})
    """
    same = (actual.get("id") == expected.get("id")
            and actual.get("weights_sha256") == expected.get("weights_sha256")
            and actual.get("frontend") == expected.get("frontend")
            and int(actual.get("dimension", -1)) == int(expected.get("dimension", -2)))
    if not same:
        raise EmbedderError(
            f"the library {where or ''!s} was embedded by {_describe(expected)}, the query by "
            f"{_describe(actual)}: their similarities mean nothing; rebuild the library with "
            "the query's model (a new output file) or search with the library's"
        )


def _describe(model: dict[str, Any]) -> str:
    frontend = f", front end {model['frontend']}" if model.get("frontend") else ""
    return (f"{model.get('id')!r} ({model.get('dimension')}-d, weights "
            f"{str(model.get('weights_sha256'))[:12]}{frontend})")
