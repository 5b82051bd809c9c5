"""The notebook tried as a new user would, on a library of a few thousand sounds with long files
among them: JupyterLab started here, driven by Playwright with Debian's Chromium.

The library (2,000 seeded synthetic one-shots in 20 nested folders whose file names repeat, and
8 long files) and a 15-minute query are written and indexed once per module; screenshots of each
step land in ``test-artifacts/browser/real-*.png``. Timings are printed (``-s``), not asserted:
they belong in ``benchmarks/browser_app.py``. Skipped, saying why, where Debian's Chromium
(``/usr/bin/chromium``) or the playwright package is missing.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from .browser import (
    ARTIFACTS,
    MARKS,
    chromium_page,
    run_all_cells,
    running_lab,
    write_app_notebook,
)

RATE = 22050
SHORTS = 2000
KITS = ["Kit A", "Kit B", "Kit C", "Vendor X"]
CATEGORIES = {  # folder -> (file stem, kind of sound); 4 kits x 5 = 20 folders, names repeat
    "Impacts": ("impact", "tone"), "Whooshes": ("whoosh", "noise"), "UI": ("click", "tone"),
    "Footsteps": ("step", "noise"), "Lasers": ("laser", "chirp"),
}
# Long files: most 1-2.5 min; two last over a quarter of the 15-minute query, so that its default
# similar-length window (a quarter to four times its length) holds a few results, not none.
LONG_SECONDS = [60, 75, 90, 110, 130, 150, 240, 255]
QUERY_MINUTES = 15


pytestmark = MARKS


# -- the sounds ----------------------------------------------------------------------------------

def _envelope(rng, n: int) -> np.ndarray:
    t = np.linspace(0, 1, n, dtype=np.float32)
    kind = rng.integers(4)
    if kind == 0:  # percussive
        return np.exp(-rng.uniform(3, 25) * t)
    if kind == 1:  # attack then release
        peak = rng.uniform(0.05, 0.6)
        return np.where(t < peak, t / peak, np.exp(-rng.uniform(2, 8) * (t - peak)))
    if kind == 2:  # swell
        return np.exp(-rng.uniform(3, 15) * (1 - t))
    return np.clip(np.minimum(t / 0.05, (1 - t) / 0.2), 0, 1) * (
        0.7 + 0.3 * np.sin(2 * np.pi * rng.uniform(2, 12) * t))  # sustained, tremolo


def _band_noise(rng, n: int, low: float, high: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n).astype(np.float32))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < low) | (freqs > high)] = 0
    out = np.fft.irfft(spectrum, n).astype(np.float32)
    return out / (np.abs(out).max() + 1e-9)


def _short(rng, kind: str, seconds: tuple[float, float] = (0.1, 0.4)) -> np.ndarray:
    n = int(RATE * rng.uniform(*seconds))
    t = np.arange(n, dtype=np.float32) / RATE
    if kind == "tone":
        f0 = rng.uniform(60, 2000)
        wave = sum(np.sin(2 * np.pi * f0 * h * t) / h**rng.uniform(0.5, 2) for h in range(1, 6))
    elif kind == "chirp":
        f0, f1 = rng.uniform(200, 6000, 2)
        wave = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1] + 1e-9)))
    else:
        low = rng.uniform(50, 3000)
        wave = _band_noise(rng, n, low, min(low * rng.uniform(1.5, 8), RATE / 2 - 1))
    wave = wave * _envelope(rng, n) + 0.003 * rng.standard_normal(n)
    return (0.8 * wave / (np.abs(wave).max() + 1e-9)).astype(np.float32)


def _long(rng, seconds: float, music: bool) -> np.ndarray:
    n = int(RATE * seconds)
    if not music:  # an ambience: slowly swelling band noise with events
        bed = _band_noise(rng, n, rng.uniform(80, 400), rng.uniform(2000, 9000))
        swell = 0.6 + 0.4 * np.sin(2 * np.pi * np.arange(n, dtype=np.float32) / RATE
                                   / rng.uniform(5, 40))
        wave = 0.3 * bed * swell
        for start in rng.integers(0, n - RATE, int(seconds / 3)):
            event = _short(rng, str(rng.choice(["tone", "chirp"])), (0.2, 1.5))
            end = min(n, start + event.size)
            wave[start:end] += 0.3 * event[:end - start]
    else:  # a loop of four notes and a noise hat, repeated
        bar = int(RATE * rng.uniform(1.5, 3))
        loop = np.zeros(bar, np.float32)
        t = np.arange(bar // 4, dtype=np.float32) / RATE
        for beat in range(4):
            f = rng.choice([110, 147, 165, 196, 220, 262]) * rng.choice([1, 2])
            loop[beat * (bar // 4):beat * (bar // 4) + t.size] += np.sin(
                2 * np.pi * f * t) * np.exp(-6 * t)
        loop += 0.2 * _band_noise(rng, bar, 6000, 10000) * (np.arange(bar) % (bar // 8) < 400)
        wave = np.tile(loop, n // bar + 1)[:n]
    return (0.8 * wave / (np.abs(wave).max() + 1e-9)).astype(np.float32)


def write_sounds(folder: Path, query: Path, seed: int = 0) -> list[tuple[str, str]]:
    """The library's files under ``folder`` and the query; each sound's (folder, name)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    folders = [(f"{kit}/{cat}", stem, kind) for kit in KITS
               for cat, (stem, kind) in CATEGORIES.items()]
    written = []
    for number in range(SHORTS):
        where, stem, kind = folders[number % len(folders)]
        name = f"{stem} {number // len(folders) + 1:02d}.wav"  # "Kit A/Impacts/impact 01.wav"...
        (folder / where).mkdir(parents=True, exist_ok=True)
        sf.write(folder / where / name, _short(rng, kind), RATE, subtype="PCM_16")
        written.append((where, name))
    for number, seconds in enumerate(LONG_SECONDS):
        music = number % 3 == 2
        where = "Music/Loops" if music else "Ambiences/Field"
        name = f"{'loop' if music else 'ambience'} {number + 1:02d}.wav"
        (folder / where).mkdir(parents=True, exist_ok=True)
        sf.write(folder / where / name, _long(rng, seconds, music), RATE, subtype="PCM_16")
        written.append((where, name))
    with sf.SoundFile(query, "w", samplerate=RATE, channels=1, subtype="PCM_16") as out:
        for _minute in range(QUERY_MINUTES):
            out.write(0.7 * _long(rng, 60, music=False))
    return written


