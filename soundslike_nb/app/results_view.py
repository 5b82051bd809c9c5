"""The result rows: rank, name, folder, where (a region's start), duration, similarity, a
waveform thumbnail, a player, a download and "more like this" per sound. A row that found a
region of a long file marks it on the thumbnail, plays only the region, and downloads it as its
own WAV or the whole file. Players and downloads are reused while their sound stays in the
results. The current row (the arrow keys' cursor) and the row that plays are marked with a class
each."""

from __future__ import annotations

import html
from collections import OrderedDict
from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
import pandas as pd

from ..space import ASPECT_NAMES
from .cut_media import CutPlayer, RegionDownload
from .formatting import ASPECT_LABELS, format_duration, similarity_percent
from .media import DownloadButton, LazyPlayer
from .query_region import Clip, sound_of

__all__ = ["ResultsView", "row_width", "waveform_svg"]

_CACHED_PLAYERS = 300
# Widths in pixels: fixed, so that no cell ever pushes another, and as narrow as their contents
# allow ("2 min 35 s", "100 %", "1:02:03"), so that the table with regions (758 px) sits beside
# the map (550 px) in an output 1,310 px wide: JupyterLab's in a window 1,740 px wide with the
# file browser open, 1,490 with it closed (886 px needed about 1,870 and 1,620). A longer name or
# folder is cut with an ellipsis; its tooltip holds all of it.
_RANK, _NAME, _FOLDER, _AT, _DURATION, _SIMILARITY, _OUTLINE = 28, 96, 54, 58, 70, 70, 68
_PLAYER = 116  # narrower than a player elsewhere: its <audio> controls still fit
_DOWNLOAD = 84  # one file's download button
_DOWNLOADS = 86  # a region's two ("region", "file")
_MORE = 96  # "more like this"
_MARGINS = 4 * 4  # 2 px either side of each widget of a row
_SIMILARITY_TITLE = ("similarity to the query: the weighted cosine in the library's space, "
                     "100 % = the same sound, 0 % = unrelated or opposite; the same scale at "
                     "any weighting. Hover a value for the exact cosine and each aspect's.")


