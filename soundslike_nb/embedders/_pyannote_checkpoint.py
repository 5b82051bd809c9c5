"""Loading a pyannote.audio model from a checkpoint file without running code from it.

Checkpoints are pickles, which pyannote's ``Model.from_pretrained`` unpickles in full (any code
in them runs). Here every checkpoint, local or from the hub, is read with
``torch.load(weights_only=True)``, which allows tensors, plain containers and a short list of
classes (pyannote's ``Specifications``, ``Problem``, ``Resolution``; ``TorchVersion``); the
model is then built from its ``hyper_parameters`` and ``state_dict`` as ``from_pretrained``
does, from an architecture that must be a pyannote.audio ``Model``. A checkpoint that needs
anything else is refused with an :class:`EmbedderError` naming what it would unpickle. There
is no silent fallback: for a file you trust, :func:`convert_checkpoint` unpickles it in full
once, when you call it, and writes a copy that loads safely.

pyannote.audio 4 sends usage telemetry by default, when imported and at each model load. Unless
``PYANNOTE_METRICS_ENABLED`` was set by the user (``1`` or ``true`` opts in), loading a model
here turns it off for the process.

Example:
    >>> model, sha256 = load_model(Path("x.ckpt"), "x.ckpt", origin="local")  # doctest: +SKIP
    >>> type(model).__name__  # doctest: +SKIP
    'XVectorSincNet'
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import re
import sys
import threading
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import torch

from .._atomic import atomic_path
from .._hashing import sha256_bytes
from ..errors import EmbedderError
from ._hub import TRUE_WORDS as _TRUE

__all__ = ["convert_checkpoint", "load_model"]

_log = logging.getLogger(__name__)

_TELEMETRY_ENV = "PYANNOTE_METRICS_ENABLED"


def _telemetry_opted_in() -> bool:
    """Whether the user, not pyannote's own import, asked for telemetry."""
    value = os.environ.get(_TELEMETRY_ENV)
    if value is None:
        return False
    if "pyannote.audio.telemetry.metrics" in sys.modules and value == "true":
        # pyannote writes "true" into the environment when imported; only a value the process
        # started with is the user's choice.
        try:
            startup = Path("/proc/self/environ").read_bytes().split(b"\0")
        except OSError:
            return False
        return f"{_TELEMETRY_ENV}=true".encode() in startup
    return value.strip().lower() in _TRUE


def _import_pyannote():
    """Import pyannote.audio with its telemetry off unless the user opted in."""
    if not _telemetry_opted_in():
        os.environ[_TELEMETRY_ENV] = "false"  # read by pyannote at import and at each model load
    try:
        import pyannote.audio
    except (ImportError, OSError) as exc:  # OSError: a torchaudio built for another torch
        raise EmbedderError(
            f"pyannote.audio cannot be imported ({exc}): install it with "
            "'pip install pyannote.audio' next to matching torch and torchaudio versions"
        ) from None
    return pyannote.audio


def _looks_like_torch_file(head: bytes) -> bool:
    """torch.save writes a zip archive (PK...) or, in its legacy format, a pickle (0x80)."""
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


class _PickledCallback:
    """Inert stand-in for a Lightning callback class that an old checkpoint pickled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass


# Lightning < 1.5 pickled callback classes as the keys of checkpoint["callbacks"] (the hub's
# pyannote/embedding holds EarlyStopping). No model reads that section, so these names resolve
# to the stand-in: the unpickler could otherwise call the real classes with any arguments.
_LEGACY_CALLBACKS = (
    "pytorch_lightning.callbacks.early_stopping.EarlyStopping",
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
)


def _checkpoint_globals() -> list:
    """What ``weights_only`` loading allows besides tensors and plain containers."""
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from torch.torch_version import TorchVersion  # torch.__version__, saved by pyannote 2 and 3

    legacy = [(_PickledCallback, name) for name in _LEGACY_CALLBACKS]
    return [Specifications, Problem, Resolution, TorchVersion, *legacy]


_ALLOWLIST_LOCK = threading.Lock()


@contextlib.contextmanager
def _checkpoint_globals_allowed() -> Iterator[None]:
    """Allow ``_checkpoint_globals`` for the loads inside, and only there.

    torch's allowlist is process-wide: the lock keeps another thread from removing them
    mid-load, and what the user had allowed before stays allowed after.
    """
    with _ALLOWLIST_LOCK:
        before = torch.serialization.get_safe_globals()
        added = [entry for entry in _checkpoint_globals() if entry not in before]
        with torch.serialization.safe_globals(added):
            yield


def _refused_globals(data: bytes, error: pickle.UnpicklingError) -> list[str]:
    """The names a checkpoint would unpickle beyond ``_checkpoint_globals`` (empty: not that)."""
    allowed = {entry[1] if isinstance(entry, tuple) else f"{entry.__module__}.{entry.__qualname__}"
               for entry in _checkpoint_globals()}
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
    except (ValueError, RuntimeError):  # the legacy (non-zip) format: the error names one
        names = re.findall(r"GLOBAL ([\w.]+)", str(error))
    return sorted(set(names) - allowed)


def _read_checkpoint(data: bytes, path: Path, label: str) -> dict:
    """``torch.load(weights_only=True)`` of a checkpoint's bytes; refuse what needs more."""
    with _checkpoint_globals_allowed():
        try:
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            refused = _refused_globals(data, exc)
            if not refused:
                raise
    raise EmbedderError(
        f"{label!r} was refused: loading it would unpickle {', '.join(refused)}, which can run "
        "code (checkpoints are loaded with torch.load(weights_only=True)); if you trust the "
        "file, convert it once with soundslike_nb.embedders.pyannote.convert_checkpoint"
        f"({os.fspath(path)!r}, 'converted.ckpt') and use the converted file"
    )


