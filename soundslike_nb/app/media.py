"""Players and downloads: the pieces that move audio bytes to the browser.

Players send nothing until played; then the file itself (sound effects are small) up to
:data:`MAX_INLINE_BYTES`, or for a larger file or a format browsers cannot play, a compressed
preview of its first minute, which says so. Downloads send nothing until clicked, then the
original file under its own name. Both work the same in JupyterLab and Voilà, since nothing
depends on the server's /files/ route. (Regions of files: ``cut_media.py``; uploads:
``upload_button.py``.)
"""

from __future__ import annotations

import html
import io
import mimetypes
import os
from collections.abc import Callable
from dataclasses import dataclass

import anywidget
import traitlets

from ..audio import load
from ..errors import AudioError, SoundslikeError

__all__ = ["MAX_INLINE_BYTES", "PLAYER_WIDTH", "DownloadButton", "LazyPlayer", "MadeDownload",
           "player_source"]

#: Files up to this size are played as they are; larger ones get a preview.
MAX_INLINE_BYTES = 8 * 2**20
#: Files up to this size can be downloaded through the notebook.
MAX_DOWNLOAD_BYTES = 512 * 2**20
PREVIEW_SECONDS = 60.0
#: A player's width in pixels (a result row's is narrower: ``LazyPlayer(width=...)``).
PLAYER_WIDTH = 136
#: Extensions every current browser plays, and the MIME subtype ipywidgets.Audio announces.
_BROWSER_FORMATS = {".wav": "wav", ".wave": "wav", ".mp3": "mpeg", ".ogg": "ogg", ".oga": "ogg",
                    ".opus": "ogg", ".flac": "flac"}
_MIME = {"wav": "audio/wav", "mpeg": "audio/mpeg", "ogg": "audio/ogg", "flac": "audio/flac"}
_PREVIEW_RATE = 44100
# libsndfile's Vorbis writer puts about 4 bytes a frame on the stack for each write call, so one
# 48 s write overflows an 8 MiB stack and kills the kernel (python-soundfile #396, #426,
# libsndfile #1095). 2**14 frames (64 KiB) fit even a 128 KiB thread stack (musl's default).
_VORBIS_BLOCK_FRAMES = 2**14


@dataclass(frozen=True)
class PlayerSource:
    """What a player plays: bytes, their format for ``ipywidgets.Audio``, and a note for people
    when it is not the file itself (``"preview: first 60 s"``)."""

    data: bytes
    format: str
    note: str = ""


def player_source(path: str, *, data: bytes | None = None,
                  max_inline_bytes: int = MAX_INLINE_BYTES) -> PlayerSource:
    """The bytes to play for a sound file (``data`` when its bytes are already in memory).

    Example:
        >>> player_source("data/demo/kenney/coin1.wav").format  # doctest: +SKIP
        'wav'
    """
    extension = os.path.splitext(path)[1].lower()
    size = len(data) if data is not None else os.path.getsize(path)
    if extension in _BROWSER_FORMATS and size <= max_inline_bytes:
        if data is None:
            with open(path, "rb") as handle:
                data = handle.read()
        return PlayerSource(bytes(data), _BROWSER_FORMATS[extension])
    return _preview(path if data is None else data, name=os.path.basename(path),
                    reason="large file" if size > max_inline_bytes else "converted for the browser")


def _preview(source, *, name: str, reason: str) -> PlayerSource:
    """The first minute, mono, as Ogg Vorbis (about 10 kB a second)."""
    import soundfile as sf

    waveform, info = load(source, sample_rate=_PREVIEW_RATE, max_duration=PREVIEW_SECONDS,
                          name=name)
    out = io.BytesIO()
    with sf.SoundFile(out, "w", _PREVIEW_RATE, 1, format="OGG", subtype="VORBIS") as encoder:
        for start in range(0, len(waveform), _VORBIS_BLOCK_FRAMES):
            encoder.write(waveform[start:start + _VORBIS_BLOCK_FRAMES])
    cut = info.duration > PREVIEW_SECONDS
    note = f"{reason}: preview of the first {PREVIEW_SECONDS:.0f} s" if cut else reason
    return PlayerSource(out.getvalue(), "ogg", note)


