"""Which model analyses a library's sounds: the one the user names, or the shipped default.

A library file records its model; nothing loads a model (or unpickles its checkpoint) that the
user did not choose. Only the shipped aisfx model loads without being named.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .embedders import DEFAULT_EMBEDDER, Embedder, check_same_model, get_embedder, is_shipped
from .errors import EmbedderError

__all__ = ["load_model", "model_for_library", "refuse_unnamed"]


def load_model(embedder: str | os.PathLike | Embedder, *, token: str | None = None,
               device: str | None = None) -> Embedder:
    """A model by name or checkpoint (:func:`~soundslike_nb.embedders.get_embedder`), or an
    :class:`Embedder` object, checked to be one."""
    if isinstance(embedder, (str, os.PathLike)):
        return get_embedder(embedder, token=token, device=device)
    if not all(hasattr(embedder, name) for name in ("embed", "provenance", "sample_rate")):
        raise EmbedderError(f"{embedder!r} is neither a model name nor an Embedder")
    return embedder


def refuse_unnamed(model_info: Mapping[str, Any], *, where: str = "") -> None:
    """Raise unless the model a library records may load without the user naming it: only
    the shipped default may. A library file must never make the program load (and unpickle)
    a model the user did not choose.

    Example:
        >>> refuse_unnamed({"id": "aisfx-ismir2022"})
        >>> try:
        ...     refuse_unnamed({"id": "pyannote/embedding"})
        ... except EmbedderError as error:
        ...     print(str(error).split(", which")[0])
        the library was embedded by 'pyannote/embedding'
    """
    if is_shipped(model_info):
        return
    source = str(model_info.get("source") or model_info.get("id") or "")
    label = f"the library {where}" if where else "the library"
    raise EmbedderError(
        f"{label} was embedded by {source!r}, which soundslike_nb loads only when you name it: "
        f"pass embedder={source!r} (Python), --embedder {source} (command line) or "
        f"EMBEDDER = {source!r} (notebook)")


def model_for_library(model_info: Mapping[str, Any], *,
                      embedder: str | os.PathLike | Embedder | None = None,
                      token: str | None = None, device: str | None = None,
                      where: str = "") -> Embedder:
    """The model to analyse a library's new sounds and queries with: the one the user names
    (refused unless it is the one the library records), else the library's own if it is the
    shipped default (:func:`refuse_unnamed`).

    Example:
        >>> model_for_library(lib.provenance["embedder"], device="cpu")  # doctest: +SKIP
    """
    if embedder is None:
        refuse_unnamed(model_info, where=where)
        embedder = DEFAULT_EMBEDDER
    model = load_model(embedder, token=token, device=device)
    check_same_model(dict(model_info), model.provenance, where=where)
    return model
