"""Organising a library in a real browser (JupyterLab + Chromium), as a new user would: draw a
lasso round a group of sounds on the map, call them "impacts", see suggestions on their
neighbours, accept them, search only among "impacts"; find the duplicates of a folder holding
copies of demo sounds, download the CSV and the move script, and run it into a scratch folder.

Screenshots land in ``test-artifacts/browser/organise-*.png``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from .browser import (
    ARTIFACTS,
    MARKS,
    ROOT,
    chromium_page,
    draw_lasso,
    open_notebook,
    run_all_cells,
    running_lab,
    write_app_notebook,
)

pytestmark = MARKS
DEMO = ROOT / "data" / "demo" / "kenney"
COPIED = ("hit1", "jump3")
QUERY = DEMO / "explosion1.wav"


@pytest.fixture(scope="module")
def library_file(tmp_path_factory) -> Path:
    """The demo sounds plus, of two of them, a quieter copy and a byte copy in another folder;
    built and mapped before the browser starts."""
    import soundslike_nb

    where = tmp_path_factory.mktemp("organise-library")
    folder = where / "sounds"
    shutil.copytree(DEMO, folder / "kenney")
    (folder / "copies" / "old pack").mkdir(parents=True)
    for stem in COPIED:
        data, rate = sf.read(DEMO / f"{stem}.wav", dtype="float32")
        sf.write(folder / "copies" / f"{stem} quieter.wav", 0.5 * data, rate, subtype="PCM_16")
        shutil.copy(DEMO / f"{stem}.wav", folder / "copies" / "old pack" / f"{stem} (1).wav")
    library = soundslike_nb.build_library(folder, out=where / "library.parquet",
                                          progress=False)
    library.map(progress=False)
    return where / "library.parquet"


@pytest.fixture(scope="module")
def lab(library_file, tmp_path_factory):
    root = tmp_path_factory.mktemp("organise-lab")
    write_app_notebook(root, library_file)
    with running_lab(root, log_name="organise-lab.log") as server:
        yield server


@pytest.fixture
def page(lab):
    with chromium_page(stale_shots="organise-*.png", accept_downloads=True) as page:
        yield page


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"organise-{name}.png"), full_page=False)


def test_label_with_a_lasso_and_move_duplicates(library_file, lab, page, tmp_path):
    try:
        _drive(page, *lab, library_file, tmp_path)
    except BaseException:
        _shot(page, "failure")
        raise


def _drive(page, url: str, token: str, library_file: Path, scratch: Path) -> None:
    from soundslike_nb import load_library

    page.set_default_timeout(60_000)
    open_notebook(page, url, token, "soundslike.ipynb")
    run_all_cells(page)
    app = page.locator(".soundslike-app")
    app.wait_for(timeout=150_000)
    page.locator(".soundslike-app .js-plotly-plot .scatterlayer").wait_for()
    organise = page.locator(".soundslike-organise")
    organise.scroll_into_view_if_needed()

    # (1) Lasso: the drag mode, then a loop round the left half of the map.
    labels = page.locator(".soundslike-labels")
    labels.get_by_role("button", name="lasso").click()
    plot = page.locator(".soundslike-app .js-plotly-plot .nsewdrag").first
    plot.scroll_into_view_if_needed()
    draw_lasso(page, plot, [(0.02, 0.02), (0.5, 0.02), (0.5, 0.98), (0.02, 0.98), (0.02, 0.03)])
    chosen = labels.locator(".widget-html", has_text=re.compile(r"\d+ sounds? chosen"))
    chosen.wait_for()
    count = int(re.search(r"(\d+) sounds? chosen", chosen.inner_text()).group(1))
    assert 0 < count < len(load_library(library_file))
    _shot(page, "1-lasso")

    # (2) Call them "impacts"; colour the map by label: suggestions appear, faded.
    labels.locator("input[type=text]").first.fill("impacts")
    labels.get_by_role("button", name="label them").click()
    accept = labels.get_by_role("button", name=re.compile(r"accept \d+ suggestions?"))
    page.wait_for_function(
        "() => [...document.querySelectorAll('.soundslike-labels button')].some("
        "b => /accept [1-9]\\d* suggestion/.test(b.textContent))", timeout=60_000)
    tagged = load_library(library_file).label_counts().to_dict()
    assert tagged == {"impacts": count}, tagged  # written into the library file
    colour = page.locator(".soundslike-app .widget-dropdown", has_text="colour by")
    colour.locator("select").select_option(label="label")
    page.wait_for_timeout(1500)
    _shot(page, "2-labelled-suggestions")

    # (3) Accept the suggestions above the default confidence.
    offered = int(re.search(r"accept (\d+)", accept.inner_text()).group(1))
    accept.click()
    deadline = time.monotonic() + 60
    while (after := load_library(library_file).label_counts().to_dict()) == tagged:
        assert time.monotonic() < deadline, "accepting the suggestions wrote nothing"
        time.sleep(0.5)
    assert after == {"impacts": count + offered}, (after, count, offered)

    # (4) A query, then only "impacts" among the results.
    with page.expect_file_chooser() as chooser:
        page.locator(".soundslike-upload").first.click()
    chooser.value.set_files(str(QUERY))
    page.wait_for_function(
        "document.querySelectorAll('.soundslike-app .soundslike-result').length > 0",
        timeout=120_000)
    tags_input = labels.locator(".jupyter-widget-tagsinput input, .widget-tagsinput input")
    tags_input.first.fill("impacts")
    tags_input.first.press("Enter")
    library = load_library(library_file)
    labelled = set(library.rows["name"][library.carrying("impacts")])
    page.wait_for_timeout(2000)
    names = page.locator(".soundslike-app .soundslike-result .soundslike-name").all_inner_texts()
    assert names and set(names) <= labelled, (names, labelled)
    _shot(page, "3-filtered-results")

    # (5) Duplicates: find, export the CSV and the move script, run it.
    organise.get_by_role("tab", name="duplicates").click()
    duplicates = page.locator(".soundslike-duplicates")
    duplicates.get_by_role("button", name="find duplicates").click()
    duplicates.get_by_text(re.compile(r"2 groups, 4 files to move")).wait_for(timeout=120_000)
    target = scratch / "discards"
    duplicates.locator("input[type=text]").first.fill(str(target))
    duplicates.locator("input[type=text]").first.press("Enter")
    _shot(page, "4-duplicates")
    with page.expect_download() as csv_download:
        duplicates.get_by_role("button", name="CSV").click()
    csv_text = Path(csv_download.value.path()).read_text()
    assert csv_text.count("\n") == 1 + 6 and "group" in csv_text.splitlines()[0]
    with page.expect_download() as script_download:
        duplicates.get_by_role("button", name="move script").click()
    script = scratch / "move.py"
    shutil.copy(script_download.value.path(), script)
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True, text=True)
    moved = sorted(path.name for path in target.rglob("*.wav"))
    assert len(moved) == 4, moved
    for stem in COPIED:  # one file of each group stays where it was
        remaining = [path for path in library_file.parent.joinpath("sounds").rglob(f"{stem}*")]
        assert len(remaining) == 1, remaining
