"""Audio input: every sound that enters soundslike_nb passes through here.

``info`` reads a file's header (no decoding); ``load`` decodes it to mono float32 at the rate an
embedder needs, streaming block by block so that a long file never sits in memory at its original
rate and channel count. Both share one validator, and every failure is an :class:`AudioError`
whose message names the file and the cause.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
from dataclasses import dataclass
from typing import BinaryIO, Union

import numpy as np

from .errors import AudioError

__all__ = ["AUDIO_EXTENSIONS", "AudioInfo", "AudioSource", "info", "load", "validate_waveform"]

#: File name extensions treated as audio when a folder is scanned (lower case).
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".bwf", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc"}
)

#: What ``info``/``load`` accept: a path, or the bytes (or a binary stream) of an uploaded file.
AudioSource = Union[str, os.PathLike, bytes, BinaryIO]  # noqa: UP007 - a runtime alias

# libsndfile's log line for a WAV whose data chunk is shorter than its header says.
_TRUNCATED = re.compile(r"^data\s*:\s*(?P<declared>\d+)\s*\(should be (?P<actual>\d+)\)", re.M)
_BLOCK_FRAMES = 1 << 17  # ~3 s at 44.1 kHz: bounds memory while decoding long files


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says about it.

    Example:
        >>> info("data/demo/kenney/coin1.wav").duration  # doctest: +SKIP
        0.41
    """

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str
    #: Why decoding stopped before the end (``load(..., keep_partial=True)``), else ``None``:
    #: ``frames`` then counts what was read.
    fault: str | None = None

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


