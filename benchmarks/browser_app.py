"""The notebook app in a real browser on a library shaped like a real one, before and after.

What it measures (JupyterLab 4 started here, driven by Playwright with Debian's Chromium at
``/usr/bin/chromium``; never ``playwright install``):

1. A library of about 3,000 seeded synthetic sounds, built once under
   ``/tmp/soundslike-bench/browser-lib/``: mostly one-shots of 0.1-3 s (decaying tones, noise
   bursts, chirps; several envelopes) in ~30 nested folders whose names and file names repeat
   ("Kit A/Impacts/impact 01.wav", "Kit B/Impacts/impact 01.wav"), plus ~30 long files of
   1-8 min (ambiences, music-like loops), and two queries: a 5-minute and a 15-minute stereo
   48 kHz WAV. Each checkout indexes it with its own command line
   (``python -m soundslike_nb index FOLDER -o LIB.parquet``) into its own library file, then
   fits its map and index once outside the browser (timed: "build" and "prepare").
2. For each checkout, a copy of its ``notebooks/soundslike.ipynb`` pointed at that library
   (``FOLDERS = None``), saved as ``notebooks/_bench.ipynb`` and removed afterwards, is run in
   the page (Run All Cells), and these steps are timed from the browser's side, i.e. until the
   page shows the result (what a user waits for, kernel and drawing included):

   - ``app shown``: Run All Cells until the map is drawn (map and index already stored);
   - ``upload 5 min``: the 5-minute file set on the upload's file chooser until its result rows
     are drawn (and whether an "analysing" status showed while waiting);
   - ``k 10 -> 100``: k typed into the slider's readout until 100 rows are drawn (after: with the
     "similar length" window unticked, so that 100 results exist; the window's own count with
     k = 100 is reported too);
   - ``aspect re-rank``: the timbre slider set to 0 until the 100 rows are redrawn;
   - ``hover``: the hover label of a map point (its text: does it name the sound, its folder?);
   - ``--first 1min`` or ``--first short`` (a 0.1-3 s one-shot): that query first instead
     (where the 5-minute one kills the kernel, so that the steps below can be timed on both
     sides; earlier steps' results are kept);
   - ``upload 15 min``: the 15-minute file until its rows are drawn, or the kernel died (a
     dialog or the status bar says so), or a timeout.

   Screenshots of each step: ``/tmp/soundslike-bench/browser-shots/{before,after}-*.png``.
3. A table: step, before, after (seconds), with notes. Each checkout's numbers are also saved
   as JSON beside the library, so ``--only after`` reruns one side and still prints both.

Reading it: times are wall-clock on whatever this machine is (2 shared cores here: the browser,
the server and the kernel compete, so +-20 % between runs is noise). "died" means the kernel
was lost; "timeout" that nothing was drawn within ``--timeout`` seconds.

    .venv/bin/python benchmarks/browser_app.py                        # builds once: ~10-20 min
    .venv/bin/python benchmarks/browser_app.py --only after           # rerun one side
    .venv/bin/python benchmarks/browser_app.py --before /tmp/before   # the old checkout's path
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path("/tmp/soundslike-bench")
CHROMIUM = Path(os.environ.get("SOUNDSLIKE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required"]
RATE = 44100
KITS = ["Kit A", "Kit B", "Kit C", "Field Recordings", "Vendor X"]
CATEGORIES = {  # folder -> (file stem, kind of sound)
    "Impacts": ("impact", "tone"), "Whooshes": ("whoosh", "noise"), "UI": ("click", "tone"),
    "Footsteps": ("step", "noise"), "Doors": ("door", "noise"), "Lasers": ("laser", "chirp"),
}
LONG_FOLDERS = ["Ambiences/Forest", "Ambiences/City", "Music/Loops"]


# -- the library ---------------------------------------------------------------------------------

def _envelope(rng, n: int) -> np.ndarray:
    t = np.linspace(0, 1, n, dtype=np.float32)
    kind = rng.integers(4)
    if kind == 0:  # percussive
        return np.exp(-rng.uniform(3, 25) * t)
    if kind == 1:  # attack then release
        peak = rng.uniform(0.05, 0.6)
        return np.where(t < peak, t / peak, np.exp(-rng.uniform(2, 8) * (t - peak)))
    if kind == 2:  # swell (reversed)
        return np.exp(-rng.uniform(3, 15) * (1 - t))
    return np.clip(np.minimum(t / 0.05, (1 - t) / 0.2), 0, 1) * (0.7 + 0.3 * np.sin(
        2 * np.pi * rng.uniform(2, 12) * t))  # sustained with tremolo


def _band_noise(rng, n: int, low: float, high: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n).astype(np.float32))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < low) | (freqs > high)] = 0
    out = np.fft.irfft(spectrum, n).astype(np.float32)
    return out / (np.abs(out).max() + 1e-9)


def short_sound(rng, kind: str) -> np.ndarray:
    n = int(RATE * rng.uniform(0.1, 3.0))
    t = np.arange(n, dtype=np.float32) / RATE
    if kind == "tone":
        f0 = rng.uniform(60, 2000)
        wave = sum(np.sin(2 * np.pi * f0 * h * t) / h**rng.uniform(0.5, 2) for h in range(1, 6))
    elif kind == "chirp":
        f0, f1 = rng.uniform(200, 6000, 2)
        wave = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1] + 1e-9)))
    else:
        low = rng.uniform(50, 3000)
        wave = _band_noise(rng, n, low, low * rng.uniform(1.5, 8))
    wave = wave * _envelope(rng, n) + 0.003 * rng.standard_normal(n)
    return (0.8 * wave / (np.abs(wave).max() + 1e-9)).astype(np.float32)


def long_sound(rng, minutes: float, music: bool) -> np.ndarray:
    n = int(RATE * 60 * minutes)
    if not music:  # ambience: slowly moving band noise with random events
        bed = _band_noise(rng, n, rng.uniform(80, 400), rng.uniform(2000, 9000))
        swell = 0.6 + 0.4 * np.sin(2 * np.pi * np.arange(n, dtype=np.float32) / RATE
                                   / rng.uniform(5, 40))
        wave = 0.3 * bed * swell
        for start in rng.integers(0, n - RATE, int(minutes * 20)):
            event = short_sound(rng, rng.choice(["tone", "chirp"]))
            end = min(n, start + event.size)
            wave[start:end] += 0.3 * event[:end - start]
    else:  # a loop of a few notes with a noise hat, repeated
        bar = int(RATE * rng.uniform(1.5, 3))
        loop = np.zeros(bar, np.float32)
        t = np.arange(bar // 4, dtype=np.float32) / RATE
        for beat in range(4):
            f = rng.choice([110, 147, 165, 196, 220, 262]) * rng.choice([1, 2])
            note = np.sin(2 * np.pi * f * t) * np.exp(-6 * t)
            loop[beat * (bar // 4):beat * (bar // 4) + t.size] += note
        loop += 0.2 * _band_noise(rng, bar, 6000, 12000) * (np.arange(bar) % (bar // 8) < 800)
        wave = np.tile(loop, n // bar + 1)[:n]
    return (0.8 * wave / (np.abs(wave).max() + 1e-9)).astype(np.float32)


def query_sound(path: Path, minutes: float, seed: int) -> None:
    """A stereo 48 kHz 16-bit WAV, written in chunks: an ambience with events."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", samplerate=48000, channels=2, subtype="PCM_16") as out:
        for _chunk in range(int(minutes)):
            mono = long_sound(rng, 1.0, music=False)
            mono = np.interp(np.arange(48000 * 60) * RATE / 48000, np.arange(mono.size), mono)
            out.write(np.stack([mono, np.roll(mono, 300)], axis=1).astype(np.float32) * 0.7)


