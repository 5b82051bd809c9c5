"""Regions in the notebook, tried as a new user would: JupyterLab started here, driven by
Playwright with Debian's Chromium.

The library folder holds the demo sounds (but one: ``explosion1.wav``) and a 40 s field recording
into which that explosion was mixed at 12.35 s, over a seeded bed with other demo sounds low in
it. Uploading the explosion finds the recording with the right start; its row plays that moment
(the region's cut, not 40 s) and downloads it as its own WAV. Then a 20 s take is uploaded, the
second holding ``gameover2.wav`` is selected on its waveform, and "search this region" finds that
sound. On the way, the result table with regions is checked to fit beside the map, and shot at
1440 x 900 with the file browser open. Screenshots land in
``test-artifacts/browser/regions-*.png``. Skipped, saying why, where Debian's Chromium
(``/usr/bin/chromium``) or the playwright package is missing.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from .browser import (
    ARTIFACTS,
    MARKS,
    chromium_page,
    draw_lasso,
    open_notebook,
    run_all_cells,
    running_lab,
    write_app_notebook,
)

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo" / "kenney"
RATE = 44100
#: The known sound, and where it was mixed into the field recording.
KNOWN, KNOWN_AT = "explosion1.wav", 12.35
#: The sound in the query take, and where: the second selected on its waveform.
SELECTED, SELECTED_AT, SELECTED_NAME = "gameover2.wav", 8.0, "gameover 2"
SELECTION = (7.9, 9.1)
RECORDING, TAKE = "field recording.wav", "query take.wav"

pytestmark = MARKS


# -- the sounds ----------------------------------------------------------------------------------

def _demo(name: str) -> np.ndarray:
    from soundslike_nb.audio import load

    return load(DEMO / name, sample_rate=RATE)[0]


def _take(rng, seconds: float, events: list[tuple[str, float, float]]) -> np.ndarray:
    """A stereo recording: a seeded bed (brown and a little white noise, about -30 dBFS) with
    demo sounds mixed in at (name, seconds, gain)."""
    frames = int(seconds * RATE)
    white = rng.standard_normal(frames)
    brown = np.cumsum(white)
    brown -= np.convolve(brown, np.ones(RATE // 10) / (RATE // 10), "same")
    wave = (0.03 * brown / np.abs(brown).max() + 0.004 * white).astype(np.float32)
    for name, at, gain in events:
        sound = gain * _demo(name)
        start = round(at * RATE)
        wave[start:start + len(sound)] += sound[:frames - start]
    return np.stack([wave, 0.9 * wave], axis=1)


def write_sounds(folder: Path, take: Path, *, seed: int = 16) -> None:
    """The library's folder (the demo sounds but the known one, and the field recording) and
    the query take."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for path in DEMO.iterdir():
        if path.name not in (KNOWN, "License.txt"):
            shutil.copy(path, folder / path.name)
    recording = _take(rng, 40.0, [("coin2.wav", 4.0, 0.15), (KNOWN, KNOWN_AT, 0.8),
                                  ("jump3.wav", 25.0, 0.15), ("upgrade2.wav", 33.0, 0.15)])
    sf.write(folder / RECORDING, recording, RATE, subtype="PCM_24")
    query = _take(rng, 20.0, [("coin1.wav", 3.0, 0.6), (SELECTED, SELECTED_AT, 0.8),
                              ("upgrade1.wav", 14.0, 0.6)])
    sf.write(take, query, RATE, subtype="PCM_16")


