"""The search's controls, bound to an :class:`AppState`: k, the duration range (a log-scale
slider and typed bounds in seconds), "similar length" (results from a quarter to four times the
query's length), one slider per aspect weight with "default weights", and, in a library with
regions, "per file" (at most that many results from one file). They write to the state and
redraw from it; what they permit is the state's to check.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from ..errors import SoundslikeError
from ..space import ASPECT_NAMES, DEFAULT_WEIGHTS
from .formatting import ASPECT_LABELS, DurationScale, format_duration
from .search_state import DEFAULT_RELATIVE_DURATION
from .state import AppState
from .state_values import K_MAX

__all__ = ["SearchControls"]


class SearchControls:
    """The controls in two rows (``rows``: k, duration and similar length; the weights and
    per file), to lay out in the app.

    Args:
        state: the app state they write to and draw.
        guarded: wraps each callback from the browser (errors become messages).
        relative_factor: the factor "similar length" sets when ticked (the state's, when it
            has one).

    Example:
        >>> controls = SearchControls(state, guarded=app._guarded)  # doctest: +SKIP
        >>> controls.k_slider.value = 5; state.k  # doctest: +SKIP
        5
    """

    def __init__(self, state: AppState, *, guarded: Callable[[Callable], Callable],
                 relative_factor: float = DEFAULT_RELATIVE_DURATION) -> None:
        self.state = state
        library = state.library
        self._relative_factor = state.relative_duration or relative_factor
        self._syncing = False
        self.k_slider = widgets.IntSlider(value=state.k, min=1, max=K_MAX, description="k",
                                          continuous_update=False,
                                          layout=widgets.Layout(width="340px"))
        self.k_slider.observe(guarded(lambda change: setattr(state, "k", change["new"])),
                              "value")
        # With regions, one long take could fill the list: at most this many results per file.
        self.per_file = widgets.BoundedIntText(
            value=state.per_file, min=1, max=K_MAX, description="per file",
            tooltip="at most this many results from one file (the file and its moments)",
            style={"description_width": "initial"}, layout=widgets.Layout(width="120px"))
        self.per_file.add_class("soundslike-per-file")
        self.per_file.observe(guarded(
            lambda change: setattr(state, "per_file", change["new"])), "value")
        self.scale = DurationScale.of(library.rows["duration"])
        self.range_slider = widgets.FloatRangeSlider(
            value=self.scale.to_positions(state.duration), min=self.scale.low,
            max=self.scale.high, step=self.scale.step, readout=False, continuous_update=False,
            description="duration", layout=widgets.Layout(width="340px"))
        # Typed bounds: the slider's handles cannot be pulled apart when they are close.
        self.min_duration = widgets.Text(placeholder="min s", continuous_update=False,
                                         tooltip="shortest result in seconds (empty: no limit)",
                                         layout=widgets.Layout(width="64px"))
        self.max_duration = widgets.Text(placeholder="max s", continuous_update=False,
                                         tooltip="longest result in seconds (empty: no limit)",
                                         layout=widgets.Layout(width="64px"))
        for entry in (self.min_duration, self.max_duration):
            entry.add_class("soundslike-duration-entry")
            entry.observe(guarded(self._bound_typed), "value")
        self.range_label = widgets.HTML(layout=widgets.Layout(width="150px"))
        self.range_label.add_class("soundslike-label")
        self.range_slider.observe(guarded(self._range_moved), "value")
        self.similar_length = widgets.Checkbox(value=state.relative_duration is not None,
                                               indent=False, layout=widgets.Layout(width="190px"))
        self.similar_length.observe(guarded(self._similar_length_ticked), "value")
        self.window_label = widgets.HTML(layout=widgets.Layout(width="130px"))
        self.window_label.add_class("soundslike-label")
        self.weight_sliders: dict[str, widgets.FloatSlider] = {}
        for aspect in ASPECT_NAMES:
            label, tooltip = ASPECT_LABELS[aspect]
            slider = widgets.FloatSlider(
                value=state.weights[aspect], min=0.0, max=1.0, step=0.05, description=label,
                tooltip=tooltip, continuous_update=False, readout_format=".2f",
                disabled=aspect != "cnn" and not state.has_aspects,
                style={"description_width": "68px"}, layout=widgets.Layout(width="260px"))
            slider.observe(guarded(
                lambda change, aspect=aspect: state.set_weights({aspect: change["new"]})), "value")
            self.weight_sliders[aspect] = slider
        self.reset_weights = widgets.Button(description="default weights",
                                            tooltip=_default_weights_text(),
                                            layout=widgets.Layout(width="130px"))
        self.reset_weights.on_click(guarded(lambda _button: state.set_weights(DEFAULT_WEIGHTS)))
        has_regions = len(library.regions) > 0
        self.rows = [
            widgets.HBox([self.k_slider, self.range_slider, self.min_duration,
                          widgets.HTML("&nbsp;&ndash;&nbsp;"), self.max_duration,
                          widgets.HTML("&nbsp;s&nbsp;"), self.range_label,
                          self.similar_length, self.window_label],
                         layout=widgets.Layout(align_items="center", flex_flow="row wrap")),
            widgets.HBox([*self.weight_sliders.values(), self.reset_weights,
                          *([self.per_file] if has_regions else [])],
                         layout=widgets.Layout(align_items="center", flex_flow="row wrap")),
        ]

    # -- from the state ----------------------------------------------------------------------

    def update(self, changed: frozenset[str]) -> None:
        """Redraw what ``changed`` (the state's field names) affects."""
        if "duration" in changed:
            self._draw_duration()
        if changed & {"duration", "query", "relative_duration"}:
            self._draw_window()
        if changed & {"weights", "error"}:  # a refused weight springs back
            for aspect, slider in self.weight_sliders.items():
                slider.value = self.state.weights[aspect]
        if "busy" in changed:
            self._draw_busy()

    def _draw_busy(self) -> None:
        """While an upload is analysed, the controls that would search are disabled."""
        busy = bool(self.state.busy)
        for control in (self.k_slider, self.range_slider, self.similar_length,
                        self.reset_weights, self.per_file):
            control.disabled = busy
        for aspect, slider in self.weight_sliders.items():
            slider.disabled = busy or (aspect != "cnn" and not self.state.has_aspects)

    def _draw_duration(self) -> None:
        """The slider, the typed bounds and the label, from the state's duration range."""
        low, high = self.state.duration
        durations_s = self.state.library.rows["duration"]
        shortest = durations_s.min() if low is None and len(durations_s) else low
        longest = durations_s.max() if high is None and len(durations_s) else high
        self.range_label.value = f"{format_duration(shortest)} to {format_duration(longest)}"
        self._syncing = True
        try:
            if self.scale.to_range(self.range_slider.value) != (low, high):
                self.range_slider.value = self.scale.to_positions((low, high))
            self.min_duration.value = "" if low is None else f"{low:g}"
            self.max_duration.value = "" if high is None else f"{high:g}"
        finally:
            self._syncing = False

    def _draw_window(self) -> None:
        state = self.state
        self._relative_factor = state.relative_duration or self._relative_factor
        factor = f"{self._relative_factor:g}"
        self.similar_length.description = (
            f"similar length (÷{factor} … \N{MULTIPLICATION SIGN}{factor})")
        self.similar_length.tooltip = (
            f"results last from the query's length ÷{factor} to \N{MULTIPLICATION SIGN}{factor},"
            " within the duration range; untick for any length")
        self.similar_length.value = state.relative_duration is not None
        window = state.duration_window
        if window is not None:
            text = f"{format_duration(window[0])} \N{EN DASH} {format_duration(window[1])}"
        elif state.relative_duration is not None and state.query is not None:
            text = "<small>(the query's length is unknown: any length)</small>"
        else:
            text = ""
        self.window_label.value = text

    # -- from the browser --------------------------------------------------------------------

    def _range_moved(self, change) -> None:
        if not self._syncing:
            self.state.duration = self.scale.to_range(change["new"])

    def _bound_typed(self, _change) -> None:
        """A typed bound (seconds; empty for no limit) sets the duration range; a value that is
        not seconds is said, and the entries show the range again."""
        if self._syncing:
            return
        bounds = []
        for entry, end in ((self.min_duration, "minimum"), (self.max_duration, "maximum")):
            text = entry.value.strip().removesuffix("s").strip()
            try:
                bounds.append(float(text) if text else None)
            except ValueError:
                self._draw_duration()
                raise SoundslikeError(f"duration {end} must be seconds (e.g. 0.5) or empty for "
                                      f"no limit, got {entry.value!r}") from None
        try:
            self.state.duration = tuple(bounds)
        finally:
            self._draw_duration()

    def _similar_length_ticked(self, change) -> None:
        self.state.relative_duration = self._relative_factor if change["new"] else None


def _default_weights_text() -> str:
    """``overall 1, timbre 0.1, ...`` from the defaults themselves (never copied by hand)."""
    values = ", ".join(f"{ASPECT_LABELS[aspect][0]} {DEFAULT_WEIGHTS[aspect]:g}"
                       for aspect in ASPECT_NAMES)
    return f"{values} (chosen by measurement)"
