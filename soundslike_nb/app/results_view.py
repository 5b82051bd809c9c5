"""The result rows: rank, name, folder, duration, similarity, a player, a download and "more
like this" per sound. Players and downloads are reused while their sound stays in the results.
The current row (the arrow keys' cursor) and the row that plays are marked with a class each."""

from __future__ import annotations

import html
from collections import OrderedDict
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
import pandas as pd

from ..space import ASPECT_NAMES
from .formatting import ASPECT_LABELS, format_duration, similarity_percent
from .media import DownloadButton, LazyPlayer

__all__ = ["ResultsView"]

_CACHED_PLAYERS = 300
_SIMILARITY_TITLE = ("similarity to the query: the weighted cosine in the library's space, "
                     "100 % = the same sound, 0 % = unrelated or opposite; the same scale at "
                     "any weighting. Hover a value for the exact cosine and each aspect's.")


class ResultsView:
    """The rows of a result table in ``box`` (a ``VBox``); ``more_like_this(position)`` is
    called with a row's library position when its button is pressed, ``played(position,
    playing)`` when a row's player starts or stops in the browser.

    Example:
        >>> view = ResultsView(more_like_this=print)
        >>> view.draw(None); view.box.children
        ()
    """

    def __init__(self, *, more_like_this: Callable[[int], object],
                 played: Callable[[int, bool], object] | None = None,
                 thumbnails: np.ndarray | None = None) -> None:
        self.more_like_this = more_like_this
        self.played = played
        #: The library's waveform thumbnails (``Library.thumbnails``), drawn in each row.
        self.thumbnails = thumbnails
        #: The drawn rows' players, one per result row, in rank order.
        self.players: list[LazyPlayer] = []
        self._rows: list[widgets.HBox] = []
        #: Their sounds' library positions, in the same order.
        self.positions: list[int] = []
        self.box = widgets.VBox(layout=widgets.Layout(width="800px"))
        self.box.add_class("soundslike-results")
        self._players: OrderedDict[str, widgets.Widget] = OrderedDict()
        self._downloads: OrderedDict[str, DownloadButton] = OrderedDict()

    def draw(self, results: pd.DataFrame | None) -> None:
        """Show ``results`` (``AppState.results``), or nothing for ``None`` (no query)."""
        if results is None:
            self.discard(self.box.children)
            self.box.children = []
            self.players, self._rows, self.positions = [], [], []
            return
        header = _row("#", "name", "folder", "duration", "similarity", "", [], header=True,
                      similarity_title=_SIMILARITY_TITLE)
        rows = [header] if len(results) else []
        players = []
        visible = set(results["path"])
        for position, rank, name, folder, path, seconds, similarity, *cosines in zip(
                results["position"], results["rank"], results["name"], results["folder"],
                results["path"], results["duration"], results["similarity"],
                *(results[aspect] for aspect in ASPECT_NAMES)):
            use = widgets.Button(description="more like this", tooltip=f"search with {name}",
                                 layout=widgets.Layout(width="112px"))
            use.on_click(lambda _button, row=int(position): self.more_like_this(row))
            why = " · ".join(f"{ASPECT_LABELS[aspect][0]} {cosine:.3f}"
                             for aspect, cosine in zip(ASPECT_NAMES, cosines)
                             if np.isfinite(cosine))
            player = self._cached(self._players, path,
                                  lambda p, row=int(position): self._player(p, row), visible)
            players.append(player)
            rows.append(_row(
                str(rank), name, folder, format_duration(seconds),
                f"{similarity_percent(similarity)} %", self._outline(int(position)),
                [player,
                 self._cached(self._downloads, path,
                              lambda p, folder=folder: _download(p, folder), visible), use],
                similarity_title=f"weighted cosine {similarity:.3f} (cosine per aspect: {why})"))
        self.discard(self.box.children)
        self.box.children = rows
        self.players, self._rows = players, rows[1:]
        self.positions = [int(position) for position in results["position"]]

    def mark(self, *, current: int | None, playing: int | None) -> None:
        """Mark row ``current`` (an index, or ``None``) and the row of library position
        ``playing`` (``None``: none) with the classes the style sheet outlines and tints."""
        for index, (row, position) in enumerate(zip(self._rows, self.positions)):
            for css, on in (("soundslike-current", index == current),
                            ("soundslike-playing", position == playing)):
                if on and css not in row._dom_classes:
                    row.add_class(css)
                elif not on and css in row._dom_classes:
                    row.remove_class(css)

    def _outline(self, position: int) -> str:
        """The row's waveform thumbnail as a small inline SVG (text: nothing to load)."""
        if self.thumbnails is None or not self.thumbnails[position].any():
            return ""
        return waveform_svg(self.thumbnails[position])

    def _player(self, path: str, position: int) -> LazyPlayer:
        player = LazyPlayer(path)
        if self.played is not None:
            player.on_playing(lambda playing: self.played(position, playing))
        return player

    def discard(self, children) -> None:
        """Close widgets that are no longer shown (each holds a comm), except the cached players
        and downloads, which may be shown again."""
        cached = {id(widget) for widget in (*self._players.values(), *self._downloads.values())}
        for child in children:
            if id(child) in cached:
                continue
            self.discard(getattr(child, "children", ()))
            child.close()

    def _cached(self, cache: OrderedDict, path: str, make: Callable[[str], widgets.Widget],
                visible: set[str]) -> widgets.Widget:
        if path in cache:
            cache.move_to_end(path)
            return cache[path]
        cache[path] = made = make(path)
        while len(cache) > _CACHED_PLAYERS:
            oldest = next((key for key in cache if key not in visible), None)
            if oldest is None:
                break
            cache.pop(oldest).close()
        return made