def build_folder(lib: Path, shorts: int, longs: int, seed: int = 0) -> None:
    """The library's sound files (once: a stamp file marks a finished folder)."""
    import soundfile as sf

    stamp = lib.parent / f"folder-{shorts}-{longs}-{seed}.done"
    if stamp.exists():
        return
    shutil.rmtree(lib, ignore_errors=True)
    rng = np.random.default_rng(seed)
    folders = [(f"{kit}/{cat}", stem, kind) for kit in KITS
               for cat, (stem, kind) in CATEGORIES.items()]  # 30 folders, names repeat
    for number in range(shorts):
        folder, stem, kind = folders[number % len(folders)]
        path = lib / folder / f"{stem} {number // len(folders) + 1:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, short_sound(rng, kind), RATE, subtype="PCM_16")
    for number in range(longs):
        folder = LONG_FOLDERS[number % len(LONG_FOLDERS)]
        music = folder.startswith("Music")
        path = lib / folder / f"{'loop' if music else 'ambience'} {number // 3 + 1:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, long_sound(rng, rng.uniform(1, 8), music), RATE, subtype="PCM_16")
    stamp.touch()


def build_queries(where: Path) -> dict[str, Path]:
    queries = {"5min": where / "query 5 min.wav", "15min": where / "query 15 min.wav",
               "1min": where / "query 1 min.wav", "short": where / "query short.wav"}
    if not queries["short"].exists():  # a 0.1-3 s one-shot like the library's
        import soundfile as sf

        sf.write(queries["short"], short_sound(np.random.default_rng(7), "tone"), RATE)
    for seed, (key, path) in enumerate(queries.items(), start=100):
        if key != "short" and not path.exists():
            partial = path.with_suffix(".part.wav")
            query_sound(partial, int(key.removesuffix("min")), seed)
            partial.rename(path)
    return queries


