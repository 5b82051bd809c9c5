"""Keys inside the app belong to the app: JupyterLab's notebook shortcuts never see them; in
the results, the arrow keys, Space and Enter audition sounds."""

from __future__ import annotations

from collections.abc import Callable

import anywidget
import traitlets

__all__ = ["RESULT_KEYS", "KeyGuard", "ResultKeys"]

#: The keys :class:`ResultKeys` sends.
RESULT_KEYS = ("ArrowDown", "ArrowUp", "Space", "Enter")


class KeyGuard(anywidget.AnyWidget):
    """Invisible: keeps the keys pressed inside the app (the element of class ``root_class``
    around it) from reaching JupyterLab's shortcuts.

    In command mode a notebook acts on single keys wherever the focus is (``x`` cuts the cell,
    even with the focus on a button of this app). JupyterLab listens for them on the document
    as they bubble up, so the app's root element stops them on the way; keys with Ctrl or Cmd
    (save, copy) go through. Its ``data-lm-suppress-shortcuts`` attribute alone would not do:
    Lumino honours it only between the focused element and the element a shortcut's selector
    matches, and the command-mode selectors (``... :focus``) match the focused element itself.
    """

    _esm = """
    function render({ model, el }) {
      el.style.display = "none";
      const stop = (event) => {
        if (!event.ctrlKey && !event.metaKey) event.stopPropagation();
      };
      let root = null, frame = 0, tries = 0;
      const attach = () => {
        root = el.closest("." + model.get("root_class"));
        if (root) {
          root.setAttribute("data-lm-suppress-shortcuts", "true");
          root.addEventListener("keydown", stop);
        } else if (tries++ < 600) {  // not in the page yet: try again at the next frame
          frame = requestAnimationFrame(attach);
        }
      };
      attach();
      return () => {
        cancelAnimationFrame(frame);
        if (root) root.removeEventListener("keydown", stop);
      };
    }
    export default { render };
    """
    root_class = traitlets.Unicode("soundslike-app").tag(sync=True)


class ResultKeys(anywidget.AnyWidget):
    """Invisible: auditioning keys and clicks on the result rows (the element of class
    ``target_class`` within the app's root), sent to the kernel as ``on_key(key)`` and
    ``on_row_click(index)``; the kernel moves the state and the rows follow it.

    ArrowDown / ArrowUp move the current row, Space plays or stops it, Enter makes it the
    query. The results element listens before the app's root (where :class:`KeyGuard` stops
    the rest), so these keys never reach JupyterLab; Space and Enter on a button or a player
    keep their own meaning. A click on a row, outside its buttons and player, sends its index.
    ``current`` (the current row, ``-1`` for none) is drawn by the kernel as a class on the row;
    here it only scrolls that row into view.
    """

    _esm = """
    const KEYS = ["ArrowDown", "ArrowUp", " ", "Enter"];
    const CONTROLS = "button, input, select, textarea, audio, a";
    function render({ model, el }) {
      el.style.display = "none";
      let box = null, frame = 0, tries = 0;
      const rows = () => [...box.querySelectorAll(".soundslike-result")];
      const keydown = (event) => {
        if (event.ctrlKey || event.metaKey || event.altKey || !KEYS.includes(event.key)) return;
        const onControl = event.target.closest && event.target.closest(CONTROLS);
        if (onControl && (event.key === " " || event.key === "Enter" ||
                          onControl.matches("input, select, textarea"))) return;
        event.preventDefault();  // no page scroll, no button press
        event.stopPropagation();  // and no JupyterLab shortcut
        model.send({ event: "key", key: event.key === " " ? "Space" : event.key });
      };
      const click = (event) => {
        if (event.target.closest(CONTROLS)) return;
        const row = event.target.closest(".soundslike-result");
        if (!row) return;
        box.focus({ preventScroll: true });  // so that the keys work next
        model.send({ event: "click", index: rows().indexOf(row) });
      };
      const scroll = () => requestAnimationFrame(() => {
        const row = box && box.querySelector(".soundslike-current");
        if (row) row.scrollIntoView({ block: "nearest" });
      });
      const attach = () => {
        const root = el.closest("." + model.get("root_class"));
        box = root && root.querySelector("." + model.get("target_class"));
        if (box) {
          box.tabIndex = 0;
          box.addEventListener("keydown", keydown);
          box.addEventListener("click", click);
        } else if (tries++ < 600) {  // not in the page yet: try again at the next frame
          frame = requestAnimationFrame(attach);
        }
      };
      attach();
      model.on("change:current", scroll);
      return () => {
        cancelAnimationFrame(frame);
        model.off("change:current", scroll);
        if (box) {
          box.removeEventListener("keydown", keydown);
          box.removeEventListener("click", click);
        }
      };
    }
    export default { render };
    """
    root_class = traitlets.Unicode("soundslike-app").tag(sync=True)
    target_class = traitlets.Unicode("soundslike-results").tag(sync=True)
    current = traitlets.Int(-1).tag(sync=True)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._key_callbacks: list[Callable[[str], None]] = []
        self._click_callbacks: list[Callable[[int], None]] = []
        self.on_msg(self._handle_message)

    def on_key(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(key)`` for ``"ArrowDown"``, ``"ArrowUp"``, ``"Space"``, ``"Enter"``."""
        self._key_callbacks.append(callback)

    def on_row_click(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(index)`` with the index of a clicked result row (0: the first)."""
        self._click_callbacks.append(callback)

    def _handle_message(self, _widget, content, _buffers) -> None:
        if content.get("event") == "key" and content.get("key") in RESULT_KEYS:
            for callback in self._key_callbacks:
                callback(content["key"])
        elif (content.get("event") == "click" and isinstance(content.get("index"), int)
              and content["index"] >= 0):
            for callback in self._click_callbacks:
                callback(content["index"])

