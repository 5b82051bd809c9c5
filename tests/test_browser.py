"""The notebook in a real browser: JupyterLab started here, driven by Playwright with Chromium.

Screenshots of each step land in ``test-artifacts/browser/``. Skipped, saying why, where Debian's
Chromium (``/usr/bin/chromium``) or the playwright package is missing (``.ci/run`` installs it).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .browser import ARTIFACTS, MARKS, ROOT, chromium_page, run_all_cells, running_lab

QUERY_SOUND = ROOT / "data" / "demo" / "kenney" / "explosion1.wav"
pytestmark = MARKS


@pytest.fixture(scope="module")
def demo_ready():
    """The demo library and its map, built before the browser starts, so that running the
    notebook in the page takes seconds, not the first build's minute."""
    from soundslike_nb.app import open_library

    library = open_library(ROOT / "data" / "demo.parquet", folders=[ROOT / "data" / "demo"],
                           progress=False)
    library.map(progress=False)
    return library


@pytest.fixture(scope="module")
def lab(demo_ready):
    """JupyterLab serving the repository: ``(url, token)``; stopped afterwards."""
    with running_lab(ROOT) as server:
        yield server


@pytest.fixture
def page(lab):
    with chromium_page(stale_shots="[!r]*.png", accept_downloads=True) as page:
        yield page


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def _result_count(page) -> int:
    return page.locator(".soundslike-app .soundslike-result").count()


def test_notebook_in_jupyterlab(lab, page):
    try:
        _drive(page, *lab)
    except BaseException:
        _shot(page, "failure")  # what the page showed when the test gave up
        raise