def index_library(checkout: Path, folder: Path, library: Path) -> dict:
    """The product's own build, then its map and index fitted once (as the notebook would)."""
    env = dict(os.environ, PYTHONPATH=str(checkout), PYTHONUNBUFFERED="1")
    timings: dict = {}
    if not library.exists():
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "soundslike_nb", "index", str(folder), "-o",
                        str(library), "--quiet"], cwd=checkout, env=env, check=True)
        timings["build_s"] = time.monotonic() - start
    prepare = ("import time, soundslike_nb; t = time.monotonic()\n"
               "from soundslike_nb.app import App, open_library\n"
               f"lib = open_library({str(library)!r}, folders=None, progress=False)\n"
               "App(lib, progress=False)\n"
               "print(soundslike_nb.__file__, len(lib), time.monotonic() - t)\n")
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-c", prepare], cwd=checkout, env=env, check=True,
                         capture_output=True, text=True).stdout
    timings["prepare_s"] = time.monotonic() - start
    timings["prepare_out"] = out.strip().splitlines()[-1]
    return timings


# -- the browser ---------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_lab(checkout: Path, home: Path):
    token, port = secrets.token_hex(16), _free_port()
    settings = home / "settings" / "@jupyterlab"
    for plugin, text in [
        ("apputils-extension/notification", '{"fetchNews": "false", "checkForUpdates": false}'),
        ("docmanager-extension/plugin", '{"autosave": false}'),
    ]:
        (settings / plugin).parent.mkdir(parents=True, exist_ok=True)
        (settings / f"{plugin}.jupyterlab-settings").write_text(text)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        f"--port={port}", "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={checkout}", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
        f"--LabApp.user_settings_dir={home / 'settings'}",
    ]
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(home / "runtime"), PYTHONUNBUFFERED="1",
               PYTHONPATH=str(checkout))
    log = open(home / "lab.log", "wb")  # noqa: SIM115 - closed by stop_lab
    server = subprocess.Popen(command, cwd=checkout, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}",
                                        timeout=2):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("JupyterLab did not start:\n"
                                   + (home / "lab.log").read_text()) from None
            time.sleep(0.5)
    return server, log, f"http://127.0.0.1:{port}", token


def stop_lab(server, log) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    log.close()


def bench_notebook(checkout: Path, library: Path) -> Path:
    notebook = json.loads((checkout / "notebooks" / "soundslike.ipynb").read_text())
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and re.search(r"^LIBRARY = ", source, re.M):
            source = re.sub(r"^LIBRARY = .*$", f"LIBRARY = {str(library)!r}", source, flags=re.M)
            source = re.sub(r"^FOLDERS = .*$", "FOLDERS = None", source, flags=re.M)
            source += "\nimport soundslike_nb; print('soundslike_nb from', soundslike_nb.__file__)"
            cell["source"] = source
        cell["outputs"] = [] if cell["cell_type"] == "code" else cell.get("outputs")
        if cell["cell_type"] != "code":
            cell.pop("outputs", None)
    path = checkout / "notebooks" / "_bench.ipynb"
    path.write_text(json.dumps(notebook, indent=1))
    return path


DEAD_JS = ("() => { const text = document.body.innerText;"
           " return /appears to have died|Kernel Restarting|\\| (Restarting|Dead|Unknown)/"
           ".test(text); }")
ROWS_JS = "() => document.querySelectorAll('.soundslike-app .soundslike-result').length"
TEXT_JS = ("() => [...document.querySelectorAll('.soundslike-app .soundslike-result')]"
           ".map(row => row.innerText).join('|')")
BUSY_JS = ("() => { const b = document.querySelector('.soundslike-app .soundslike-busy');"
           " return b ? b.innerText : ''; }")