def _architecture(checkpoint: dict, label: str) -> type:
    """The pyannote.audio ``Model`` subclass a checkpoint names, imported only from pyannote."""
    from pyannote.audio import Model

    entry = checkpoint["pyannote.audio"]["architecture"]
    module_name, class_name = str(entry["module"]), str(entry["class"])
    # A checkpoint must not choose which code is imported; like Lightning, accept other
    # modules only once the user has imported them.
    if not module_name.startswith("pyannote.audio.") and module_name not in sys.modules:
        raise EmbedderError(
            f"{label!r} names the architecture {module_name}.{class_name}, outside "
            f"pyannote.audio: import {module_name} first if you trust it"
        )
    architecture = getattr(import_module(module_name), class_name)
    if not (isinstance(architecture, type) and issubclass(architecture, Model)):
        raise EmbedderError(
            f"{label!r} names {module_name}.{class_name}, which is not a pyannote.audio Model"
        )
    return architecture


def _build_model(data: bytes, path: Path, label: str):
    """What ``Model.from_pretrained`` does with a local file, every load ``weights_only``."""
    from pyannote.audio.utils.dependencies import check_dependencies

    checkpoint = _read_checkpoint(data, path, label)
    versions = checkpoint["pyannote.audio"]["versions"]
    check_dependencies({"pyannote.audio": versions["pyannote.audio"]}, "Model")
    architecture = _architecture(checkpoint, label)

    def load(strict: bool):
        with _checkpoint_globals_allowed():
            return architecture.load_from_checkpoint(
                io.BytesIO(data), map_location=torch.device("cpu"), strict=strict,
                weights_only=True,
            )

    try:
        return load(strict=True)
    except RuntimeError as exc:
        if "loss_func" not in str(exc):
            raise
        # As from_pretrained does: weights of a training loss (ArcFace...) are not the model's.
        return load(strict=False)


def load_model(checkpoint: Path, label: str, *, origin: str) -> tuple[Any, str]:
    """The model in a local checkpoint file and the SHA-256 of the bytes it was built from.

    Each failure is said in a sentence; ``origin`` is what pyannote's telemetry (when the user
    opted in) reports, as ``from_pretrained`` would.
    """
    data = checkpoint.read_bytes()  # one read: the checksum is that of the bytes loaded
    if not data:
        raise EmbedderError(f"{label!r} is not a pyannote.audio checkpoint (empty file)")
    if not _looks_like_torch_file(data[:4]):
        raise EmbedderError(f"{label!r} is not a pyannote.audio checkpoint (not a PyTorch file)")
    _import_pyannote()
    from pyannote.audio import telemetry

    try:
        model = _build_model(data, checkpoint, label)
    except EmbedderError:
        raise
    except (KeyError, TypeError) as exc:
        raise EmbedderError(
            f"{label!r} is a PyTorch file but not a pyannote.audio checkpoint "
            f"(no {exc} entry where pyannote expects one)"
        ) from None
    except (ModuleNotFoundError, AttributeError) as exc:
        raise EmbedderError(
            f"{label!r} needs an architecture this pyannote.audio does not have ({exc}): "
            "it may need another pyannote.audio version"
        ) from None
    except Exception as exc:  # torch.load reports corrupt files with many exception types
        reason = str(exc).split(". ")[0].strip()
        raise EmbedderError(
            f"{label!r} is not a loadable pyannote.audio checkpoint "
            f"({type(exc).__name__}: {reason})"
        ) from None
    model._otel_origin = origin
    telemetry.track_model_init(model)
    return model, sha256_bytes(data)


def convert_checkpoint(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Re-save a checkpoint you trust so that it loads with ``weights_only`` (see the module).

    ``source`` is unpickled in full by pyannote.audio's ``Model.from_pretrained``: any code in
    it runs, so convert only files you trust. ``target`` gets the model's weights,
    hyper-parameters and specifications, saved the way pyannote saves a checkpoint, and is
    written only if it then loads with ``weights_only=True``.

    Example:
        >>> convert_checkpoint("epoch=12.ckpt", "models/speaker.ckpt")  # doctest: +SKIP
        PosixPath('models/speaker.ckpt')
    """
    source_path, target_path = Path(source).expanduser(), Path(target).expanduser()
    if not source_path.is_file():
        raise EmbedderError(f"no such checkpoint: {os.fspath(source)!r}")
    _import_pyannote()
    import lightning
    from pyannote.audio import Model

    _log.warning("unpickling %s in full (code in it runs), as convert_checkpoint was asked",
                 source_path)
    model = Model.from_pretrained(source_path, map_location=torch.device("cpu"))
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                  "pytorch-lightning_version": lightning.__version__}
    model.on_save_checkpoint(checkpoint)  # pyannote's section: versions, architecture, specs
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    _read_checkpoint(buffer.getvalue(), target_path, os.fspath(target))
    with atomic_path(target_path) as temporary:
        Path(temporary).write_bytes(buffer.getvalue())
    return target_path