# -- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def region_library(tmp_path_factory):
    """The sounds written, the library built with regions and its map fitted, once:
    (library path, query take, the recording's row, how many regions it has)."""
    import soundslike_nb
    from soundslike_nb.analysis import AnalysisSettings
    from soundslike_nb.segmentation import RegionSettings

    where = tmp_path_factory.mktemp("region-library")
    folder, take, out = where / "sounds", where / TAKE, where / "library.parquet"
    started = time.monotonic()
    write_sounds(folder, take)
    library = soundslike_nb.build_library(
        folder, out=out, progress=False,
        settings=AnalysisSettings(regions=RegionSettings()))
    built = time.monotonic()
    library.map(progress=False)
    print(f"\n[fixture] {len(library)} sounds, {len(library.regions)} regions: build "
          f"{built - started:.1f} s, map {time.monotonic() - built:.1f} s", flush=True)
    position = library.position_of(folder / RECORDING)
    regions = int((library.regions["file"] == position).sum())
    assert regions, "the field recording has regions"
    return out, take, position, regions


@pytest.fixture(scope="module")
def lab(region_library, tmp_path_factory):
    notebooks = tmp_path_factory.mktemp("regions-lab-root")
    write_app_notebook(notebooks, region_library[0])
    with running_lab(notebooks, log_name="regions-lab.log") as server:
        yield server


@pytest.fixture
def page(lab):
    with chromium_page(stale_shots="regions-*.png", accept_downloads=True) as page:
        yield page


# -- the test ------------------------------------------------------------------------------------

def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"regions-{name}.png"), full_page=False)


def _centre(locator) -> None:
    """Scroll ``locator`` to the middle of the window (for the screenshots)."""
    locator.evaluate("element => element.scrollIntoView({block: 'center'})")


def _upload(page, path: Path) -> None:
    with page.expect_file_chooser() as chooser:
        page.locator(".soundslike-upload").first.click()
    chooser.value.set_files(str(path))
    page.wait_for_function(
        "name => document.querySelectorAll('.soundslike-app .soundslike-result').length > 0"
        " && document.querySelector('.soundslike-app').innerText.includes(name)"
        " && !document.querySelector('.soundslike-app .soundslike-busy')",
        arg=path.name, timeout=120_000)


def _best_correlation(cut: np.ndarray, known: np.ndarray, offset: int) -> float:
    """The correlation of ``known`` with ``cut`` where it should begin (``offset`` frames
    into the cut, give or take the 5 ms that a start written to two decimals may be off)."""
    best = -1.0
    for lag in range(offset - 240, offset + 241):
        length = min(len(cut) - max(lag, 0), len(known) - max(-lag, 0))
        if length < RATE // 10:
            continue
        piece = cut[max(lag, 0):max(lag, 0) + length]
        expected = known[max(-lag, 0):max(-lag, 0) + length]
        best = max(best, float(np.corrcoef(piece, expected)[0, 1]))
    return best


def _row_names(page) -> list[str]:
    return page.locator(".soundslike-app .soundslike-result .soundslike-name").all_inner_texts()


#: The widest the result table with regions may be: beside the map (550 px) in an output
#: 1,310 px wide, JupyterLab's with its file browser open in a window 1,740 px wide.
WIDEST_TABLE = 760


def _table_layout(page) -> dict:
    """Where the result table, its widest row, the map and the notebook's output are, and
    which cells cut their text (an ellipsis) besides names and folders."""
    return page.evaluate(
        "() => { const box = (selector) => { const found = document.querySelector(selector);"
        " const rect = found.getBoundingClientRect();"
        " return {left: rect.left, right: rect.right, top: rect.top, bottom: rect.bottom,"
        " width: rect.width, height: rect.height}; };"
        " const rows = [...document.querySelectorAll('.soundslike-app .soundslike-result,"
        " .soundslike-app .soundslike-header')];"
        " const cut = [...document.querySelectorAll('.soundslike-app .soundslike-results"
        " .soundslike-cell:not(.soundslike-name):not(.soundslike-folder),"
        " .soundslike-app .soundslike-results button')]"
        ".filter(cell => cell.scrollWidth > cell.clientWidth + 1).map(cell => cell.outerHTML);"
        " return {table: box('.soundslike-app .soundslike-results'),"
        " map: box('.soundslike-app .js-plotly-plot .main-svg'),"
        " column: box('.soundslike-app .soundslike-map-column'),"
        " output: box('.jp-OutputArea-output .soundslike-app'),"
        " widest_row: Math.max(...rows.map(row => row.scrollWidth)), cut}; }")


