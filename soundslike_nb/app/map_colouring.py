"""How the library's points on the map are coloured: by nothing (one grey), by duration (log
scale), by top-level folder or by label (the largest groups keep a colour of their own, the rest
share "other"), with a colour bar as the legend, and how opaque each is (faint outside the
duration range, fainter for a suggested label). Plain values for plotly's marker; no figure here.
"""

from __future__ import annotations

import html
from collections import Counter

import numpy as np
from plotly.colors import qualitative

from ..errors import ParameterError
from ..library import Library
from .formatting import format_duration
from .labelling import Labelling

__all__ = ["COLOUR_BY", "GREY", "MAX_FOLDER_COLOURS", "NO_LABEL", "OTHER_FOLDERS", "TOP_FOLDER",
           "categorical", "checked_colour_by", "duration_colourbar", "folder_groups",
           "folder_label", "group_colours", "hover_label", "label_groups", "marker_colours",
           "opacity"]

#: What the library points can be coloured by.
COLOUR_BY = ("none", "duration", "folder", "label")
#: At most this many colours for top-level folders; past that the smallest share "other".
MAX_FOLDER_COLOURS = 20
TOP_FOLDER, OTHER_FOLDERS = "(top)", "other"
#: The legend's group of sounds with no label and no suggestion (grey, like "other").
NO_LABEL = "(none)"
#: The library's points when coloured by nothing, and the "other" group.
GREY = "#8a94a6"
_NO_LABEL_COLOUR = "#c9ced8"
# Dark24 without its two greys (one is close to the library grey and "other").
_FOLDER_PALETTE = [colour for colour in qualitative.Dark24
                   if colour not in ("#222A2A", "#778AAE")][:MAX_FOLDER_COLOURS]
_IN_RANGE, _OUT_OF_RANGE = 0.85, 0.12
_SUGGESTED = 0.4  # a suggested label is drawn at this share of a given label's opacity


def marker_colours(colour_by: str, *, library: Library, labelling: Labelling | None,
                   durations_s: np.ndarray, folder_labels: list[str]
                   ) -> tuple[dict, np.ndarray | None]:
    """The library marker's colour properties for ``colour_by``, and which points are faded
    (a suggested label, drawn fainter than a given one; ``None``: none).

    Example:
        >>> marker_colours("duration", library=lib, labelling=None,  # doctest: +SKIP
        ...                durations_s=durations_s, folder_labels=labels)[0]["colorscale"]
        'Viridis'
    """
    if colour_by == "label":
        from ..labels import map_labels

        layer = map_labels(library, None if labelling is None else labelling.suggestions)
        codes, labels = label_groups(layer["label"].fillna("").tolist())
        return categorical(codes, labels, "label"), layer["suggested"].to_numpy(dtype=bool)
    if colour_by == "duration":
        values = np.log10(np.maximum(durations_s, 1e-3))
        low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
        return {"color": values, "colorscale": "Viridis", "cmin": low,
                "cmax": high if high > low else low + 1.0, "showscale": True,
                "colorbar": duration_colourbar(durations_s)}, None
    if colour_by == "folder":
        return categorical(*folder_groups(folder_labels), "folder"), None
    return {"color": GREY, "showscale": False}, None


def checked_colour_by(value: str) -> str:
    """``value`` if it is one of :data:`COLOUR_BY`, else a :class:`ParameterError` naming them.

    Example:
        >>> checked_colour_by("folder")
        'folder'
    """
    if value not in COLOUR_BY:
        raise ParameterError(f"colour_by must be one of {', '.join(COLOUR_BY)}; got {value!r}")
    return value


def hover_label(border: str) -> dict:
    """A hover box with a ``border`` colour; white, with dark text."""
    # White, whatever the points' colours, so that the grey folder line stays readable.
    return {"bgcolor": "white", "bordercolor": border, "font": {"color": "#1a1a1a"}}


def opacity(inside: np.ndarray, faded: np.ndarray | None = None) -> float | np.ndarray:
    """The points' opacity: faint outside the duration range (``inside`` False), fainter
    again where ``faded``; one number when all are alike.

    Example:
        >>> opacity(np.array([True, True])), opacity(np.array([True, False])).tolist()
        (0.85, [0.8500000238418579, 0.11999999731779099])
    """
    # float32: half the bytes of a library's worth of opacities, and plenty for an opacity.
    if inside.all() and (faded is None or not faded.any()):
        return _IN_RANGE
    values = np.where(inside, _IN_RANGE, _OUT_OF_RANGE).astype(np.float32)
    if faded is not None:
        values[faded] *= _SUGGESTED
    return values


