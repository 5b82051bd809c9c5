"""Build small pyannote.audio checkpoints for the tests: random weights, saved the pyannote way.

These are test fixtures only, never a default model: the weights are seeded noise, so the
embeddings mean nothing, but the files load through ``Model.from_pretrained`` exactly like a
checkpoint from the hub. The recipe is the one pyannote.audio's own WeSpeaker conversion script
uses (``pyannote/audio/models/embedding/wespeaker/convert.py``).

Example:
    >>> from tests.pyannote_fixture import make_xvector_checkpoint
    >>> make_xvector_checkpoint(tmp_path / "xvector.ckpt")  # doctest: +SKIP
    PosixPath('.../xvector.ckpt')
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "make_segmentation_checkpoint",
    "make_wespeaker_checkpoint",
    "make_xvector_checkpoint",
]


def _save(model, specifications, path: str | os.PathLike) -> Path:
    """Save ``model`` as pyannote.audio saves a checkpoint, after giving it ``specifications``."""
    import lightning
    import torch

    model.specifications = specifications
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    model.on_save_checkpoint(checkpoint)  # adds the "pyannote.audio" section
    checkpoint["pytorch-lightning_version"] = lightning.__version__
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


def _embedding_specifications(duration: float):
    from pyannote.audio.core.task import Problem, Resolution, Specifications

    return Specifications(
        problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=duration
    )


def make_xvector_checkpoint(path: str | os.PathLike, *, seed: int = 0) -> Path:
    """Save a 512-d ``XVectorSincNet`` (16 kHz) with seeded random weights at ``path``.

    Example:
        >>> make_xvector_checkpoint("/tmp/xvector.ckpt").name  # doctest: +SKIP
        'xvector.ckpt'
    """
    import torch
    from pyannote.audio.models.embedding import XVectorSincNet

    torch.manual_seed(seed)
    return _save(XVectorSincNet(), _embedding_specifications(3.0), path)


def make_wespeaker_checkpoint(path: str | os.PathLike, *, seed: int = 0) -> Path:
    """Save a 256-d ``WeSpeakerResNet34`` (16 kHz) with seeded random weights at ``path``.

    Example:
        >>> make_wespeaker_checkpoint("/tmp/wespeaker.ckpt").name  # doctest: +SKIP
        'wespeaker.ckpt'
    """
    import torch
    from pyannote.audio.models.embedding import WeSpeakerResNet34

    torch.manual_seed(seed)
    return _save(WeSpeakerResNet34(), _embedding_specifications(5.0), path)


def make_segmentation_checkpoint(path: str | os.PathLike, *, seed: int = 0) -> Path:
    """Save a small ``PyanNet`` voice-activity model (frame-wise, not an embedding) at ``path``.

    Example:
        >>> make_segmentation_checkpoint("/tmp/vad.ckpt").name  # doctest: +SKIP
        'vad.ckpt'
    """
    import torch
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.segmentation import PyanNet

    torch.manual_seed(seed)
    model = PyanNet(lstm={"hidden_size": 32, "num_layers": 1}, linear={"hidden_size": 32})
    specifications = Specifications(
        problem=Problem.BINARY_CLASSIFICATION,
        resolution=Resolution.FRAME,
        duration=5.0,
        classes=["speech"],
    )
    model.specifications = specifications
    model.build()  # the task-dependent classifier needs the specifications
    return _save(model, specifications, path)