def _check_the_table_fits(page) -> None:
    """The table with regions is at most :data:`WIDEST_TABLE` wide, no row overflows it and
    no number or button is cut; the map sits beside it (the test's window: 1,800 px, the file
    browser open). Then the map at laptop and desktop sizes (:func:`_check_the_map_fits`)."""
    layout = _table_layout(page)
    print(f"[browser] results {layout['table']['width']:.0f} px wide (widest row "
          f"{layout['widest_row']} px), map at x={layout['map']['left']:.0f}, notebook output "
          f"{layout['output']['width']:.0f} px", flush=True)
    assert layout["table"]["width"] <= WIDEST_TABLE, layout
    assert layout["widest_row"] <= layout["table"]["width"] + 1, layout
    assert layout["cut"] == [], layout["cut"]
    assert layout["map"]["left"] >= layout["table"]["right"], "the map sits beside the results"
    assert layout["map"]["top"] < layout["table"]["bottom"], "the map sits beside the results"
    size = page.viewport_size
    try:
        _check_the_map_fits(page)
    finally:
        page.set_viewport_size(size)
        _fitted_map(page)


#: Window sizes (width, height, file browser open) at which the map is checked and shot.
WINDOWS = [(1440, 900, True), (1366, 768, True), (1920, 1080, True), (1440, 900, False)]


def _check_the_map_fits(page) -> None:
    """At each of :data:`WINDOWS`, the map takes the width left beside the results, or goes
    below them (its column at the output's full width) when less than ``MIN_BESIDE`` px is
    left; its height follows its width. Each size is shot
    (``regions-map-<width>x<height>-file-browser-<open|closed>.png``)."""
    from soundslike_nb.app.map_fit import GAP, MIN_BESIDE, map_size

    file_browser = page.locator("#filebrowser")
    assert file_browser.is_visible(), "the test window starts with the file browser open"
    widths = {}
    for width, height, browser_open in WINDOWS:
        if file_browser.is_visible() != browser_open:  # as a user would: its tab in the side bar
            page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='filebrowser']").click()
        page.set_viewport_size({"width": width, "height": height})
        file_browser.wait_for(state="visible" if browser_open else "hidden")
        layout = _fitted_map(page)
        table, plot, output = layout["table"], layout["map"], layout["output"]
        room = output["width"] - table["width"] - GAP
        where = "beside" if plot["left"] >= table["right"] else "below"
        label = f"{width}x{height}-file-browser-{'open' if browser_open else 'closed'}"
        print(f"[browser] {label}: output {output['width']:.0f} px, results "
              f"{table['width']:.0f} px, map {plot['width']:.0f} x {plot['height']:.0f} px "
              f"{where} the results", flush=True)
        # The map is as wide as its column leaves it and as high as that width gives.
        expected = map_size(layout["column"]["width"])
        assert (plot["width"], plot["height"]) == pytest.approx(expected, abs=1), layout
        if room >= MIN_BESIDE:
            assert plot["left"] >= table["right"] + GAP - 1, f"beside the results: {layout}"
            assert plot["top"] < table["bottom"], f"beside the results: {layout}"
            assert plot["right"] <= output["right"] + 1, f"within the output: {layout}"
        else:
            assert plot["top"] >= table["bottom"], f"below the results: {layout}"
            assert layout["column"]["width"] == pytest.approx(output["width"], abs=1), layout
        widths[label] = (where, round(plot["width"]))
        _centre(page.locator(".soundslike-app .soundslike-panels"))
        page.mouse.move(5, 5)
        _shot(page, f"map-{label}")
    if file_browser.is_visible() is False:
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='filebrowser']").click()
        file_browser.wait_for()
    # A laptop's window without the file browser, and a desktop's with it: beside, and wider
    # than the old fixed 540 px where there is room for it.
    assert widths["1440x900-file-browser-closed"][0] == "beside", widths
    assert widths["1920x1080-file-browser-open"][0] == "beside", widths
    assert widths["1920x1080-file-browser-open"][1] > 600, widths


