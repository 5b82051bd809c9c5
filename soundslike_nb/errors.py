"""The one exception family of soundslike_nb.

Every error a user can cause is a :class:`SoundslikeError`; messages name the file and the value
that was wrong, so that a one-line report is enough to act on.
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "EmbedderError",
    "LibraryError",
    "ParameterError",
    "SoundslikeError",
]


class SoundslikeError(Exception):
    """Base class of every error raised on purpose by soundslike_nb."""


class AudioError(SoundslikeError):
    """An audio file (or in-memory waveform) cannot be used: missing, corrupt, empty, ..."""


class EmbedderError(SoundslikeError):
    """An embedding model cannot be found, loaded or run, or does not match a library."""


class LibraryError(SoundslikeError):
    """A library file cannot be read, written, or does not hold what it should."""


class ParameterError(SoundslikeError, ValueError):
    """An argument is out of range or of the wrong shape (``k must be >= 1, got 0``)."""
