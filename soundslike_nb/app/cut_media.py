"""A region of a file in the browser: a player of just that span, and downloads of it as its own
WAV or of the whole file. The cut (:func:`~soundslike_nb.cuts.cut_wav`: the file's rate, channels
and sample format) is made only when it is played or downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import anywidget
import traitlets

from ..cuts import cut_name, cut_wav
from ..errors import AudioError, SoundslikeError
from .media import (
    MAX_DOWNLOAD_BYTES,
    SAVE_BLOB_JS,
    LazyPlayer,
    PlayerSource,
    download_size,
    player_source,
)

__all__ = ["CutPlayer", "RegionDownload"]


class CutPlayer(LazyPlayer):
    """A player of ``start`` to ``end`` seconds of a file: the cut is made when it is first
    played, and plays as a file of its own would (:class:`~.media.LazyPlayer`).

    Example:
        >>> CutPlayer("/sfx/rain.wav", 12.345, 13.1).filename
        'rain_12.35-13.10.wav'
    """

    def __init__(self, path: str, start: float, end: float, **options) -> None:
        super().__init__(path, **options)
        self.start, self.end = float(start), float(end)
        self.filename = cut_name(path, self.start, self.end)
        self.hint = f"play {os.path.basename(path)} from {self.start:.2f} to {self.end:.2f} s"

    def source(self) -> PlayerSource:
        try:
            data = cut_wav(self.path, self.start, self.end)
        except SoundslikeError as exc:  # the player says "cannot play" and why
            raise AudioError(str(exc)) from None
        return player_source(self.filename, data=data, max_inline_bytes=self.max_inline_bytes)


class RegionDownload(anywidget.AnyWidget):
    """Two buttons: "region" saves ``start`` to ``end`` seconds of ``path`` as its own WAV
    (``<stem>_<start>-<end>.wav``), "file" the whole file under its own name. Nothing travels
    until one is clicked. ``on_error(message)`` hears a cut that failed (nothing is saved).

    Example:
        >>> RegionDownload("/sfx/rain.wav", 1, 2.5).region_name
        'rain_1.00-2.50.wav'
    """

    _esm = SAVE_BLOB_JS + """
    function render({ model, el }) {
      const box = document.createElement("div");
      box.style.cssText = "display: flex; gap: 2px;";
      let pending = null;
      const button = (part, label, title, css, width) => {
        const made = document.createElement("button");
        made.className = "jupyter-widgets jupyter-button widget-button " + css;
        made.style.cssText = "min-width: " + width + "; width: " + width + "; padding: 0 4px;";
        made.textContent = label;
        made.title = title;
        made.addEventListener("click", () => {
          pending = part;
          model.send({ event: "download", part });
        });
        box.appendChild(made);
        return made;
      };
      // As narrow as their labels allow: a result row with a region must fit beside the map.
      button("region", "region", model.get("region_hint"), "soundslike-download-region", "52px");
      const file = button("file", "file", model.get("file_hint"),
                          "soundslike-download soundslike-download-file", "32px");
      file.disabled = model.get("file_unavailable");
      const receive = (msg, buffers) => {
        if (msg.event !== "file" || msg.part !== pending) return;
        pending = null;
        saveBlob(new Blob([buffers[0]], { type: "audio/wav" }), msg.filename);
      };
      model.on("msg:custom", receive);
      el.appendChild(box);
      return () => model.off("msg:custom", receive);
    }
    export default { render };
    """
    region_name = traitlets.Unicode().tag(sync=True)
    file_name = traitlets.Unicode().tag(sync=True)
    region_hint = traitlets.Unicode().tag(sync=True)
    file_hint = traitlets.Unicode().tag(sync=True)
    file_unavailable = traitlets.Bool(False).tag(sync=True)

    def __init__(self, path: str, start: float, end: float, *,
                 on_error: Callable[[str], object] | None = None,
                 max_bytes: int = MAX_DOWNLOAD_BYTES, **options) -> None:
        start, end = float(start), float(end)
        name, filename = cut_name(path, start, end), os.path.basename(path)
        size, problem = download_size(path, max_bytes=max_bytes)
        super().__init__(
            region_name=name, file_name=filename, file_unavailable=bool(problem),
            region_hint=f"download {start:.2f}-{end:.2f} s of {filename} as {name}",
            file_hint=problem or f"download all of {filename} ({size / 1024:.0f} kB)",
            **options)
        self.path, self.start, self.end = path, start, end
        self.on_error = on_error
        self.on_msg(self._handle_message)

    def content(self, part: str) -> tuple[str, bytes]:
        """The file name and bytes that ``part`` (``"region"`` or ``"file"``) saves."""
        if part == "region":
            return self.region_name, cut_wav(self.path, self.start, self.end)
        with open(self.path, "rb") as handle:
            return self.file_name, handle.read()

    def _handle_message(self, _widget, content, _buffers) -> None:
        part = content.get("part")
        if content.get("event") != "download" or part not in ("region", "file") or (
                part == "file" and self.file_unavailable):
            return
        try:
            filename, data = self.content(part)
        except (SoundslikeError, OSError) as exc:
            message = f"{self.file_name}: {exc.strerror}" if isinstance(exc, OSError) else str(exc)
            if self.on_error is None:
                raise
            self.on_error(message)
            return
        self.send({"event": "file", "part": part, "filename": filename}, [data])