class Driver:
    def __init__(self, page, label: str, shots: Path, timeout: float):
        self.page, self.label, self.shots, self.timeout = page, label, shots, timeout
        self.results: dict[str, dict] = {}

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{self.label}-{name}.png"), full_page=False)

    def wait(self, condition, timeout: float | None = None) -> dict:
        """Poll ``condition()`` (a Python callable over the page) from now: the seconds until it
        is true, whether the kernel died first, a timeout, and the first busy text seen."""
        start, busy, busy_at = time.monotonic(), "", None
        deadline = start + (timeout or self.timeout)
        while True:
            now = time.monotonic()
            try:
                if condition():
                    return {"s": now - start, "busy": busy, "busy_at": busy_at}
                text = self.page.evaluate(BUSY_JS)
                if text and not busy:
                    busy, busy_at = text, now - start
                if self.page.evaluate(DEAD_JS):
                    return {"s": None, "outcome": "died", "after_s": now - start, "busy": busy}
            except Exception as exc:  # a page that navigates or closes
                return {"s": None, "outcome": f"error: {exc}", "busy": busy}
            if now > deadline:
                return {"s": None, "outcome": "timeout", "after_s": now - start, "busy": busy}
            time.sleep(0.1)

    def rows(self) -> int:
        return self.page.evaluate(ROWS_JS)

    def text(self) -> str:
        return self.page.evaluate(TEXT_JS)

    def status(self) -> str:
        """The after app's status line ("N results, most similar ...", a notice), if any."""
        text = self.page.locator(".soundslike-app").inner_text()
        lines = [line for line in text.splitlines()
                 if re.search(r"\d+ results?,|No other sound|similar length|analys", line)]
        return " / ".join(lines)[:200]

    def set_readout(self, slider, value: str) -> None:
        slider.locator(".widget-readout").first.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.type(value)
        self.page.keyboard.press("Enter")

    def k_slider(self):
        return self.page.locator(".soundslike-app .widget-slider").first

    def aspect_slider(self, aspect: str):
        return self.page.locator(".soundslike-app .widget-slider",
                                 has=self.page.locator("label", has_text=re.compile(f"^{aspect}$")))

    def upload(self, path: Path, key: str) -> dict:
        before_text = self.text()
        with self.page.expect_file_chooser() as chooser:
            self.page.locator(".soundslike-upload").first.click()
        chooser.value.set_files(str(path))
        result = self.wait(lambda: self.rows() > 0 and self.text() != before_text
                           and path.name in self.page.locator(".soundslike-app").inner_text())
        result["rows"] = self.rows()
        errors = self.page.locator(".soundslike-app .soundslike-error")
        result["error"] = errors.first.inner_text().strip() if errors.count() else ""
        self.results[key] = result
        return result

    def set_k(self, k: int, key: str | None, expect: int | None = None) -> dict:
        """k typed into the readout; until ``expect`` rows (default k) are drawn, or, with
        ``expect=0``, until the row count changes (or, where it does not, has been steady for
        5 s: then the time says nothing)."""
        previous = self.rows()
        self.set_readout(self.k_slider(), str(k))
        if expect == 0:
            seen = {"n": previous, "since": time.monotonic()}

            def changed() -> bool:
                n = self.rows()
                if n != seen["n"]:
                    seen["n"], seen["since"] = n, time.monotonic()
                return n != previous or time.monotonic() - seen["since"] > 5

            result = self.wait(changed)
            if result["s"] is not None and self.rows() == previous:
                result["s"], result["outcome"] = None, "no change in 5 s"
        else:
            result = self.wait(lambda: self.rows() == (expect or k))
        result["rows"] = self.rows()
        if key:
            self.results[key] = result
        return result