# -- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_library(tmp_path_factory):
    """The sounds written, the library built and its map fitted, once: (library path, query,
    [(folder, name)])."""
    import soundslike_nb

    where = tmp_path_factory.mktemp("real-library")
    folder, query, out = where / "sounds", where / "query 15 min.wav", where / "library.parquet"
    start = time.monotonic()
    sounds = write_sounds(folder, query)
    written = time.monotonic()
    library = soundslike_nb.build_library(folder, out=out, progress=False)
    built = time.monotonic()
    library.map(progress=False)
    mapped = time.monotonic()
    print(f"\n[fixture] {len(library)} sounds: files {written - start:.1f} s, build "
          f"{built - written:.1f} s, map {mapped - built:.1f} s, total {mapped - start:.1f} s",
          flush=True)
    assert len(library) == len(sounds)
    return out, query, sounds


@pytest.fixture(scope="module")
def lab(real_library, tmp_path_factory):
    """JupyterLab whose root is a temporary folder holding the app's notebook pointed at the
    library (``FOLDERS = None``): ``(url, token)``; stopped afterwards."""
    notebooks = tmp_path_factory.mktemp("lab-root")
    write_app_notebook(notebooks, real_library[0])

    with running_lab(notebooks, log_name="real-lab.log") as server:
        yield server


@pytest.fixture
def page(lab):
    with chromium_page(stale_shots="real-*.png") as page:
        yield page


# -- the test ------------------------------------------------------------------------------------

ROWS_JS = "document.querySelectorAll('.soundslike-app .soundslike-result').length"


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"real-{name}.png"), full_page=False)


def _rows(page) -> int:
    return page.evaluate(ROWS_JS)


def _status(page) -> str:
    """The app's status line: "N results, most similar first ...", or why there are none."""
    text = page.locator(".soundslike-app").inner_text()
    lines = [line for line in text.splitlines()
             if re.search(r"\d+ results?, most similar|No other sound|No sound in the library",
                          line)]
    return " / ".join(lines)


def _set_readout(page, slider, value: str) -> None:
    slider.locator(".widget-readout").first.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


class _Clock:
    def __init__(self) -> None:
        self.start = self.last = time.monotonic()

    def lap(self, what: str) -> None:
        now = time.monotonic()
        print(f"[browser] {what}: {now - self.last:.1f} s", flush=True)
        self.last = now


def test_new_user_on_a_real_sized_library(real_library, lab, page):
    try:
        _drive(page, *lab, *real_library)
    except BaseException:
        _shot(page, "failure")  # what the page showed when the test gave up
        raise