class ResultsView:
    """The rows of a result table in ``box`` (a ``VBox``); ``more_like_this(sound)`` is
    called with a row's sound (its library position, or the :class:`~.query_region.Clip` of
    its region) when its button is pressed, ``played(sound, playing)`` when a row's player
    starts or stops in the browser. ``thumbnail_seconds``: how many seconds of each sound its
    thumbnail shows (to mark a region on it). ``regions``: whether results may be regions (the
    library has some): then the rows have an "at" column, and room for two downloads.

    Example:
        >>> view = ResultsView(more_like_this=print)
        >>> view.draw(None); view.box.children
        ()
    """

    def __init__(self, *, more_like_this: Callable[[int | Clip], object],
                 played: Callable[[int | Clip, bool], object] | None = None,
                 thumbnails: np.ndarray | None = None,
                 thumbnail_seconds: np.ndarray | None = None,
                 on_error: Callable[[str], object] | None = None,
                 regions: bool = False) -> None:
        self.more_like_this = more_like_this
        self.played = played
        self.on_error = on_error
        #: The library's waveform thumbnails (``Library.thumbnails``), drawn in each row.
        self.thumbnails = thumbnails
        self.thumbnail_seconds = thumbnail_seconds
        self.regions = regions
        #: The drawn rows' players, one per result row, in rank order.
        self.players: list[LazyPlayer] = []
        self._rows: list[widgets.HBox] = []
        #: Their sounds (library positions, or a :class:`Clip` for a region), in that order.
        self.positions: list[int | Clip] = []
        # Room for a region's column and its two downloads only in a library with regions.
        self.box = widgets.VBox(layout=widgets.Layout(width=f"{row_width(regions=regions)}px"))
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
        header = _row("#", "name", "folder", "at" if self.regions else None, "duration",
                      "similarity", "", [], header=True, similarity_title=_SIMILARITY_TITLE)
        rows = [header] if len(results) else []
        players, sounds = [], []
        keys = [_key(path, sound_of(position, start, end)) for path, position, start, end in zip(
            results["path"], results["position"], results["start"], results["end"])]
        visible = set(keys)
        for key, position, rank, name, folder, path, start, end, seconds, similarity, *cosines \
                in zip(keys, results["position"], results["rank"], results["name"],
                       results["folder"], results["path"], results["start"], results["end"],
                       results["duration"], results["similarity"],
                       *(results[aspect] for aspect in ASPECT_NAMES)):
            sound = sound_of(position, start, end)
            where = "" if not isinstance(sound, Clip) else (
                f" from {sound.start:.2f} to {sound.end:.2f} s")
            use = widgets.Button(description="more like this",
                                 tooltip=f"search with {name}{where}",
                                 layout=widgets.Layout(width=f"{_MORE}px"))
            use.add_class("soundslike-more")
            use.on_click(lambda _button, sound=sound: self.more_like_this(sound))
            why = " · ".join(f"{ASPECT_LABELS[aspect][0]} {cosine:.3f}"
                             for aspect, cosine in zip(ASPECT_NAMES, cosines)
                             if np.isfinite(cosine))
            player = self._cached(self._players, key,
                                  lambda _key, path=path, sound=sound: self._player(path, sound),
                                  visible)
            players.append(player)
            sounds.append(sound)
            downloads = self._cached(
                self._downloads, key,
                lambda _key, path=path, sound=sound, folder=folder: self._download(
                    path, sound, folder), visible)
            at = None if not self.regions else "" if not isinstance(sound, Clip) else _clock(
                sound.start)
            rows.append(_row(
                str(rank), name, folder, at, format_duration(seconds),
                f"{similarity_percent(similarity)} %", self._outline(sound),
                [player, downloads, use],
                at_title=where.strip() or "the whole file",
                similarity_title=f"weighted cosine {similarity:.3f} (cosine per aspect: {why})"))
        self.discard(self.box.children)
        self.box.children = rows
        self.players, self._rows = players, rows[1:]
        self.positions = sounds

    def mark(self, *, current: int | None, playing: int | Clip | str | None) -> None:
        """Mark row ``current`` (an index, or ``None``) and the row of the sound ``playing``
        (``None``: none) with the classes the style sheet outlines and tints."""
        for index, (row, position) in enumerate(zip(self._rows, self.positions)):
            for css, on in (("soundslike-current", index == current),
                            ("soundslike-playing", position == playing)):
                if on and css not in row._dom_classes:
                    row.add_class(css)
                elif not on and css in row._dom_classes:
                    row.remove_class(css)

    def _outline(self, sound: int | Clip) -> str:
        """The row's waveform thumbnail as a small inline SVG (text: nothing to load), with its
        region marked."""
        position = sound.position if isinstance(sound, Clip) else sound
        if self.thumbnails is None or not self.thumbnails[position].any():
            return ""
        marked = None
        if isinstance(sound, Clip) and self.thumbnail_seconds is not None:
            shown = float(self.thumbnail_seconds[position])
            if shown > 0:
                marked = (sound.start / shown, sound.end / shown)
        return waveform_svg(self.thumbnails[position], marked=marked)

    def _player(self, path: str, sound: int | Clip) -> LazyPlayer:
        player = (CutPlayer(path, sound.start, sound.end, width=_PLAYER)
                  if isinstance(sound, Clip) else LazyPlayer(path, width=_PLAYER))
        if self.played is not None:
            player.on_playing(lambda playing: self.played(sound, playing))
        return player

    def _download(self, path: str, sound: int | Clip, folder: str) -> widgets.Widget:
        """One button for a whole file; for a region, the region (as its own WAV) and the
        whole file."""
        if not isinstance(sound, Clip):  # as wide as a region's two: the columns align
            return _download(path, folder, layout=widgets.Layout(
                width=f"{_DOWNLOADS if self.regions else _DOWNLOAD}px"))
        return RegionDownload(path, sound.start, sound.end, on_error=self.on_error,
                              layout=widgets.Layout(width=f"{_DOWNLOADS}px"))

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