def drive(page, url: str, token: str, label: str, queries: dict[str, Path], shots: Path,
          timeout: float, after_like: bool, first: str = "5min") -> dict:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    d = Driver(page, label, shots, timeout)
    page.set_default_timeout(60_000)
    page.goto(f"{url}/lab/tree/notebooks/_bench.ipynb?reset&token={token}")
    page.locator(".jp-Notebook").wait_for()
    page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).wait_for(timeout=90_000)
    for _attempt in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            page.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]")).first.wait_for(
                timeout=15_000)
            break
        except PlaywrightTimeout:
            continue
    shown = d.wait(lambda: page.locator(
        ".soundslike-app .js-plotly-plot .scatterlayer").count() > 0, timeout=300)
    d.results["app shown"] = shown
    if shown["s"] is None:
        d.shot("0-no-app")
        return d.results
    page.wait_for_timeout(1000)
    page.locator(".soundslike-app").scroll_into_view_if_needed()
    source = page.locator(".jp-OutputArea-output", has_text="soundslike_nb from").first
    d.results["module"] = source.inner_text().strip() if source.count() else "?"
    d.shot("1-app-shown")

    # The first upload (5 minutes; ``--first 1min`` where that kills the kernel).
    up = d.upload(queries[first], f"upload {first.replace('min', ' min')}")
    d.shot(f"2-upload-{first}")
    if up["s"] is None:
        return d.results
    page.wait_for_timeout(1000)

    # k = 100 with the similar-length window as it is (on by default after).
    window = page.locator(".soundslike-app .widget-checkbox",
                          has_text=re.compile("similar length"))
    has_window = window.count() > 0
    d.results["window on by default"] = {"value": has_window and window.locator(
        "input").first.is_checked()}
    if has_window and window.locator("input").first.is_checked():
        d.set_k(100, "k 10 -> 100 (window on)", expect=0)
        d.results["k 10 -> 100 (window on)"]["status"] = d.status()
        d.shot("3a-k100-window-on")
        old = d.text()
        window.locator("input").first.click()
        untick = d.wait(lambda: d.rows() == 100 and d.text() != old)
        untick["rows"] = d.rows()
        d.results["untick similar length (k=100)"] = untick
        d.shot("3b-k100-window-off")
    d.set_k(10, None)
    page.wait_for_timeout(1000)
    d.set_k(100, "k 10 -> 100")
    d.shot("3c-k100")
    # Let any lazily loaded media settle before the next step.
    page.wait_for_timeout(1500)

    # An aspect slider moved: re-rank of the 100 rows.
    old = d.text()
    slider = d.aspect_slider("timbre")
    if slider.count():
        d.set_readout(slider, "0")
        rerank = d.wait(lambda: d.rows() == 100 and d.text() != old)
        rerank["rows"] = d.rows()
        d.results["aspect re-rank (timbre 0, k=100)"] = rerank
        d.shot("4-timbre-0")
        buttons = page.get_by_role("button", name="default weights")
        if buttons.count():
            buttons.click()
            page.wait_for_timeout(1500)

    # Hover a library point on the map.
    try:
        plot = page.locator(".soundslike-app .js-plotly-plot").first
        plot.scroll_into_view_if_needed()
        point = page.locator(".soundslike-app .scatterlayer .trace").first.locator(
            "path.point").nth(25)
        box = point.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2 - 3, box["y"] + box["height"] / 2 - 3)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(800)
        label_text = page.evaluate(
            "() => [...document.querySelectorAll('.soundslike-app .hoverlayer .hovertext')]"
            ".map(h => h.textContent).join(' / ')")
        d.results["hover"] = {"text": label_text}
        d.shot("5-hover")
        page.mouse.move(5, 5)
    except Exception as exc:  # report it, go on
        d.results["hover"] = {"text": f"(failed: {exc})"}

    # The 15-minute upload.
    d.set_k(10, "k 100 -> 10 (before the 15 min upload)")
    page.wait_for_timeout(1000)
    up15 = d.upload(queries["15min"], "upload 15 min")
    d.shot("6-upload-15min")
    if up15["s"] is not None and after_like:
        d.results["upload 15 min"]["status"] = d.status()
    page.wait_for_timeout(1000)
    page.locator(".soundslike-app").scroll_into_view_if_needed()
    d.shot("7-end")
    return d.results


def run_checkout(label: str, checkout: Path, library: Path, queries: dict[str, Path],
                 shots: Path, timeout: float, first: str = "5min") -> dict:
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix=f"soundslike-lab-{label}-"))
    notebook = bench_notebook(checkout, library)
    server, log = None, None
    try:
        server, log, url, token = start_lab(checkout, home)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_FLAGS)
            try:
                page = browser.new_context(viewport={"width": 1800, "height": 1100}).new_page()
                try:
                    return drive(page, url, token, label, queries, shots, timeout,
                                 after_like=label != "before", first=first)
                except Exception as exc:
                    page.screenshot(path=str(shots / f"{label}-failure.png"))
                    return {"failure": {"s": None, "outcome": f"{type(exc).__name__}: {exc}"}}
            finally:
                browser.close()
    finally:
        if server is not None:
            stop_lab(server, log)
            shutil.copy(home / "lab.log", BENCH / f"browser-lab-{label}.log")
        notebook.unlink(missing_ok=True)
        shutil.rmtree(home, ignore_errors=True)


