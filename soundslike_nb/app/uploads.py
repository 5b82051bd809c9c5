"""Uploaded query files: checked before use, saved under a safe name inside one folder.

A browser sends whatever name the user's file had, or whatever a crafted request says
(``../../.bashrc``, ``/etc/passwd``, ``C:\\x``, control characters). :func:`safe_filename` keeps
only the last path component's printable characters, and :meth:`UploadFolder.save` refuses any
path that would resolve outside its folder, so an upload can never write anywhere else.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata

from ..errors import AudioError

__all__ = ["MAX_UPLOAD_BYTES", "UploadFolder", "check_upload", "safe_filename"]

#: Uploads larger than this are refused (the browser checks first, the kernel again).
MAX_UPLOAD_BYTES = 200 * 2**20
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")
_MAX_NAME_CHARS = 160


def safe_filename(name: str) -> str:
    """A file name that is safe to create in a folder: no folders, no control characters, no
    leading dots, at most 160 characters; ``upload`` when nothing is left.

    Example:
        >>> safe_filename("../../etc/passwd"), safe_filename("C:\\\\sfx\\\\door 1.wav")
        ('passwd', 'door 1.wav')
        >>> safe_filename(".."), safe_filename("kick\\x00.wav")
        ('upload', 'kick.wav')
    """
    text = unicodedata.normalize("NFC", str(name))
    last = re.split(r"[/\\]", text)[-1]
    cleaned = _UNSAFE.sub("", last).strip().lstrip(".").strip()
    if len(cleaned) > _MAX_NAME_CHARS:
        stem, extension = os.path.splitext(cleaned)
        cleaned = stem[: _MAX_NAME_CHARS - len(extension[:16])] + extension[:16]
    return cleaned or "upload"


def check_upload(name: str, content: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """Refuse an empty or too large upload (naming it); return its safe file name.

    Whether it is audio at all is for the decoder to say (an :class:`AudioError` naming it).

    Example:
        >>> check_upload("../x.wav", b"RIFF...")
        'x.wav'
    """
    safe_name = safe_filename(name)
    size = len(content)
    if size == 0:
        raise AudioError(f"{safe_name!r}: empty file (0 bytes)")
    if size > max_bytes:
        raise AudioError(f"{safe_name!r}: {_megabytes(size)} is over the upload limit of "
                         f"{_megabytes(max_bytes)}")
    return safe_name


class UploadFolder:
    """The one folder uploads are saved in (a new temporary folder unless given).

    Example:
        >>> folder = UploadFolder()
        >>> os.path.basename(folder.save("../../evil.wav", b"RIFF"))
        'evil.wav'
    """

    def __init__(self, folder: str | os.PathLike | None = None, *,
                 max_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self._folder = None if folder is None else os.path.realpath(os.fspath(folder))
        self.max_bytes = int(max_bytes)

    @property
    def folder(self) -> str:
        """The folder, created on first use."""
        if self._folder is None:
            self._folder = os.path.realpath(tempfile.mkdtemp(prefix="soundslike-uploads-"))
        os.makedirs(self._folder, exist_ok=True)
        return self._folder

    def save(self, name: str, content: bytes) -> str:
        """Write ``content`` as ``safe_filename(name)`` in the folder (``name (2).wav`` if the
        name is taken); return its path."""
        folder = self.folder
        stem, extension = os.path.splitext(safe_filename(name))
        for attempt in range(1, 10_000):
            candidate = f"{stem}{extension}" if attempt == 1 else f"{stem} ({attempt}){extension}"
            path = os.path.join(folder, candidate)
            if os.path.dirname(os.path.abspath(path)) != folder:  # safe_filename prevents it
                raise AudioError(f"{name!r}: refused, it would be saved outside {folder!r}")
            if os.path.islink(path):
                continue  # taken by a symbolic link, which might point anywhere
            try:
                # "x": never follow or replace an existing file (or a planted symbolic link).
                with open(path, "xb") as out:
                    out.write(content)
                return path
            except FileExistsError:
                continue
        raise AudioError(f"{name!r}: too many uploads with this name in {folder!r}")


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"
