"""The app's "export" panel: the results and the sounds chosen on the map as CSV, JSON or a zip
of their audio, and the search itself as a session file that can be opened again.

Every download is made when its button is clicked, from what the app shows at that moment,
by the library's export functions (:mod:`soundslike_nb.exports`, :mod:`soundslike_nb.session`):
the notebook writes nothing of its own.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from collections.abc import Callable

import ipywidgets as widgets
import pandas as pd

from ..errors import ParameterError
from .labelling import Labelling
from .media import MadeDownload
from .state import AppState

__all__ = ["ExportsPanel"]


class ExportsPanel:
    """Downloads of the results (CSV, JSON, zip, session) and of the chosen sounds (CSV, zip),
    and a session file to open again.

    Example:
        >>> panel = ExportsPanel(state, labelling)  # doctest: +SKIP
        >>> panel.box  # the widget to display  # doctest: +SKIP
    """

    def __init__(self, state: AppState, labelling: Labelling, *,
                 guarded: Callable[[Callable], Callable] = lambda callback: callback) -> None:
        self.state = state
        self.labelling = labelling
        say = guarded(state.set_error)
        self.results_csv = MadeDownload("results.csv", self.results_csv_text, label="CSV",
                                        on_error=say)
        self.results_json = MadeDownload("results.json", self.results_json_text, label="JSON",
                                         on_error=say)
        self.results_zip = MadeDownload("results.zip", self.results_zip_bytes, label="zip",
                                        hint="the results' audio files in a zip, with a CSV",
                                        on_error=say)
        self.session = MadeDownload("session.json", self.session_text, label="session",
                                    hint="this search (query, k, duration, weights, results) "
                                         "to open again later", on_error=say)
        self.chosen_csv = MadeDownload("chosen.csv", self.chosen_csv_text, label="CSV",
                                       on_error=say)
        self.chosen_zip = MadeDownload("chosen.zip", self.chosen_zip_bytes, label="zip",
                                       on_error=say)
        self.open_session = widgets.FileUpload(accept=".json", multiple=False,
                                               description="open a session",
                                               layout=widgets.Layout(width="160px"))
        self.open_session.observe(guarded(self._session_uploaded), "value")
        self.messages = widgets.HTML()
        self.box = widgets.VBox([
            widgets.HBox([widgets.HTML("<b>Export</b> results&nbsp;"), self.results_csv,
                          self.results_json, self.results_zip, self.session,
                          widgets.HTML("&nbsp;chosen on the map&nbsp;"), self.chosen_csv,
                          self.chosen_zip, self.open_session],
                         layout=widgets.Layout(align_items="center", flex_flow="row wrap")),
            self.messages,
        ])
        self.box.add_class("soundslike-exports")

    # -- what is exported (also what a script or a test reads) ---------------------------------

    def results_table(self) -> pd.DataFrame:
        """The results as exported: name, path, duration, similarity, tags, licence, rank..."""
        from ..exports import export_table

        results = self.state.results
        if not len(results):
            raise ParameterError("there are no results to export: search first")
        return export_table(self.state.library, results.drop(columns=["position"],
                                                             errors="ignore"))

    def chosen_table(self) -> pd.DataFrame:
        """The sounds chosen on the map, as exported."""
        from ..exports import export_table

        if not len(self.labelling.chosen):
            raise ParameterError("no sounds are chosen: draw a lasso or a box on the map first")
        return export_table(self.state.library, self.labelling.chosen)

    def results_csv_text(self) -> str:
        from ..exports import to_csv

        return to_csv(self.results_table())

    def results_json_text(self) -> str:
        from ..exports import to_json

        return to_json(self.results_table())

    def results_zip_bytes(self) -> bytes:
        from ..exports import zip_bytes

        table = self.results_table()
        return zip_bytes(table["path"].tolist(), manifest=table)

    def chosen_csv_text(self) -> str:
        from ..exports import to_csv

        return to_csv(self.chosen_table())

    def chosen_zip_bytes(self) -> bytes:
        from ..exports import zip_bytes

        table = self.chosen_table()
        return zip_bytes(table["path"].tolist(), manifest=table)

    def session_text(self) -> str:
        """This search as a session file (:func:`~soundslike_nb.session.save_session`)."""
        from ..session import save_session

        state, query = self.state, self.state.query
        if query is None:
            raise ParameterError("there is no search to save: choose a query first")
        with tempfile.TemporaryDirectory() as scratch:
            path = save_session(os.path.join(scratch, "session.json"), query=query.path,
                                query_name=query.name, results=self.results_table(),
                                k=state.k, duration=state.duration, weights=state.weights,
                                library=state.library)
            with open(path, encoding="utf-8") as handle:
                return handle.read()

    # -- opening a session ---------------------------------------------------------------------

    def open(self, path: str | os.PathLike) -> list[str]:
        """Open a saved session: its k, duration and weights, and its query again (analysed
        anew, or the library row it was); returns one message per file moved or missing."""
        from ..session import load_session

        session = load_session(path, library=self.state.library)
        state = self.state
        state.k = session.k
        state.duration = session.duration or (None, None)
        if session.weights:
            state.set_weights(session.weights)
        messages = list(session.messages)
        if session.query and os.path.exists(session.query):
            position = state.library.row_of(session.query)
            if position is not None:
                state.set_query_row(position)
            else:
                with open(session.query, "rb") as handle:
                    state.set_query_upload(session.query_name or os.path.basename(session.query),
                                           handle.read())
        elif not any(session.query_name in message for message in messages):
            messages.append(f"the query {session.query_name!r} was not saved as a file: "
                            "upload it again")
        self.messages.value = "<br>".join(html.escape(message) for message in messages)
        return messages

    def _session_uploaded(self, change) -> None:
        uploaded = change["new"]
        if not uploaded:
            return
        item = uploaded[0]
        content = bytes(item["content"])
        try:
            json.loads(content)
        except ValueError as exc:
            raise ParameterError(f"{item['name']!r} is not a session file ({exc})") from None
        with tempfile.TemporaryDirectory() as scratch:
            path = os.path.join(scratch, os.path.basename(item["name"]) or "session.json")
            with open(path, "wb") as handle:
                handle.write(content)
            self.open(path)