def categorical(codes: np.ndarray, labels: list[str], title: str) -> dict:
    """Marker colours for sounds in groups (codes from :func:`folder_groups` or
    :func:`label_groups`): a colour bar of one band per group is the legend."""
    count = len(labels)
    by_code = group_colours(labels)[::-1]  # codes run bottom to top
    scale = [[bound / count, colour] for code, colour in enumerate(by_code)
             for bound in (code, code + 1)]
    return {"color": codes, "colorscale": scale, "cmin": -0.5, "cmax": count - 0.5,
            "showscale": True,
            "colorbar": {"title": {"text": title}, "thickness": 12,
                         "tickvals": list(range(count - 1, -1, -1)), "tickfont": {"size": 10},
                         "ticktext": [html.escape(_shortened(label)) for label in labels]}}


def label_groups(shown: list[str]) -> tuple[np.ndarray, list[str]]:
    """Each sound's group for colouring by label (``shown``: its label, own or suggested, as
    :func:`~soundslike_nb.labels.map_labels` picks it; ``""`` for none): the largest labels keep
    a colour of their own, the rest share ``other``, unlabelled sounds are :data:`NO_LABEL`.
    Returns (codes, legend labels), codes counted as :func:`folder_groups` counts them."""
    groups = [label or NO_LABEL for label in shown]
    counts = Counter(label for label in groups if label != NO_LABEL)
    largest = sorted(counts, key=lambda label: (-counts[label], label))
    named = largest[:MAX_FOLDER_COLOURS - 2]  # room for "other" and "(none)"
    legend = sorted(named)
    if len(named) < len(largest):
        legend.append(OTHER_FOLDERS)
    legend.append(NO_LABEL)
    index = {label: len(legend) - 1 - position for position, label in enumerate(legend)}
    other = index.get(OTHER_FOLDERS)
    codes = np.array([index.get(label, other) for label in groups], dtype=np.uint8)
    return codes, legend


def folder_label(folder: str) -> str:
    """A sound's folder as the hover shows it: ``voices/female``, ``(top)`` for none.

    Example:
        >>> folder_label("voices\\\\female/"), folder_label("")
        ('voices/female', '(top)')
    """
    folder = str(folder).replace("\\", "/").strip("/")
    return folder or TOP_FOLDER


def folder_groups(folder_labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """The top-level folders as a legend reads them (sorted, ``(top)`` first, ``other`` last;
    past :data:`MAX_FOLDER_COLOURS` the smallest folders are ``other``), and each sound's as a
    code: the last name is 0, the first ``len(names) - 1``, as a colour bar runs upwards."""
    tops = [label.split("/", 1)[0] for label in folder_labels]
    counts = Counter(tops)
    named = set(counts)
    if len(counts) > MAX_FOLDER_COLOURS:  # a folder called "other" joins the group
        largest = sorted((top for top in counts if top != OTHER_FOLDERS),
                         key=lambda top: (-counts[top], top))
        named = set(largest[:MAX_FOLDER_COLOURS - 1])
    labels = sorted(named, key=lambda top: (top != TOP_FOLDER, top))
    if len(named) < len(counts):
        labels.append(OTHER_FOLDERS)
    index = {label: len(labels) - 1 - position for position, label in enumerate(labels)}
    other = index.get(OTHER_FOLDERS)
    codes = np.array([index.get(top, other) for top in tops], dtype=np.uint8)
    return codes, labels


def group_colours(labels: list[str]) -> list[str]:
    """One colour per legend label: the palette's in turn, grey for ``other`` and ``(none)``."""
    palette = iter(_FOLDER_PALETTE)
    return [GREY if label == OTHER_FOLDERS else _NO_LABEL_COLOUR if label == NO_LABEL
            else next(palette) for label in labels]


def _shortened(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def duration_colourbar(durations_s: np.ndarray) -> dict:
    """Colour bar ticks in seconds on the log10 scale the points are coloured with."""
    low = float(np.log10(max(durations_s.min(), 1e-3))) if len(durations_s) else 0.0
    high = float(np.log10(max(durations_s.max(), 1e-3))) if len(durations_s) else 1.0
    ticks = np.linspace(low, high, 4) if high > low else np.array([low])
    return {"title": {"text": "duration"}, "tickvals": ticks.tolist(),
            "ticktext": [format_duration(10 ** tick) for tick in ticks], "thickness": 12}