def _label(source: AudioSource, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return "<in-memory audio>"


def _check_path(path: str) -> None:
    """Reject what is not a readable, non-empty regular file, saying why."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise AudioError(f"{path!r}: broken symbolic link") from None
        raise AudioError(f"{path!r}: no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AudioError(f"{path!r}: symbolic link loop") from None
        raise AudioError(f"{path!r}: cannot access ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{path!r}: is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{path!r}: not a regular file")
    if st.st_size == 0:
        raise AudioError(f"{path!r}: empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path!r}: permission denied")


def _open(source: AudioSource, label: str):
    import soundfile as sf

    if isinstance(source, (str, os.PathLike)):
        source = os.fspath(source)
        _check_path(source)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise AudioError(f"{label!r}: empty file (0 bytes)")
        source = io.BytesIO(source)
    try:
        return sf.SoundFile(source)
    except PermissionError:
        raise AudioError(f"{label!r}: permission denied") from None
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        reason = str(exc).split(": ", 1)[-1] if isinstance(exc, sf.LibsndfileError) else str(exc)
        raise AudioError(f"{label!r}: not a readable audio file ({reason.strip()})") from None
    except OSError as exc:
        raise AudioError(f"{label!r}: cannot read ({exc.strerror or exc})") from None


def _info_of(handle, label: str) -> AudioInfo:
    if handle.samplerate <= 0:
        raise AudioError(f"{label!r}: invalid sample rate {handle.samplerate}")
    if handle.channels <= 0:
        raise AudioError(f"{label!r}: invalid channel count {handle.channels}")
    if handle.frames <= 0:
        raise AudioError(f"{label!r}: 0 samples (no audio data)")
    truncated = _TRUNCATED.search(handle.extra_info or "")
    if truncated and int(truncated["declared"]) > int(truncated["actual"]) > 0:
        raise AudioError(
            f"{label!r}: truncated file (its header promises {truncated['declared']} bytes "
            f"of audio, the file holds {truncated['actual']})"
        )
    return AudioInfo(
        path=label,
        sample_rate=int(handle.samplerate),
        channels=int(handle.channels),
        frames=int(handle.frames),
        format=str(handle.format),
        subtype=str(handle.subtype),
    )


def info(source: AudioSource, *, name: str | None = None) -> AudioInfo:
    """Read a file's header: sample rate, channels, frames, duration; decodes nothing.

    Args:
        source: a path, or the bytes / binary stream of an audio file.
        name: how to call the source in error messages (defaults to the path).

    Example:
        >>> meta = info("data/demo/kenney/coin1.wav")  # doctest: +SKIP
        >>> meta.sample_rate, meta.channels  # doctest: +SKIP
        (44100, 1)
    """
    label = _label(source, name)
    with _open(source, label) as handle:
        return _info_of(handle, label)


def load(
    source: AudioSource,
    *,
    sample_rate: int | None = None,
    max_duration: float | None = None,
    name: str | None = None,
    keep_partial: bool = False,
    start: float = 0.0,
) -> tuple[np.ndarray, AudioInfo]:
    """Decode to a mono float32 waveform, resampled (soxr, high quality) when asked.

    Channels are averaged. Decoding streams in blocks: memory holds only the mono output.

    Args:
        source: a path, or the bytes / binary stream of an audio file.
        sample_rate: the output rate; ``None`` keeps the file's own.
        max_duration: decode at most this many seconds from the start (``None``: all).
        name: how to call the source in error messages (defaults to the path).
        keep_partial: a file that fails part way through decoding gives what was read
            before the fault, and ``info.fault`` says where and why (else it is an
            :class:`AudioError`).
        start: begin this many seconds into the file (a seek: what comes before is not
            decoded); ``max_duration`` then counts from there. ``info`` still describes the
            whole file.

    Returns:
        ``(waveform, info)`` where ``info`` describes the file as stored.

    Example:
        >>> wave, meta = load("data/demo/kenney/coin1.wav", sample_rate=44100)  # doctest: +SKIP
        >>> wave.dtype, wave.ndim  # doctest: +SKIP
        (dtype('float32'), 1)
    """
    import soundfile as sf

    label = _label(source, name)
    if sample_rate is not None and sample_rate <= 0:
        raise AudioError(f"{label!r}: requested sample rate must be > 0, got {sample_rate}")
    with _open(source, label) as handle:
        meta = _info_of(handle, label)
        first = min(max(0, round(start * meta.sample_rate)), meta.frames)
        if first:
            try:
                handle.seek(first)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioError(f"{label!r}: cannot seek to {start:g} s ({exc})") from None
        limit = meta.frames - first
        if max_duration is not None:
            limit = min(limit, max(1, round(max_duration * meta.sample_rate)))
        resampler = None
        if sample_rate is not None and sample_rate != meta.sample_rate:
            import soxr

            resampler = soxr.ResampleStream(
                meta.sample_rate, sample_rate, 1, dtype="float32", quality="HQ"
            )
        pieces: list[np.ndarray] = []
        decoded = 0
        fault = None
        try:
            while decoded < limit:
                block = handle.read(
                    min(_BLOCK_FRAMES, limit - decoded), dtype="float32", always_2d=True
                )
                if len(block) == 0:
                    break
                decoded += len(block)
                mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
                if not np.isfinite(mono).all():
                    raise AudioError(f"{label!r}: contains NaN or infinite samples")
                pieces.append(resampler.resample_chunk(mono) if resampler else mono.copy())
        except sf.LibsndfileError as exc:
            if not (keep_partial and decoded):
                raise AudioError(f"{label!r}: decoding failed after {decoded} frames ({exc})"
                                 ) from None
            fault = (f"decoding failed at {decoded / meta.sample_rate:.2f} s "
                     f"({str(exc).strip()}); what was read before is kept")
        if decoded == 0:
            raise AudioError(f"{label!r}: 0 samples could be decoded (truncated or corrupt)")
        if resampler is not None:
            pieces.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    waveform = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    if decoded < limit:
        # The header promised more than the file holds, or decoding failed part way: keep
        # what is there, but say so by recording the true length, so the duration column is
        # never a fiction.
        meta = AudioInfo(meta.path, meta.sample_rate, meta.channels, first + decoded,
                         meta.format, meta.subtype, fault)
    return np.ascontiguousarray(waveform, dtype=np.float32), meta


def validate_waveform(samples: np.ndarray, *, name: str = "<waveform>") -> np.ndarray:
    """Check an in-memory waveform the way ``load`` checks a file; return it as mono float32.

    Accepts shape ``(time,)`` or ``(channels, time)``; channels are averaged.

    Example:
        >>> validate_waveform(np.zeros((2, 10))).shape
        (10,)
    """
    array = np.asarray(samples)
    if array.dtype.kind not in "fiu":
        raise AudioError(f"{name!r}: samples must be numbers, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array.mean(axis=0)
    elif array.ndim != 1:
        raise AudioError(f"{name!r}: expected shape (time,) or (channels, time), got {array.shape}")
    if array.size == 0:
        raise AudioError(f"{name!r}: 0 samples")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise AudioError(f"{name!r}: contains NaN or infinite samples")
    return array