def waveform_svg(thumbnail: np.ndarray, *, width: int = 64, height: int = 20,
                 marked: tuple[float, float] | None = None) -> str:
    """A waveform thumbnail (``uint8`` peaks) drawn as mirrored bars in an inline SVG;
    ``marked``: a span as shares of its width (0 to 1), shaded behind the bars.

    Example:
        >>> waveform_svg(np.array([255, 0], np.uint8), width=2, height=4)[:38]
        "<svg width='2' height='4' viewBox='0 0"
        >>> "soundslike-region-mark" in waveform_svg(np.array([9, 9], np.uint8), marked=(0, .5))
        True
    """
    peaks = np.asarray(thumbnail, dtype=np.float64) / 255.0
    step, middle = width / len(peaks), height / 2
    bars = "".join(f"M{(index + 0.5) * step:.1f} {middle - max(peak, 0.03) * middle:.1f}"
                   f"V{middle + max(peak, 0.03) * middle:.1f}"
                   for index, peak in enumerate(peaks))
    mark = ""
    if marked is not None:
        # At least two pixels wide: a one-second event in a ten-minute take stays visible.
        left = min(max(marked[0], 0.0), 1.0) * width
        right = min(max(marked[1], 0.0), 1.0) * width
        if right - left < 2:
            left, right = max(0.0, (left + right) / 2 - 1), min(width, (left + right) / 2 + 1)
        mark = (f"<rect class='soundslike-region-mark' x='{left:.1f}' y='0' "
                f"width='{right - left:.1f}' height='{height}' fill='#e4572e' "
                f"fill-opacity='0.35' stroke='#e4572e' stroke-width='1'/>")
    return (f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
            f"class='soundslike-outline'>{mark}<path d='{bars}' stroke='#8a94a6' "
            f"stroke-width='{max(step * 0.8, 0.5):.2f}'/></svg>")


def _key(path: str, sound: int | Clip) -> str:
    """What a row's player and download are cached by: the file, and its region if any."""
    return path if not isinstance(sound, Clip) else f"{path}\n{sound.start!r}\n{sound.end!r}"


def _clock(seconds: float) -> str:
    """A region's start as a row shows it: ``12.35 s``, ``1:05.2``, ``1:02:03``.

    Example:
        >>> _clock(12.345), _clock(65.24), _clock(3723.0)
        ('12.35 s', '1:05.2', '1:02:03')
    """
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}:{rest:04.1f}"
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{int(rest):02d}"


def _row(rank: str, name: str, folder: str, at: str | None, duration: str, similarity: str,
         outline: str, extra: list, *, header: bool = False, at_title: str | None = None,
         similarity_title: str | None = None) -> widgets.HBox:
    """One row: its text cells in ONE HTML widget (a hundred rows of six widgets each took
    seconds to draw in the browser), then the player, download and "more like this"."""

    def cell(text: str, width: int, css: str = "", title: str | None = None) -> str:
        tag = "b" if header else "span"
        return (f"<{tag} class='soundslike-cell {css}' style='width: {width}px' "
                f"title='{html.escape(title or text)}'>{html.escape(text)}</{tag}>")

    # A long name or folder is cut with an ellipsis (the style sheet); its tooltip holds all.
    folder_cell = (cell(folder, _FOLDER) if header else
                   cell(folder or "(top)", _FOLDER, "soundslike-folder", _folder_text(folder)))
    text = "".join([cell(rank, _RANK, "soundslike-rank"), cell(name, _NAME, "soundslike-name"),
                    folder_cell,
                    "" if at is None else cell(at, _AT, "soundslike-at", title=at_title),
                    cell(duration, _DURATION), cell(similarity, _SIMILARITY,
                                                    title=similarity_title),
                    f"<span class='soundslike-cell' style='width: {_OUTLINE}px'>{outline}</span>"])
    width = _text_width(regions=at is not None)
    row = widgets.HBox([widgets.HTML(text, layout=widgets.Layout(width=f"{width}px")), *extra])
    row.add_class("soundslike-header" if header else "soundslike-result")
    return row


def _text_width(*, regions: bool) -> int:
    """The width of a row's text cells (with the "at" column in a library with regions)."""
    return _RANK + _NAME + _FOLDER + _DURATION + _SIMILARITY + _OUTLINE + _AT * regions


def row_width(*, regions: bool) -> int:
    """How wide the result table is, in pixels: its text, player, download(s) and "more like
    this", in a library with regions (an "at" column, two downloads) or without.

    Example:
        >>> row_width(regions=True), row_width(regions=False)
        (758, 698)
    """
    downloads = _DOWNLOADS if regions else _DOWNLOAD
    return _text_width(regions=regions) + _PLAYER + downloads + _MORE + _MARGINS


def _folder_text(folder: str) -> str:
    """``folder explosions/large``, or the library's top folder for ``""``."""
    return f"folder {folder}" if folder else "the library's top folder"


def _download(path: str, folder: str, *, layout: widgets.Layout) -> DownloadButton:
    """A download button whose tooltip also names the sound's folder."""
    button = DownloadButton(path)
    button.layout = layout
    if not button.unavailable:
        button.hint = f"{button.hint}, from {_folder_text(folder)}"
    return button
