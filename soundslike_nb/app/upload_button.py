"""The upload button: a file chosen in the browser reaches the kernel, size-checked first.

The browser refuses a file over the limit before sending anything, and sends the rest in chunks
small enough for the Jupyter server's websocket (10 MiB a message by default), so a too-large
file gets a clear message instead of a dropped connection; the kernel checks the size again.
"""

from __future__ import annotations

from collections.abc import Callable

import anywidget
import traitlets

from ..audio import AUDIO_EXTENSIONS
from .uploads import MAX_UPLOAD_BYTES

__all__ = ["SoundUpload"]

_CHUNK_BYTES = 4 * 2**20
_ACCEPT = ",".join([*sorted(AUDIO_EXTENSIONS), "audio/*"])


class SoundUpload(anywidget.AnyWidget):
    """An upload button for one audio file; ``on_upload(callback)`` receives (name, bytes),
    ``on_reject(callback)`` (name, size) for a file over ``max_bytes`` (nothing is sent).

    Example:
        >>> upload = SoundUpload()  # doctest: +SKIP
        >>> upload.on_upload(lambda name, content: print(name, len(content)))  # doctest: +SKIP
    """

    _esm = """
    function render({ model, el }) {
      const input = document.createElement("input");
      input.type = "file";
      input.accept = model.get("accept");
      input.style.display = "none";
      const button = document.createElement("button");
      button.className = "jupyter-widgets jupyter-button widget-button soundslike-upload";
      button.textContent = model.get("description");
      const enable = () => { button.disabled = model.get("disabled"); };
      enable();
      model.on("change:disabled", enable);
      button.addEventListener("click", () => input.click());
      input.addEventListener("change", async () => {
        const file = input.files[0];
        input.value = "";
        if (!file) return;
        const id = Math.random().toString(36).slice(2);
        const about = { id, name: file.name, size: file.size };
        if (file.size > model.get("max_bytes")) {
          model.send({ event: "rejected", ...about });
          return;
        }
        button.disabled = true;
        button.textContent = "uploading " + file.name + "…";
        try {
          const data = new Uint8Array(await file.arrayBuffer());
          const chunk = model.get("chunk_bytes");
          for (let start = 0; start < data.length; start += chunk) {
            model.send({ event: "chunk", start, ...about }, undefined,
                       [data.slice(start, start + chunk)]);
          }
          model.send({ event: "done", ...about });
        } catch (error) {
          model.send({ event: "failed", ...about, reason: String(error) });
        } finally {
          enable();
          button.textContent = model.get("description");
        }
      });
      el.append(button, input);
    }
    export default { render };
    """
    description = traitlets.Unicode("Upload a sound…").tag(sync=True)
    #: A disabled button takes no file (e.g. while the model that would analyse it is missing).
    disabled = traitlets.Bool(False).tag(sync=True)
    accept = traitlets.Unicode(_ACCEPT).tag(sync=True)
    max_bytes = traitlets.Int(MAX_UPLOAD_BYTES).tag(sync=True)
    chunk_bytes = traitlets.Int(_CHUNK_BYTES).tag(sync=True)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._parts: dict[str, list[bytes]] = {}
        self._upload_callbacks: list[Callable[[str, bytes], None]] = []
        self._reject_callbacks: list[Callable[[str, int], None]] = []
        self._progress_callbacks: list[Callable[[str, int, int], None]] = []
        self._failure_callbacks: list[Callable[[str, str], None]] = []
        self.on_msg(self._handle_message)

    def on_upload(self, callback: Callable[[str, bytes], None]) -> None:
        """Call ``callback(name, content)`` for each uploaded file."""
        self._upload_callbacks.append(callback)

    def on_reject(self, callback: Callable[[str, int], None]) -> None:
        """Call ``callback(name, size)`` for a file refused for its size."""
        self._reject_callbacks.append(callback)

    def on_progress(self, callback: Callable[[str, int, int], None]) -> None:
        """Call ``callback(name, received_bytes, size_bytes)`` as a file's parts arrive (a
        large file takes seconds to reach the kernel)."""
        self._progress_callbacks.append(callback)

    def on_failure(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(name, reason)`` when the browser could not send a file."""
        self._failure_callbacks.append(callback)

    def receive(self, name: str, content: bytes) -> None:
        """Hand a file to the upload callbacks as if it had been uploaded (tests, scripts)."""
        if not self.disabled:
            self._deliver(name, content)

    def _deliver(self, name: str, content: bytes) -> None:
        if len(content) > self.max_bytes:
            for reject in self._reject_callbacks:
                reject(name, len(content))
            return
        for callback in self._upload_callbacks:
            callback(name, content)

    def _handle_message(self, _widget, content, buffers) -> None:
        event, upload_id = content.get("event"), str(content.get("id", ""))
        name, size = str(content.get("name", "")), int(content.get("size", 0))
        if event == "rejected":
            for reject in self._reject_callbacks:
                reject(name, size)
        elif event == "chunk":
            if upload_id not in self._parts:
                if self.disabled and not content.get("start"):
                    return  # disabled when it began: taken by no one (its parts neither)
                self._parts = {upload_id: []}  # a new upload drops any unfinished one
            parts = self._parts[upload_id]
            parts.append(bytes(buffers[0]) if buffers else b"")
            received = sum(map(len, parts))
            if received > self.max_bytes:  # never trust the browser's own check
                del self._parts[upload_id]
                for reject in self._reject_callbacks:
                    reject(name, size)
                return
            for progress in self._progress_callbacks:
                progress(name, received, max(size, received))
        elif event == "failed":
            self._parts.pop(upload_id, None)
            for failure in self._failure_callbacks:
                failure(name, str(content.get("reason", "unknown reason")))
        elif event == "done" and upload_id in self._parts:
            # Accepted at its first part: delivered even though receiving it disabled the button.
            self._deliver(name, b"".join(self._parts.pop(upload_id)))