def _drive(page, url: str, token: str) -> None:
    page.set_default_timeout(60_000)
    page.goto(f"{url}/lab/tree/notebooks/soundslike.ipynb?reset&token={token}")
    page.locator(".jp-Notebook").wait_for()
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=90_000)
    page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).wait_for(timeout=90_000)

    run_all_cells(page)
    app = page.locator(".soundslike-app")
    app.wait_for(timeout=150_000)
    app.scroll_into_view_if_needed()
    page.locator(".soundslike-app .js-plotly-plot .scatterlayer").wait_for()
    _shot(page, "1-app-shown")

    # Upload a demo sound through the upload button's file chooser.
    with page.expect_file_chooser() as chooser:
        page.locator(".soundslike-upload").click()
    chooser.value.set_files(str(QUERY_SOUND))
    page.wait_for_function("document.querySelectorAll('.soundslike-result').length == 10")
    rows = page.locator(".soundslike-app .soundslike-result")
    assert rows.count() == 10
    assert rows.locator("audio").count() == 10, "each result row has a player"
    assert rows.locator(".soundslike-download").count() == 10
    assert page.locator(".soundslike-query-player audio, audio.soundslike-query-player").count()
    assert QUERY_SOUND.name in page.locator(".soundslike-app").inner_text()
    ranks = rows.locator(".soundslike-rank").all_inner_texts()
    assert ranks == [str(rank) for rank in range(1, 11)]
    assert page.locator(".soundslike-error").count() == 0 or not page.locator(
        ".soundslike-error").first.inner_text().strip()
    _shot(page, "2-results-after-upload")

    # The download is the original file, under its own name.
    first_name = rows.first.locator(".soundslike-download").get_attribute("title")
    with page.expect_download() as download:
        rows.first.locator(".soundslike-download").click()
    saved = download.value
    assert first_name and saved.suggested_filename in first_name
    assert Path(saved.path()).read_bytes()[:4] in (b"RIFF", b"OggS", b"ID3\x03", b"fLaC")

    # Change k with the slider's editable readout.
    readout = page.locator(".soundslike-app .widget-slider .widget-readout").first
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("4")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('.soundslike-result').length == 4")
    assert _result_count(page) == 4
    _shot(page, "3-k-changed")

    # Weight the envelope alone with the aspect sliders' readouts: the ranking follows at once.
    before = "|".join(rows.all_inner_texts())
    for aspect, value in (("envelope", "1"), ("overall", "0"), ("timbre", "0"),
                          ("spectrum", "0")):
        slider = page.locator(".soundslike-app .widget-slider",
                              has=page.locator("label", has_text=re.compile(f"^{aspect}$")))
        slider.locator(".widget-readout").click()
        page.keyboard.press("Control+A")
        page.keyboard.type(value)
        page.keyboard.press("Enter")
    # Each edit re-ranks and redraws; wait until the last redraw has settled with 4 new rows.
    settled = ("previous => { const rows = [...document.querySelectorAll('.soundslike-result')];"
               " return rows.length == 4 && rows.map(row => row.innerText).join('|') !== previous"
               " && rows.every(row => row.querySelector('audio')); }")
    page.wait_for_function(settled, arg=before)
    page.wait_for_timeout(1500)
    page.wait_for_function(settled, arg=before)
    assert _result_count(page) == 4
    _shot(page, "3b-envelope-weighted")
    page.get_by_role("button", name="default weights").click()
    page.wait_for_function(
        "previous => [...document.querySelectorAll('.soundslike-result')]"
        ".map(row => row.innerText).join('|') === previous", arg=before)

    # Click a library point on the map: it is selected, played, and can become the query.
    point = page.locator(".soundslike-app .scatterlayer .trace").first.locator("path.point").nth(7)
    box = point.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.locator(".soundslike-use-selected").wait_for(timeout=20_000)
    selected_name = page.get_by_text("Selected:").inner_text().removeprefix("Selected:").strip()
    page.locator(".soundslike-use-selected").scroll_into_view_if_needed()
    # The click plays it (the player autoplays; this Chromium allows autoplay).
    page.wait_for_function(
        "[...document.querySelectorAll('.soundslike-app audio[autoplay]')]"
        ".some(audio => audio.ended || audio.currentTime > 0)", timeout=20_000)
    _shot(page, "4-map-point-selected")

    # ...and can become the query: the results follow.
    before = rows.first.inner_text()
    page.locator(".soundslike-use-selected").click()
    page.wait_for_function(
        "previous => { const first = document.querySelector('.soundslike-result');"
        " return first && first.innerText !== previous; }", arg=before)
    page.wait_for_function("document.querySelectorAll('.soundslike-result').length == 4")
    query_text = page.get_by_text("Query:").inner_text()
    assert "from the library" in query_text
    assert selected_name.split(" (")[0] in query_text
    page.locator(".soundslike-app").scroll_into_view_if_needed()
    page.locator(".soundslike-app .soundslike-title").scroll_into_view_if_needed()
    _shot(page, "5-selected-became-query")

    # Audition with the keys: ArrowDown outlines the first row, Space plays it (its player
    # fetches the sound from the kernel), and the map rings it; the notebook keeps its cell.
    cells_before = page.locator(".jp-Notebook .jp-Cell").count()
    page.locator(".soundslike-app .soundslike-results").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.locator(".soundslike-result.soundslike-current").wait_for(timeout=20_000)
    page.wait_for_function(
        "[...document.querySelectorAll('.soundslike-result')]"
        ".findIndex(row => row.classList.contains('soundslike-current')) == 1")
    page.keyboard.press("Space")
    # One sound at a time: the current row's plays and no other, seen at one moment (a demo
    # sound lasts a fraction of a second, so counting the players later raced with its end).
    page.wait_for_function(
        "(() => { const row = document.querySelector('.soundslike-result.soundslike-current');"
        " const audio = row && row.querySelector('audio');"
        " const playing = [...document.querySelectorAll('.soundslike-app audio')]"
        ".filter(other => !other.paused);"
        " return audio && !audio.paused && audio.currentTime > 0"
        " && playing.length == 1 && playing[0] === audio; })()", timeout=20_000)
    page.locator(".soundslike-result.soundslike-playing").wait_for(timeout=20_000)
    page.wait_for_function(
        "[...document.querySelectorAll('.soundslike-app .scatterlayer .trace')]"
        ".slice(-1)[0].querySelectorAll('path.point').length == 1", timeout=20_000)
    assert page.locator(".jp-Notebook .jp-Cell").count() == cells_before
    page.locator(".soundslike-app .soundslike-results").scroll_into_view_if_needed()
    _shot(page, "6-auditioning-keys")