def _drive(page, url: str, token: str, library: Path, query: Path,
           sounds: list[tuple[str, str]]) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    clock = _Clock()
    page.set_default_timeout(60_000)
    page.goto(f"{url}/lab/tree/soundslike.ipynb?reset&token={token}")
    page.locator(".jp-Notebook").wait_for()
    page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).wait_for(timeout=90_000)
    clock.lap("notebook open, kernel idle")

    run_all_cells(page)
    app = page.locator(".soundslike-app")
    app.wait_for(timeout=180_000)
    page.locator(".soundslike-app .js-plotly-plot .scatterlayer").wait_for(timeout=180_000)
    app.scroll_into_view_if_needed()
    clock.lap("Run All -> app with its map")
    _shot(page, "1-app-shown")

    # (a) The 15-minute file through the upload's file chooser: result rows, no error.
    with page.expect_file_chooser() as chooser:
        page.locator(".soundslike-upload").first.click()
    chooser.value.set_files(str(query))
    # While it is analysed, the status line says how far it is (and the upload is disabled).
    busy = page.locator(".soundslike-app .soundslike-busy", has_text=re.compile(r"\d+ %"))
    busy.wait_for(timeout=60_000)
    print(f"[browser] while analysing: {busy.first.inner_text()!r}", flush=True)
    assert page.locator(".soundslike-app .soundslike-upload").first.is_disabled()
    _shot(page, "2a-analysing-15min")
    page.wait_for_function(
        f"name => {ROWS_JS} > 0 && document.querySelector('.soundslike-app').innerText"
        ".includes(name) && !document.querySelector('.soundslike-app .soundslike-busy')",
        arg=query.name, timeout=120_000)
    clock.lap("upload 15 min -> result rows")
    errors = page.locator(".soundslike-app .soundslike-error")
    assert errors.count() == 0 or not errors.first.inner_text().strip()
    assert "from the library" not in page.get_by_text("Query:").inner_text()
    windowed_rows, windowed_status = _rows(page), _status(page)
    print(f"[browser] 15 min query, similar length on: {windowed_rows} rows, "
          f"status {windowed_status!r}", flush=True)
    assert 0 < windowed_rows <= 10
    _shot(page, "2-upload-15min")

    # (c) "similar length" is ticked by default and its window is shown; unticked, more results.
    window = page.locator(".soundslike-app .widget-checkbox",
                          has_text=re.compile("similar length"))
    assert window.count() == 1
    assert window.locator("input").first.is_checked()
    app_text = app.inner_text().replace("\xa0", " ")
    # A quarter to four times 15 minutes, as format_duration writes it, en dash between.
    window_text = re.search(r"3 min 45 s \u2013 1 h", app_text)
    assert window_text, f"the similar-length window's text is not shown: {app_text[:400]!r}"
    print(f"[browser] similar-length window: {window_text.group(0)!r}", flush=True)
    window.locator("input").first.click()
    page.wait_for_function(f"{ROWS_JS} == 10", timeout=60_000)
    clock.lap("untick similar length -> 10 rows")
    assert not window.locator("input").first.is_checked()
    status = _status(page)
    assert status.startswith("10 results"), status
    assert windowed_rows < 10, "unticked, the window's few results become k=10"
    _shot(page, "3-similar-length-off")

    # (d) k = 100 through the slider's readout: 100 rows.
    _set_readout(page, page.locator(".soundslike-app .widget-slider").first, "100")
    page.wait_for_function(f"{ROWS_JS} == 100", timeout=60_000)
    clock.lap("k 10 -> 100 rows")
    assert _status(page).startswith("100 results")
    _shot(page, "4-k100")

    # (b) Hover a library point on the map: its label names a sound and its folder.
    plot = page.locator(".soundslike-app .js-plotly-plot").first
    plot.scroll_into_view_if_needed()
    points = page.locator(".soundslike-app .scatterlayer .trace").first.locator("path.point")
    label = ""
    for nth in (25, 400, 1200):
        box = points.nth(nth).bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x - 4, y - 4)
        page.mouse.move(x, y)
        try:
            page.locator(".soundslike-app .hoverlayer .hovertext").first.wait_for(timeout=5_000)
        except PlaywrightTimeout:
            continue
        label = page.evaluate(
            "() => [...document.querySelectorAll('.soundslike-app .hoverlayer .hovertext')]"
            ".map(h => h.textContent).join(' / ')")
        if label:
            break
    print(f"[browser] hover label: {label!r}", flush=True)
    _shot(page, "5-hover")
    assert any(Path(name).stem in label and where in label for where, name in sounds), label
    page.mouse.move(5, 5)

    # (e) Audition with the keys: ArrowDown, Space, and a row's <audio> plays.
    page.locator(".soundslike-app .soundslike-results").focus()
    page.keyboard.press("ArrowDown")
    page.locator(".soundslike-result.soundslike-current").wait_for(timeout=20_000)
    page.keyboard.press("Space")
    page.wait_for_function(
        "(() => { const row = document.querySelector('.soundslike-result.soundslike-current');"
        " const audio = row && row.querySelector('audio');"
        " return audio && !audio.paused && audio.currentTime > 0; })()", timeout=30_000)
    clock.lap("ArrowDown, Space -> playing")
    page.locator(".soundslike-app .soundslike-results").scroll_into_view_if_needed()
    _shot(page, "6-auditioning")
    print(f"[browser] total in the browser: {time.monotonic() - clock.start:.1f} s", flush=True)