def waveform_svg(thumbnail: np.ndarray, *, width: int = 64, height: int = 20) -> str:
    """A waveform thumbnail (``uint8`` peaks) drawn as mirrored bars in an inline SVG.

    Example:
        >>> waveform_svg(np.array([255, 0], np.uint8), width=2, height=4)[:38]
        "<svg width='2' height='4' viewBox='0 0"
    """
    peaks = np.asarray(thumbnail, dtype=np.float64) / 255.0
    step, middle = width / len(peaks), height / 2
    bars = "".join(f"M{(index + 0.5) * step:.1f} {middle - max(peak, 0.03) * middle:.1f}"
                   f"V{middle + max(peak, 0.03) * middle:.1f}"
                   for index, peak in enumerate(peaks))
    return (f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
            f"class='soundslike-outline'><path d='{bars}' stroke='#8a94a6' "
            f"stroke-width='{max(step * 0.8, 0.5):.2f}'/></svg>")


def _row(rank: str, name: str, folder: str, duration: str, similarity: str, outline: str,
         extra: list, *, header: bool = False,
         similarity_title: str | None = None) -> widgets.HBox:
    """One row: its text cells in ONE HTML widget (a hundred rows of six widgets each took
    seconds to draw in the browser), then the player, download and "more like this"."""

    def cell(text: str, width: int, css: str = "", title: str | None = None) -> str:
        tag = "b" if header else "span"
        return (f"<{tag} class='soundslike-cell {css}' style='width: {width}px' "
                f"title='{html.escape(title or text)}'>{html.escape(text)}</{tag}>")

    # A long folder is cut with an ellipsis (the style sheet); its tooltip holds all of it.
    folder_cell = (cell(folder, 72) if header else
                   cell(folder or "(top)", 72, "soundslike-folder", _folder_text(folder)))
    # Fixed widths that hold "10 min 59 s" and "100 %": no cell ever pushes another.
    text = "".join([cell(rank, 28, "soundslike-rank"), cell(name, 112, "soundslike-name"),
                    folder_cell,
                    cell(duration, 76), cell(similarity, 76, title=similarity_title),
                    f"<span class='soundslike-cell' style='width: 68px'>{outline}</span>"])
    row = widgets.HBox([widgets.HTML(text, layout=widgets.Layout(width="448px")), *extra])
    row.add_class("soundslike-header" if header else "soundslike-result")
    return row


def _folder_text(folder: str) -> str:
    """``folder explosions/large``, or the library's top folder for ``""``."""
    return f"folder {folder}" if folder else "the library's top folder"


def _download(path: str, folder: str) -> DownloadButton:
    """A download button whose tooltip also names the sound's folder."""
    button = DownloadButton(path)
    if not button.unavailable:
        button.hint = f"{button.hint}, from {_folder_text(folder)}"
    return button
