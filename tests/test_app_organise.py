"""Organising from the app, headless: the duplicates view (groups, keepers, CSV, a move script
that runs), the export panel (results, chosen sounds, a session saved and opened again), and
the app's tabs. On a small real library: demo sounds and copies of some of them."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundslike_nb import build_library
from soundslike_nb.app.duplicates_view import DuplicatesView
from soundslike_nb.app.exports_panel import ExportsPanel
from soundslike_nb.app.labelling import Labelling
from soundslike_nb.app.state import AppState
from soundslike_nb.app.uploads import UploadFolder

KENNEY = Path(__file__).resolve().parent.parent / "data" / "demo" / "kenney"
COPIED = ("hit1", "jump3")


@pytest.fixture(scope="module")
def library(tmp_path_factory, aisfx):
    """Twelve demo sounds, and of two of them a quieter copy and a copy named like a formula in
    a folder whose name a shell would misread (``$(x) -n``)."""
    root = tmp_path_factory.mktemp("organise") / "sounds"
    (root / "copies" / "$(x) -n").mkdir(parents=True)
    others = [path for path in sorted(KENNEY.glob("*.wav")) if path.stem not in COPIED][:10]
    for source in [*others, *(KENNEY / f"{stem}.wav" for stem in COPIED)]:
        shutil.copy(source, root / source.name)
    for stem in COPIED:
        data, rate = sf.read(KENNEY / f"{stem}.wav", dtype="float32")
        sf.write(root / "copies" / f"{stem} quieter.wav", 0.5 * data, rate, subtype="PCM_16")
        shutil.copy(KENNEY / f"{stem}.wav", root / "copies" / "$(x) -n" / f"=cmd {stem}.wav")
    return build_library(root, out=root.parent / "library.parquet", embedder=aisfx,
                         progress=False)


def test_duplicates_are_grouped_kept_and_moved_by_the_script(library, tmp_path):
    view = DuplicatesView(library)
    with pytest.raises(Exception, match="find duplicates"):
        view.csv_text()
    groups = view.find()
    assert groups["group"].nunique() == len(COPIED)
    same = library.duplicates().reset_index(drop=True)  # the library's own call, as the view's
    assert same[["group", "keep", "path"]].equals(groups[["group", "keep", "path"]])
    for stem in COPIED:
        members = groups[groups["path"].str.contains(stem)]
        assert len(members) == 3 and members["keep"].sum() == 1
    assert "2 groups, 4 files to move" in view.summary.value
    assert len(view.list.children) == 2 + len(groups)  # a heading per group, a row per file

    # The user keeps another file of the first group.
    first = groups[groups["group"] == 1]
    other = int(first.index[~first["keep"].astype(bool)][0])
    view.keep(other)
    assert bool(view.groups.at[other, "keep"]) and view.groups.loc[first.index, "keep"].sum() == 1
    assert view.groups.at[other, "reason"] == "kept: chosen by you"

    text = view.csv_text()
    assert "'=cmd" in text and "\n=cmd" not in text  # a formula-looking name is neutralised
    with pytest.raises(Exception, match="folder"):
        view.script_text()
    view.target.value = str(tmp_path / "discards")
    script = tmp_path / "move.py"
    script.write_text(view.script_text())
    dry = subprocess.run([sys.executable, str(script), "--dry-run"], capture_output=True,
                         text=True, check=True)
    assert all(Path(path).exists() for path in view.groups["path"])  # a dry run moves nothing
    assert dry.stdout.strip()
    subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    for _, member in view.groups.iterrows():
        assert Path(member["path"]).exists() == bool(member["keep"])
    moved = sorted(path.name for path in (tmp_path / "discards").rglob("*.wav"))
    assert len(moved) == 4 and any(name.startswith("=cmd") for name in moved)


def test_results_and_chosen_sounds_export_and_a_session_reopens(library, tmp_path):
    state = AppState(library, relative_duration=None, uploads=UploadFolder(tmp_path / "up"))
    labelling = Labelling(library)
    panel = ExportsPanel(state, labelling)
    with pytest.raises(Exception, match="no results"):
        panel.results_csv_text()
    state.k = 5
    state.set_weights({"timbre": 0.5})
    state.set_query_row(0)
    table = panel.results_table()
    assert list(table["path"]) == list(state.results["path"])
    assert {"name", "path", "duration", "similarity", "rank"} <= set(table.columns)
    assert "position" not in table.columns
    records = json.loads(panel.results_json_text())
    assert [record["path"] for record in records] == list(state.results["path"])
    with zipfile.ZipFile(io.BytesIO(panel.results_zip_bytes())) as archive:
        names = archive.namelist()
    assert len([name for name in names if name.endswith(".wav")]) == 5
    assert not any(name.startswith("/") or ".." in name for name in names)

    with pytest.raises(Exception, match="no sounds are chosen"):
        panel.chosen_csv_text()
    labelling.choose([1, 2, 3])
    assert panel.chosen_csv_text().count("\n") == 4  # a header and three sounds

    session = tmp_path / "search.json"
    session.write_text(panel.session_text())
    reopened = AppState(library, relative_duration=None, uploads=UploadFolder(tmp_path / "u2"))
    messages = ExportsPanel(reopened, Labelling(library)).open(session)
    assert messages == []
    assert reopened.k == 5 and reopened.weights["timbre"] == 0.5
    assert reopened.query.position == 0
    assert list(reopened.results["path"]) == list(state.results["path"])

    document = json.loads(session.read_text())
    document["results"][0]["path"] = str(tmp_path / "gone.wav")
    session.write_text(json.dumps(document))
    messages = ExportsPanel(reopened, Labelling(library)).open(session)
    assert len(messages) == 1 and "gone.wav" in messages[0] and "missing" in messages[0]


def test_the_app_has_the_organise_tabs(library, tmp_path):
    from soundslike_nb.app.widgets import App

    app = App(library, show_map=False, upload_folder=str(tmp_path / "up"))
    assert list(app.organise.titles) == ["labels", "export", "duplicates"]
    assert app.labels_panel.drag.disabled  # no map: nothing to draw a lasso on
    app.state.set_query_row(2)
    app.labelling.choose(np.arange(3))
    app.labels_panel.label.value = "impacts"
    app.labels_panel.apply.click()
    assert library.label_counts().to_dict() == {"impacts": 3}
    app.labels_panel.filter.value = ["impacts"]
    assert set(app.state.results["position"]) <= {0, 1}  # row 2 is the query
    library.untag(np.arange(3), "impacts")  # the module's library is shared