def _cell(result: dict | None) -> str:
    if not result:
        return "-"
    if result.get("s") is not None:
        return f"{result['s']:.1f}"
    if "outcome" in result:
        return f"{result['outcome']}" + (f" @{result['after_s']:.0f}s" if "after_s" in result
                                         else "")
    return "-"


def _note(result: dict | None) -> str:
    if not result:
        return ""
    notes = []
    if "rows" in result:
        notes.append(f"{result['rows']} rows")
    if result.get("busy"):
        notes.append(f"busy shown @{result.get('busy_at') or 0:.1f}s: {result['busy'][:60]!r}")
    if result.get("error"):
        notes.append(f"error: {result['error'][:100]!r}")
    if result.get("status"):
        notes.append(f"status: {result['status'][:90]!r}")
    if "text" in result:
        notes.append(repr(result["text"][:120]))
    if "value" in result:
        notes.append(str(result["value"]))
    return "; ".join(notes)


def print_table(both: dict[str, dict]) -> None:
    steps: list[str] = []
    for side in both.values():
        for key in side.get("browser", {}):
            if key not in steps and key != "module":
                steps.append(key)
    print(f"\n{'step':38} {'before':>16} {'after':>16}  notes (before | after)")
    for name in ("build_s", "prepare_s"):
        cells = [both.get(s, {}).get("setup", {}).get(name) for s in ("before", "after")]
        print(f"{name.replace('_s', ' (CLI index)' if name == 'build_s' else ' (map+index)'):38} "
              + " ".join(f"{c:16.1f}" if c is not None else f"{'cached':>16}" for c in cells))
    for step in steps:
        results = [both.get(s, {}).get("browser", {}).get(step) for s in ("before", "after")]
        notes = " | ".join(_note(r) for r in results)
        print(f"{step:38} {_cell(results[0]):>16} {_cell(results[1]):>16}  {notes}")
    for side in ("before", "after"):
        if side in both:
            print(f"{side}: {both[side].get('browser', {}).get('module', '?')}; "
                  f"prepared: {both[side].get('setup', {}).get('prepare_out', '')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, default=Path("/tmp/before"),
                        help="the old checkout (default /tmp/before)")
    parser.add_argument("--after", type=Path, default=ROOT, help="the new checkout (this one)")
    parser.add_argument("--only", choices=["before", "after"], help="run one side only")
    parser.add_argument("--shorts", type=int, default=2500, help="one-shots (default 2500)")
    parser.add_argument("--longs", type=int, default=30, help="files of 1-8 min (default 30)")
    parser.add_argument("--timeout", type=float, default=240,
                        help="seconds to wait for each step in the browser (default 240)")
    parser.add_argument("--first", choices=["5min", "1min", "short"], default="5min",
                        help="the first query uploaded: 1min or short (a one-shot) where 5min "
                             "kills the kernel (earlier steps' results are kept)")
    parser.add_argument("--build-only", action="store_true", help="build, do not open a browser")
    args = parser.parse_args()

    where = BENCH / "browser-lib"
    shots = BENCH / "browser-shots"
    where.mkdir(parents=True, exist_ok=True)
    shots.mkdir(parents=True, exist_ok=True)
    folder = where / "sounds"
    start = time.monotonic()
    build_folder(folder, args.shorts, args.longs)
    queries = build_queries(where)
    print(f"sound files ready ({time.monotonic() - start:.0f} s): {folder}", flush=True)
    sides = [args.only] if args.only else ["before", "after"]
    for label in sides:
        checkout = args.before if label == "before" else args.after
        library = where / f"{label}.parquet"
        saved = where / f"results-{label}.json"
        old = json.loads(saved.read_text()) if saved.exists() else {}
        setup = index_library(checkout.resolve(), folder, library)
        setup = {**old.get("setup", {}), **setup}
        print(f"{label}: {setup}", flush=True)
        result = {"setup": setup, "browser": old.get("browser", {})}
        if not args.build_only:
            if args.first == "5min":
                for png in shots.glob(f"{label}-*.png"):
                    png.unlink()
            browser = run_checkout(label, checkout.resolve(), library, queries, shots,
                                   args.timeout, args.first)
            result["browser"] = ({**result["browser"], **browser} if args.first != "5min"
                                 else browser)
        saved.write_text(json.dumps(result, indent=1))
    both = {label: json.loads((where / f"results-{label}.json").read_text())
            for label in ("before", "after") if (where / f"results-{label}.json").exists()}
    print_table(both)


if __name__ == "__main__":
    main()
