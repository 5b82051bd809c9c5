"""The map's column takes the width left beside the results, and the map follows it.

The browser decides where the column goes: it is a flex item with a basis of
:data:`MIN_BESIDE` pixels that grows into the rest of the row, so it sits beside the results
when at least that much is left and wraps below them, at the row's full width (the map up to
:data:`MAX_WIDTH`), when less is.
Plotly's widget cannot follow its container by itself: its anywidget front end listens to no
resize (``autosize`` acts only on a window resize, and JupyterLab's file browser opening or
closing is none), so :class:`ColumnWidth`, an invisible widget in the column, watches the
column's width in the browser (a ``ResizeObserver``: window resizes, side panels, Voilà
alike) and sends it to the kernel, where :func:`map_size` turns it into the figure's width
and height.
"""

from __future__ import annotations

import anywidget
import ipywidgets as widgets
import traitlets

__all__ = ["GAP", "MAX_HEIGHT", "MAX_WIDTH", "MIN_BESIDE", "ColumnWidth", "map_column", "map_size"]

#: The narrowest map beside the results (px): below it, the map goes under them.
MIN_BESIDE = 400
#: The room between the results and the map beside them (px; none when it is below them).
GAP = 16
#: The map's height is this share of its width (a little wider than square), within
#: :data:`MIN_HEIGHT` and :data:`MAX_HEIGHT`, so that it fits a laptop's screen; and it is at
#: most :data:`MAX_WIDTH` wide, so that a wide window does not stretch the map sideways (the
#: axes have no fixed ratio) beyond 4:3.
ASPECT = 0.9
MIN_HEIGHT, MAX_HEIGHT = 340, 600
MAX_WIDTH = 800
#: What the figure leaves of its column's width: its own 2 px margin either side.
_MARGINS = 4


def map_size(column_px: float) -> tuple[int, int]:
    """The map's width and height (px) in a column ``column_px`` wide.

    Example:
        >>> map_size(404), map_size(724), map_size(1008)
        ((400, 360), (720, 600), (800, 600))
    """
    width = min(max(round(column_px) - _MARGINS, 100), MAX_WIDTH)
    return width, min(max(round(width * ASPECT), MIN_HEIGHT), MAX_HEIGHT)


class ColumnWidth(anywidget.AnyWidget):
    """Invisible: the width (px, ``width``) of the box it is in, as the browser lays it out;
    ``0`` until a view has measured it, and it is not updated while the box is hidden.
    A window resized by dragging sends one width when it settles, not one per frame."""

    _esm = """
    function render({ model, el }) {
      el.style.height = "0px";
      el.style.margin = "0px";
      el.style.alignSelf = "stretch";
      let timer = 0;
      const send = () => {
        const width = Math.round(el.getBoundingClientRect().width);
        if (width > 0 && width !== model.get("width")) {
          model.set("width", width);
          model.save_changes();
        }
      };
      const observer = new ResizeObserver(() => {
        clearTimeout(timer);
        timer = setTimeout(send, 120);
      });
      observer.observe(el);
      send();
      return () => { clearTimeout(timer); observer.disconnect(); };
    }
    export default { render };
    """
    width = traitlets.Int(0).tag(sync=True)


def map_column(children: list[widgets.Widget], *, fit) -> tuple[widgets.VBox, ColumnWidth]:
    """The map's column (``children`` above a :class:`ColumnWidth`), growing beside the results
    from :data:`MIN_BESIDE` px; ``fit(width, height)`` is called with the map's size whenever
    the column's width changes in the browser.

    Example:
        >>> column, probe = map_column([], fit=print)
        >>> probe.width = 724
        720 600
    """
    probe = ColumnWidth(layout=widgets.Layout(width="100%"))

    def measured(change: dict) -> None:
        if change["new"] > 0:
            fit(*map_size(change["new"]))

    probe.observe(measured, "width")
    column = widgets.VBox(
        [*children, probe],
        # Grows into the row's rest; its basis (not its contents: a map still drawn wider
        # overflows, hidden) decides whether it fits beside the results or wraps below them.
        layout=widgets.Layout(flex=f"1 1 {MIN_BESIDE}px", min_width=f"{MIN_BESIDE}px",
                              overflow="hidden"))
    column.add_class("soundslike-map-column")
    return column, probe
