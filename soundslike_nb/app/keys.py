"""Keys inside the app belong to the app: JupyterLab's notebook shortcuts never see them."""

from __future__ import annotations

import anywidget
import traitlets

__all__ = ["KeyGuard"]


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