def _fitted_map(page) -> dict:
    """The layout once the map has been redrawn at the size its column's width gives (the
    kernel answers the width the browser measured) and stays so (JupyterLab lays its panels
    out a frame late)."""
    from soundslike_nb.app.map_fit import MAX_WIDTH

    fitted = ("maxWidth => { const column = document.querySelector('.soundslike-map-column');"
              " const svg = column && column.querySelector('.js-plotly-plot .main-svg');"
              " if (!svg) return false;"
              " const width = Math.min(Math.round(column.getBoundingClientRect().width) - 4,"
              " maxWidth);"
              " return Math.abs(svg.getBoundingClientRect().width - width) <= 1; }")
    for _attempt in range(10):
        page.wait_for_timeout(400)
        page.wait_for_function(fitted, arg=MAX_WIDTH, timeout=20_000)
        page.wait_for_timeout(400)
        if page.evaluate(fitted, MAX_WIDTH):
            return _table_layout(page)
    pytest.fail("the map did not settle at its column's width")


def test_regions_in_the_notebook(region_library, lab, page):
    try:
        _drive(page, *lab, *region_library)
    except BaseException:
        _shot(page, "failure")  # what the page showed when the test gave up
        raise


def _drive(page, url: str, token: str, library: Path, take: Path, recording_row: int,
           recording_regions: int) -> None:
    import soundfile as sf

    page.set_default_timeout(60_000)
    open_notebook(page, url, token, "soundslike.ipynb")
    run_all_cells(page)
    page.locator(".soundslike-app .js-plotly-plot .scatterlayer").first.wait_for(
        timeout=180_000)

    # 1. The known sound as the query: the field recording is found, at the right moment.
    _upload(page, DEMO / KNOWN)
    names = _row_names(page)
    recording_name = Path(RECORDING).stem
    assert recording_name in names, names
    row = page.locator(".soundslike-app .soundslike-result").nth(names.index(recording_name))
    at = row.locator(".soundslike-at").get_attribute("title")
    start, end = (float(value) for value in re.findall(r"[0-9.]+", at)[:2])
    print(f"[browser] {KNOWN} finds {RECORDING} at rank {names.index(recording_name) + 1}, "
          f"{start:.2f}-{end:.2f} s (mixed in at {KNOWN_AT} s)", flush=True)
    assert abs(start - KNOWN_AT) <= 0.1, at
    assert row.locator(".soundslike-region-mark").count() == 1, "the thumbnail marks it"
    _centre(row)
    _shot(page, "1-known-sound-finds-the-recording")
    _check_the_table_fits(page)

    # Its row plays that moment: the player's audio is the region (not 40 s), and it plays.
    row.locator(".soundslike-play").click()
    page.wait_for_function(
        "index => { const row = document.querySelectorAll('.soundslike-result')[index];"
        " const audio = row && row.querySelector('audio');"
        " return audio && audio.duration > 0 && (audio.currentTime > 0 || audio.ended); }",
        arg=names.index(recording_name), timeout=30_000)
    heard = row.locator("audio").evaluate("audio => audio.duration")
    print(f"[browser] the row's player holds {heard:.2f} s", flush=True)
    assert heard == pytest.approx(end - start, abs=0.05)
    _shot(page, "2-region-plays")

    # ...and downloads as its own WAV: the file's rate and channels, the explosion at its start.
    with page.expect_download() as download:
        row.locator(".soundslike-download-region").click()
    saved = download.value
    assert saved.suggested_filename == f"{recording_name}_{start:.2f}-{end:.2f}.wav"
    cut, rate = sf.read(saved.path(), always_2d=True)
    assert rate == RATE and cut.shape[1] == 2
    assert len(cut) == pytest.approx((end - start) * RATE, abs=0.011 * RATE)  # 2 decimals
    correlation = _best_correlation(cut[:, 0], _demo(KNOWN), round((KNOWN_AT - start) * RATE))
    print(f"[browser] download {saved.suggested_filename}: {len(cut)} frames, correlation with "
          f"{KNOWN} {correlation:.3f}", flush=True)
    assert correlation > 0.9

    # 2. On the map, the recording clicked shows its regions, each where it sounds.
    plot = page.locator(".soundslike-app .js-plotly-plot").first
    _centre(plot)
    point = plot.locator(".scatterlayer .trace").first.locator("path.point").nth(recording_row)
    box = point.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text(f"Selected: {recording_name}").wait_for(timeout=20_000)
    page.wait_for_function(
        "count => { const traces = document.querySelectorAll("
        "'.soundslike-app .js-plotly-plot .scatterlayer .trace');"
        " return traces.length == 6 && traces[5].querySelectorAll('path.point').length == count;"
        " }", arg=recording_regions, timeout=20_000)
    print(f"[browser] the recording selected on the map: {recording_regions} region points",
          flush=True)
    # A click on a region's point plays that region alone.
    regions = plot.locator(".scatterlayer .trace").nth(5).locator("path.point")
    box = regions.first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    selected = page.get_by_text(re.compile(rf"Selected: {recording_name} from [0-9.]+ to"))
    selected.wait_for(timeout=20_000)
    span = [float(value) for value in re.findall(r"[0-9]+\.[0-9]+", selected.inner_text())]
    page.wait_for_function(
        "() => [...document.querySelectorAll('.soundslike-app audio[autoplay]')]"
        ".some(audio => audio.duration > 0 && (audio.ended || audio.currentTime > 0))",
        timeout=20_000)
    heard = page.evaluate("() => [...document.querySelectorAll("
                          "'.soundslike-app audio[autoplay]')].map(audio => audio.duration)")
    print(f"[browser] a region point clicked: {span}, its player holds {heard}", flush=True)
    assert any(abs(seconds - (span[1] - span[0])) < 0.02 for seconds in heard), heard
    page.mouse.move(5, 5)
    _centre(plot)
    _shot(page, "3-map-regions-of-the-recording")

    # 3. A long take as the query: its waveform is shown; a second of it is selected by a drag.
    _upload(page, take)
    selector = page.locator(".soundslike-app .soundslike-region")
    selector.wait_for()
    _centre(selector)
    length = 20.0
    # The waveform is drawn just after the results: wait until its axis spans the take.
    waveform = selector.locator("svg.soundslike-waveform")
    waveform.locator("text", has_text=re.compile(r"^15 s$")).wait_for()
    draw_lasso(page, waveform, [(SELECTION[0] / length, 0.4), (SELECTION[1] / length, 0.4)])
    entries = selector.locator(".soundslike-span-entry input")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.soundslike-region .soundslike-span-entry input')]"
        ".every(entry => entry.value !== '')", timeout=20_000)
    selected = [float(entries.nth(index).input_value()) for index in range(2)]
    print(f"[browser] dragged across {SELECTION}: selected {selected}", flush=True)
    assert selected == pytest.approx(list(SELECTION), abs=0.15)
    page.mouse.move(5, 5)
    _shot(page, "4-second-selected")

    before = "|".join(_row_names(page))
    selector.locator(".soundslike-search-region").click()
    page.wait_for_function(
        "previous => { const names = [...document.querySelectorAll("
        "'.soundslike-app .soundslike-result .soundslike-name')].map(cell => cell.innerText);"
        " return names.length > 0 && names.join('|') !== previous"
        " && !document.querySelector('.soundslike-app .soundslike-busy'); }",
        arg=before, timeout=60_000)
    names = _row_names(page)
    print(f"[browser] search this region: {names[:5]}", flush=True)
    assert names[0] == SELECTED_NAME, names
    query_text = page.get_by_text("Query:").inner_text()
    assert f"{selected[0]:.2f}" in query_text, query_text
    _centre(page.locator(".soundslike-app .soundslike-result").first)
    page.mouse.move(5, 5)
    _shot(page, "5-searched-with-the-second")
