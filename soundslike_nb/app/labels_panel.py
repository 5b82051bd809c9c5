"""The app's "labels" panel: choose sounds on the map, label them, take the suggested labels,
and search only among sounds with a label.

Widgets bound to a :class:`~.labelling.Labelling` (what is chosen, the suggestions) and to the
:class:`~.state.AppState`'s label filter; they hold no logic of their own.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as widgets

from .labelling import Labelling
from .map_view import MapView
from .state import AppState

__all__ = ["LabelsPanel"]

_DRAG_OPTIONS = [("move", "pan"), ("lasso", "lasso"), ("box", "select")]


class LabelsPanel:
    """Label the sounds chosen on ``map_view`` (box or lasso), accept suggestions, filter.

    ``guarded`` wraps every callback (the app's: an error becomes a message, not a traceback).

    Example:
        >>> panel = LabelsPanel(state, labelling, map_view)  # doctest: +SKIP
        >>> panel.box  # the widget to display  # doctest: +SKIP
    """

    def __init__(self, state: AppState, labelling: Labelling, map_view: MapView | None, *,
                 guarded: Callable[[Callable], Callable] = lambda callback: callback) -> None:
        self.state = state
        self.labelling = labelling
        self.map_view = map_view
        self.drag = widgets.ToggleButtons(
            options=_DRAG_OPTIONS, value="pan", description="drag on the map",
            tooltips=["drag moves the map", "draw round sounds to choose them",
                      "draw a box round sounds to choose them"],
            style={"description_width": "initial", "button_width": "64px"},
            disabled=map_view is None)
        self.drag.observe(guarded(self._drag_changed), "value")
        self.chosen = widgets.HTML()
        self.label = widgets.Combobox(placeholder="label, e.g. impacts", ensure_option=False,
                                      layout=widgets.Layout(width="200px"))
        self.apply = widgets.Button(description="label them", button_style="primary",
                                    layout=widgets.Layout(width="110px"))
        self.apply.on_click(guarded(lambda _button: labelling.label_chosen(self.label.value)))
        self.remove = widgets.Button(description="remove label",
                                     tooltip="take this label off the chosen sounds",
                                     layout=widgets.Layout(width="110px"))
        self.remove.on_click(guarded(lambda _button: labelling.unlabel_chosen(self.label.value)))
        self.confidence = widgets.FloatSlider(
            value=labelling.min_confidence, min=0.0, max=1.0, step=0.05,
            description="suggestions from", readout_format=".0%", continuous_update=False,
            style={"description_width": "initial"}, layout=widgets.Layout(width="300px"))
        self.confidence.observe(
            guarded(lambda change: setattr(labelling, "min_confidence", change["new"])), "value")
        self.accept = widgets.Button(layout=widgets.Layout(width="auto", min_width="190px"))
        self.accept.on_click(guarded(lambda _button: labelling.accept()))
        self.suggested = widgets.HTML()
        self.filter = widgets.TagsInput(allowed_tags=[], allow_duplicates=False,
                                        placeholder="only sounds labelled…",
                                        layout=widgets.Layout(width="360px"))
        self.filter.observe(guarded(self._filter_changed), "value")
        self.message = widgets.HTML()
        self.message.add_class("soundslike-error")
        self.box = widgets.VBox([
            widgets.HTML("<b>Labels</b> <small>choose sounds on the map with the lasso or a "
                         "box, name them; unlabelled neighbours get suggestions</small>"),
            widgets.HBox([self.drag, self.chosen], layout=widgets.Layout(align_items="center")),
            widgets.HBox([self.label, self.apply, self.remove],
                         layout=widgets.Layout(align_items="center")),
            widgets.HBox([self.confidence, self.accept, self.suggested],
                         layout=widgets.Layout(align_items="center", flex_flow="row wrap")),
            widgets.HBox([widgets.HTML("search&nbsp;"), self.filter],
                         layout=widgets.Layout(align_items="center")),
            self.message,
        ])
        self.box.add_class("soundslike-labels")
        labelling.observe(self.update)
        state.observe(self._state_changed)
        self.update(frozenset({"chosen", "tags", "suggestions", "error"}))

    def update(self, changed: frozenset[str]) -> None:
        """Redraw what ``changed`` (the labelling's field names) affects."""
        labelling = self.labelling
        if "chosen" in changed:
            count = len(labelling.chosen)
            self.chosen.value = (f"&nbsp;<b>{count}</b> sound{'s' if count != 1 else ''} "
                                 "chosen" if count else "&nbsp;<i>none chosen</i>")
            self.apply.disabled = self.remove.disabled = not count
        if "tags" in changed:
            labels = [str(label) for label in labelling.labels.index]
            self.label.options = labels
            self.filter.allowed_tags = labels
            kept = [label for label in self.filter.value if label in labels]
            if kept != list(self.filter.value):
                self.filter.value = kept
        if changed & {"suggestions", "tags"}:
            confident = len(labelling.confident())
            total = len(labelling.suggestions)
            plural = "s" if confident != 1 else ""
            self.accept.description = f"accept {confident} suggestion{plural}"
            self.accept.disabled = not confident
            self.suggested.value = (f"&nbsp;<small>{total} unlabelled sound"
                                    f"{'s' if total != 1 else ''} with a suggestion</small>"
                                    if total else "")
        if "error" in changed:
            self.message.value = html.escape(labelling.error)
        if "busy" in changed:
            busy = bool(labelling.busy)
            self.apply.disabled = self.remove.disabled = busy or not len(labelling.chosen)
            self.accept.disabled = busy or not len(labelling.confident())
            self.suggested.value = (f"&nbsp;<i class='soundslike-busy'>"
                                    f"{html.escape(labelling.busy)}</i>" if busy
                                    else self.suggested.value)

    def _state_changed(self, changed: frozenset[str]) -> None:
        if "labels" in changed and list(self.filter.value) != list(self.state.label_filter):
            self.filter.value = list(self.state.label_filter)

    def _drag_changed(self, change) -> None:
        if self.map_view is not None:
            self.map_view.dragmode = change["new"]

    def _filter_changed(self, change) -> None:
        self.state.label_filter = tuple(change["new"])