class LazyPlayer(anywidget.AnyWidget):
    """A player whose audio travels only when it is played: drawing a hundred result rows sends
    no audio at all. The first press of play asks the kernel for the bytes (the file, or its
    preview: :func:`player_source`), then the browser's own ``<audio>`` controls take over.
    ``autoplay`` asks for the bytes as soon as the player is shown, and plays them.

    ``playing`` is synced both ways: the browser sets it when its ``<audio>`` starts, pauses or
    ends; the kernel sets it to start (fetching the bytes first if needed) or stop playback.
    ``on_playing(callback)`` hears ``callback(playing)`` for the browser's changes only. A
    player that starts pauses every other player of the app at once (one sound at a time).

    Example:
        >>> LazyPlayer("/sfx/door 1.wav").filename
        'door 1.wav'
    """

    _esm = """
    function render({ model, el }) {
      const box = document.createElement("div");
      box.className = ("soundslike-player " + model.get("css_class")).trim();
      const width = model.get("player_width") + "px";
      box.style.cssText = "width: " + width + "; height: 32px; display: flex; align-items: center;";
      const button = document.createElement("button");
      button.className = "jupyter-widgets jupyter-button widget-button soundslike-play";
      button.style.minWidth = "84px";  // "download" fits; a longer label widens it
      button.textContent = "▶ play";
      button.title = model.get("hint");
      const audio = document.createElement("audio");
      audio.preload = "none";
      audio.autoplay = model.get("autoplay");
      audio.style.cssText = "width: " + width + "; height: 32px; display: none;";
      let url = null;
      let asked = false;
      let wanted = model.get("autoplay");  // play the bytes when they come
      const ask = () => {
        if (asked) return;
        asked = true;
        button.textContent = "loading…";
        button.disabled = true;
        model.send({ event: "load" });
      };
      const report = (playing) => {
        if (model.get("playing") === playing) return;
        try {
          model.set("playing", playing);
          model.save_changes();
        } catch (error) {}  // the widget was closed while its sound stopped
      };
      audio.addEventListener("play", () => {
        // One sound at a time: the others in the app (or the page) pause now, not after a
        // round trip through the kernel.
        const root = el.closest(".soundslike-app") || document;
        for (const other of root.querySelectorAll("audio")) if (other !== audio) other.pause();
        report(true);
      });
      audio.addEventListener("pause", () => report(false));
      audio.addEventListener("ended", () => report(false));
      const follow = () => {  // the kernel asks to play or stop
        if (model.get("playing")) {
          wanted = true;
          if (!url) { ask(); return; }
          if (audio.ended) audio.currentTime = 0;
          audio.play().catch(() => {});
        } else {
          wanted = false;
          if (url) audio.pause();
        }
      };
      model.on("change:playing", follow);
      const receive = (msg, buffers) => {
        if (msg.event === "error") {
          button.textContent = "cannot play";
          button.title = msg.message;
          return;
        }
        if (msg.event !== "audio") return;
        url = URL.createObjectURL(new Blob([buffers[0]], { type: msg.mime }));
        audio.src = url;
        audio.controls = true;
        audio.title = msg.note || model.get("hint");
        audio.style.display = "";
        button.remove();
        // A browser that blocks autoplay leaves the controls.
        if (wanted) audio.play().catch(() => {});
      };
      button.addEventListener("click", () => { wanted = true; ask(); });
      model.on("msg:custom", receive);
      box.append(button, audio);
      el.appendChild(box);
      if (model.get("autoplay")) ask();
      return () => {
        model.off("msg:custom", receive);
        model.off("change:playing", follow);
        audio.pause();
        if (url) URL.revokeObjectURL(url);
      };
    }
    export default { render };
    """
    filename = traitlets.Unicode().tag(sync=True)
    hint = traitlets.Unicode().tag(sync=True)
    autoplay = traitlets.Bool(False).tag(sync=True)
    css_class = traitlets.Unicode().tag(sync=True)  # on the player's own element
    #: Its width in pixels, the button's and then the browser's ``<audio>`` controls'.
    player_width = traitlets.Int(PLAYER_WIDTH).tag(sync=True)
    #: Whether its sound plays (synced both ways; see the class docstring).
    playing = traitlets.Bool(False).tag(sync=True)

    def __init__(self, path: str, *, autoplay: bool = False, css_class: str = "",
                 width: int = PLAYER_WIDTH,
                 max_inline_bytes: int = MAX_INLINE_BYTES) -> None:
        filename = os.path.basename(path)
        super().__init__(filename=filename, autoplay=autoplay, hint=f"play {filename}",
                         css_class=css_class, player_width=width)
        self.path = path
        self.max_inline_bytes = max_inline_bytes
        self._playing_callbacks: list[Callable[[bool], None]] = []
        self._setting = False
        self.on_msg(self._handle_message)
        self.observe(self._on_playing_trait, "playing")

    def on_playing(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(playing)`` when the browser's player starts, pauses or ends."""
        self._playing_callbacks.append(callback)

    def set_playing(self, playing: bool) -> None:
        """Start or stop playback from the kernel (the ``on_playing`` callbacks hear nothing)."""
        self._setting = True
        try:
            self.playing = bool(playing)
        finally:
            self._setting = False

    def _on_playing_trait(self, change) -> None:
        if self._setting:
            return
        for callback in list(self._playing_callbacks):
            callback(change["new"])

    def source(self) -> PlayerSource:
        """What the player plays (read when it is first played)."""
        return player_source(self.path, max_inline_bytes=self.max_inline_bytes)

    def _handle_message(self, _widget, content, _buffers) -> None:
        if content.get("event") != "load":
            return
        try:
            source = self.source()
        except (AudioError, OSError) as exc:
            message = exc.strerror if isinstance(exc, OSError) else str(exc)
            self.send({"event": "error", "message": f"cannot play: {message}"})
            return
        self.send({"event": "audio", "mime": _MIME[source.format], "note": source.note},
                  [source.data])


#: The browser side of a download: bytes sent from the kernel saved under a file name.
SAVE_BLOB_JS = """
const saveBlob = (blob, filename) => {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
};
"""


class _Download(anywidget.AnyWidget):
    """A button that saves bytes in the browser under ``filename``; the bytes are made and
    travel only when it is clicked (:meth:`_bytes`)."""

    _esm = SAVE_BLOB_JS + """
    function render({ model, el }) {
      const button = document.createElement("button");
      button.className = "jupyter-widgets jupyter-button widget-button soundslike-download";
      button.style.minWidth = "84px";  // "download" fits; a longer label widens it
      button.textContent = model.get("label");
      button.title = model.get("hint");
      button.disabled = model.get("unavailable");
      let pending = false;
      button.addEventListener("click", () => {
        pending = true;
        model.send({ event: "download" });
      });
      const receive = (msg, buffers) => {
        if (!pending || msg.event !== "file") return;
        pending = false;
        saveBlob(new Blob([buffers[0]], { type: msg.mime }), msg.filename);
      };
      model.on("msg:custom", receive);
      el.appendChild(button);
      return () => model.off("msg:custom", receive);
    }
    export default { render };
    """
    filename = traitlets.Unicode().tag(sync=True)
    label = traitlets.Unicode("download").tag(sync=True)
    hint = traitlets.Unicode().tag(sync=True)  # the title; "tooltip" is a DOMWidget trait
    unavailable = traitlets.Bool(False).tag(sync=True)

    def _bytes(self) -> bytes:
        raise NotImplementedError

    def _handle_message(self, _widget, content, _buffers) -> None:
        if content.get("event") != "download" or self.unavailable:
            return
        data = self._bytes()
        mime = mimetypes.guess_type(self.filename)[0] or "application/octet-stream"
        self.send({"event": "file", "filename": self.filename, "mime": mime}, [data])


def download_size(path: str, *, max_bytes: int = MAX_DOWNLOAD_BYTES) -> tuple[int, str]:
    """A file's size and why it cannot be downloaded through the notebook (``""``: it can).

    Example:
        >>> download_size("/no/such.wav")
        (0, 'cannot read such.wav (No such file or directory)')
    """
    filename = os.path.basename(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        return 0, f"cannot read {filename} ({exc.strerror})"
    if size > max_bytes:
        return size, (f"{filename} is {size / 2**20:.0f} MB, too large to download through the "
                      f"notebook: it is at {path}")
    return size, ""


class DownloadButton(_Download):
    """A button that downloads a file under its own name; the bytes travel only when clicked.

    Example:
        >>> DownloadButton("/sfx/door 1.wav").filename  # doctest: +SKIP
        'door 1.wav'
    """

    def __init__(self, path: str, *, label: str = "download",
                 max_bytes: int = MAX_DOWNLOAD_BYTES) -> None:
        filename = os.path.basename(path)
        size, problem = download_size(path, max_bytes=max_bytes)
        super().__init__(filename=filename, label=label, unavailable=bool(problem),
                         hint=problem or f"download {filename} ({size / 1024:.0f} kB)")
        self.path = path
        self.on_msg(self._handle_message)

    def _bytes(self) -> bytes:
        with open(self.path, "rb") as handle:
            return handle.read()


class MadeDownload(_Download):
    """A button that downloads what ``make()`` returns when clicked (an export made from the
    app's state at that moment), under ``filename``. ``on_error(message)`` hears a
    :class:`~soundslike_nb.errors.SoundslikeError` that ``make`` raised (nothing is saved).

    Example:
        >>> MadeDownload("results.csv", lambda: b"name,path", label="CSV").label
        'CSV'
    """

    def __init__(self, filename: str, make: Callable[[], bytes | str], *, label: str,
                 hint: str = "", on_error: Callable[[str], None] | None = None) -> None:
        super().__init__(filename=filename, label=label, hint=hint or f"download {filename}")
        self.make = make
        self.on_error = on_error
        self.on_msg(self._handle_message)

    def _bytes(self) -> bytes:
        data = self.make()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)

    def _handle_message(self, widget, content, buffers) -> None:
        try:
            super()._handle_message(widget, content, buffers)
        except SoundslikeError as exc:
            if self.on_error is None:
                raise
            self.on_error(str(exc))


def _escape(text: str) -> str:
    return html.escape(str(text), quote=True)
