"""The app's "duplicates" view: groups of near-identical sounds with players, which file of each
group to keep, and the exports that act on it (a CSV, and a script that moves the others).

The groups are the library's (:func:`~soundslike_nb.duplicates.find_duplicates`: found through
the vectors, confirmed on the audio, a suggested keeper with its reason); this view only lets
the user hear them and change which file is kept. Nothing is moved or deleted from here: the
move script does that when the user runs it.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable

import ipywidgets as widgets
import pandas as pd

from ..errors import ParameterError
from ..library import Library
from .formatting import format_duration
from .media import LazyPlayer, MadeDownload

__all__ = ["DuplicatesView"]

#: Groups drawn at once (the largest first); the exports always cover every group.
GROUPS_SHOWN = 50


class DuplicatesView:
    """Find the library's near-duplicates, hear them, choose the keepers, export.

    Example:
        >>> view = DuplicatesView(lib)  # doctest: +SKIP
        >>> view.find(); view.groups[["group", "keep", "path"]]  # doctest: +SKIP
    """

    def __init__(self, library: Library, *,
                 guarded: Callable[[Callable], Callable] = lambda callback: callback) -> None:
        self.library = library
        #: find_duplicates' table with ``keep`` as the user set it; ``None`` before a search.
        self.groups: pd.DataFrame | None = None
        self._guarded = guarded
        self.find_button = widgets.Button(description="find duplicates",
                                          tooltip="near-identical sounds: found by their "
                                                  "vectors, confirmed on their audio",
                                          layout=widgets.Layout(width="140px"))
        self.find_button.on_click(guarded(lambda _button: self.find()))
        self.summary = widgets.HTML()
        self.target = widgets.Text(placeholder="folder for the discards, e.g. ~/discards",
                                   layout=widgets.Layout(width="280px"))
        self.csv = MadeDownload("duplicates.csv", self.csv_text, label="CSV",
                                on_error=self._say)
        self.script = MadeDownload("move_duplicates.py", self.script_text, label="move script",
                                   hint="a Python script that moves every file not kept into "
                                        "the folder (never deletes; --dry-run to see first)",
                                   on_error=self._say)
        self.csv.layout.visibility = self.script.layout.visibility = "hidden"
        self.list = widgets.VBox()
        self.message = widgets.HTML()
        self.message.add_class("soundslike-error")
        self.box = widgets.VBox([
            widgets.HBox([widgets.HTML("<b>Duplicates</b>&nbsp;"), self.find_button,
                          self.summary], layout=widgets.Layout(align_items="center")),
            widgets.HBox([self.target, self.csv, self.script],
                         layout=widgets.Layout(align_items="center")),
            self.message,
            self.list,
        ])
        self.box.add_class("soundslike-duplicates")

    def find(self) -> pd.DataFrame:
        """Look for the groups (this decodes the candidates: seconds to minutes) and draw them."""
        from ..duplicates import find_duplicates

        self.summary.value = "&nbsp;<i class='soundslike-busy'>looking…</i>"
        self.find_button.disabled = True
        try:
            self.groups = find_duplicates(self.library).reset_index(drop=True)
        finally:
            self.find_button.disabled = False
        self._draw()
        return self.groups

    def keep(self, index: int) -> None:
        """Keep row ``index`` of :attr:`groups` instead of its group's current keeper."""
        groups = self._require_groups()
        members = groups["group"] == groups.at[index, "group"]
        if not groups.at[index, "keep"]:
            groups.loc[members & groups["keep"].astype(bool), "reason"] = (
                "to move: you chose another file of its group to keep")
            groups.loc[members, "keep"] = False
            groups.at[index, "keep"] = True
            groups.at[index, "reason"] = "kept: chosen by you"
        self._draw()

    def csv_text(self) -> str:
        """The groups as a CSV (one row per file: group, keep, path, reason...)."""
        from ..exports import export_table, to_csv

        return to_csv(export_table(self.library, self._require_groups()))

    def script_text(self) -> str:
        """The move script for the files not kept, into the folder typed beside it."""
        from ..move_script import move_script

        target = self.target.value.strip()
        if not target:
            raise ParameterError("type the folder the discards go to first")
        return move_script(self._require_groups(), to=os.path.expanduser(target))

    def _require_groups(self) -> pd.DataFrame:
        if self.groups is None:
            raise ParameterError("press 'find duplicates' first")
        return self.groups

    def _say(self, message: str) -> None:
        self.message.value = html.escape(message)

    def _draw(self) -> None:
        groups = self._require_groups()
        self.message.value = ""
        count = int(groups["group"].nunique()) if len(groups) else 0
        discards = int((~groups["keep"].astype(bool)).sum()) if len(groups) else 0
        self.summary.value = (f"&nbsp;{count} group{'s' if count != 1 else ''}, {discards} "
                              f"file{'s' if discards != 1 else ''} to move"
                              if count else "&nbsp;no near-duplicates found")
        visibility = "visible" if count else "hidden"
        self.csv.layout.visibility = self.script.layout.visibility = visibility
        rows: list[widgets.Widget] = []
        for group, members in list(groups.groupby("group", sort=True))[:GROUPS_SHOWN]:
            rows.append(widgets.HTML(f"<b>group {group}</b> · {len(members)} files"))
            for index, member in members.iterrows():
                rows.append(self._row(index, member))
        if count > GROUPS_SHOWN:
            rows.append(widgets.HTML(f"<i>{count - GROUPS_SHOWN} more groups in the CSV and "
                                     "the move script</i>"))
        self.list.children = rows

    def _row(self, index: int, member: pd.Series) -> widgets.Widget:
        kept = bool(member["keep"])
        keep = widgets.ToggleButton(value=kept, description="keep" if kept else "move",
                                    button_style="success" if kept else "",
                                    tooltip="the file this group keeps" if kept else
                                    "click to keep this file instead",
                                    layout=widgets.Layout(width="64px"))
        # Pressing the keeper again changes nothing: a group keeps one file (redrawn as it was).
        keep.observe(self._guarded(lambda _change, index=index: self.keep(index)), "value")
        details = " · ".join(str(part) for part in (
            member.get("format", ""), format_duration(float(member["duration"]))
            if pd.notna(member.get("duration")) else "") if part)
        path = html.escape(member["path"])
        text = widgets.HTML(
            f"<span class='soundslike-cell' style='width:360px' title='{path}'>"
            f"{html.escape(str(member.get('name', os.path.basename(member['path']))))} "
            f"<small class='soundslike-folder'>{html.escape(details)}</small><br>"
            f"<small>{html.escape(str(member['reason']))}</small></span>")
        return widgets.HBox([keep, text, LazyPlayer(member["path"])],
                            layout=widgets.Layout(align_items="center"))
