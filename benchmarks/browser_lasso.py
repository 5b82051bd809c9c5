"""How interactive the app's map stays at 100,000 points, in a real browser (JupyterLab + Chromium).

For each size (default 10,000 as the baseline, then 100,000 sounds) a notebook builds a library
in memory (seeded 512-d embeddings, descriptors and durations from the generator calibrated on
real sounds, ``benchmarks/library_generator.py``; ``--clustered``: noise-like Zipf-sized
clusters, on which the IVF index falls back to exact search; 24 top-level folders; a fake
embedder, no audio, no library file, so labels are not written to disk) with a **PCA** map
(``LibraryMap(method="pca")``: UMAP on 100k points takes minutes), and shows
``App(library, atlas=atlas)``. Playwright then measures, as a user would:

- **map drawn**: from the notebook saying the library is built (cell 1) to the map's points
  visible (cell 2 builds the App in the kernel, the widgets travel, plotly draws); seen as
  coloured pixels in screenshots of the plot, polled, so within a few tenths of a second;
- **lasso -> chosen**: "lasso" picked, a loop drawn round the left half of the map with the
  mouse; from mouse-up until the labels panel says "N sounds chosen" (the drag itself is timed
  apart: plotly selects while the mouse moves);
- **label them -> updated**: "impacts" typed, "label them" clicked; until the panel's
  suggestion line has changed and no longer says "suggesting labels…" (labels put on,
  suggestions computed);
- **colour by label**: the map's "colour by" set to "label"; until the colour bar titled
  "label" is drawn.

Screenshots: ``/tmp/soundslike-lasso-<size>-*.png``. WebGL runs in SwiftShader (software, on
the CPU: no GPU here), so drawing times are upper bounds for a machine with a GPU; the machine's
2 cores are shared, so all timings are indicative. JupyterLab is started by
``tests/browser.py``'s ``running_lab``; Debian's Chromium at ``/usr/bin/chromium``.

Run (about 3 minutes on 2 shared cores; 8 with --clustered, most of it labelling at 100k)::

    .venv/bin/python benchmarks/browser_lasso.py
    .venv/bin/python benchmarks/browser_lasso.py --sizes 10000   # the baseline alone, ~1 min
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import (  # noqa: E402
    SKIP_REASON,
    chromium_page,
    draw_lasso,
    open_notebook,
    run_all_cells,
    running_lab,
)

SHOTS = Path("/tmp")
LABEL = "impacts"

# Cell 1: the library and its PCA map, built in memory (what the fixtures of
# tests/test_app_state.py do, at scale). COUNT and the generator are put in by `notebook`.
BUILD_CELL = '''\
import sys
import time

import numpy as np
import pandas as pd

from soundslike_nb.libfile import ROW_COLUMNS, LibraryTable
from soundslike_nb.library import Library
from soundslike_nb.projection import LibraryMap

COUNT, DIMENSION, RATE = {count}, 512, 16000


class FakeEmbedder:
    """A stand-in model: nothing is uploaded in this benchmark, the App only warms it up."""

    id, sample_rate, dimension = "bench-fake", RATE, DIMENSION

    @property
    def provenance(self):
        return {{"id": self.id, "dimension": DIMENSION, "weights_sha256": "0" * 64,
                 "sample_rate": RATE}}

    def embed(self, waveforms):
        rng = np.random.default_rng(len(waveforms))
        return rng.standard_normal((len(waveforms), DIMENSION)).astype(np.float32)


started = time.perf_counter()
rng = np.random.default_rng(7)
if {clustered}:  # noise-like clusters: the IVF index cannot tell neighbours apart, search is exact
    clusters = 40
    weights = 1.0 / np.arange(1, clusters + 1)
    cluster = rng.choice(clusters, size=COUNT, p=weights / weights.sum())
    centres = rng.standard_normal((clusters, DIMENSION)).astype(np.float32)
    embeddings = (centres[cluster]
                  + 0.6 * rng.standard_normal((COUNT, DIMENSION), dtype=np.float32))
    descriptors = None
    durations_s = np.exp(rng.uniform(np.log(0.05), np.log(600.0), COUNT))
else:  # calibrated on real sounds (benchmarks/library_generator.py), with descriptors
    sys.path.insert(0, {root!r})
    from benchmarks.library_generator import generate

    embeddings, descriptors, durations_s = generate(COUNT, seed=7)
    cluster = rng.integers(24, size=COUNT)
paths = [f"/sfx/pack {{c % 24:02d}}/kind {{c % 5}}/sound {{i:06d}}.wav"
         for i, c in enumerate(cluster.tolist())]
rows = pd.DataFrame({{"name": [path.rsplit("/", 1)[1] for path in paths], "path": paths,
                     "duration": durations_s, "sample_rate": RATE, "channels": 1,
                     "frames": (durations_s * RATE).astype(int), "size": 0, "mtime": 0.0}})
embedder = FakeEmbedder()
table = LibraryTable(rows=rows.astype(ROW_COLUMNS), embeddings=embeddings,
                     descriptors=descriptors,
                     provenance={{"embedder": embedder.provenance, "roots": ["/sfx"]}})
library = Library(table, embedder=embedder)
atlas = LibraryMap(method="pca").fit(library.embeddings)
print(f"library ready: {{len(library)}} sounds, {{atlas.note}}, "
      f"built in {{time.perf_counter() - started:.1f}} s")
'''

APP_CELL = '''\
from soundslike_nb.app import App

started = time.perf_counter()
app = App(library, atlas=atlas, upload_folder={uploads!r})
print(f"App built in {{time.perf_counter() - started:.1f}} s")
app
'''

# The share of a plot screenshot's pixels that must be coloured for its points to count as drawn
# (the title alone is well under 1 %; 10k points of size 4 cover over 10 %).
DRAWN_SHARE = 0.03
PLOT = ".soundslike-app .js-plotly-plot"
LABEL_BAR_JS = ("() => [...document.querySelectorAll('" + PLOT + " .colorbar text')]"
                ".some(t => t.textContent.trim() === 'label')")
DRAGMODE_JS = "() => document.querySelector('" + PLOT + "')?._fullLayout?.dragmode"
PANEL_JS = ("() => { const p = document.querySelector('.soundslike-labels');"
            " if (!p) return ''; const b = [...p.querySelectorAll('button')].find("
            "b => /^accept /.test(b.textContent.trim())); const s = p.querySelectorAll("
            "'.widget-html'); return (b ? b.textContent.trim() : '') + ' | ' + "
            "[...s].map(h => h.textContent.trim()).join(' | '); }")


def notebook(folder: Path, count: int, clustered: bool) -> str:
    """Write the benchmark's notebook for ``count`` sounds into ``folder``; its name."""
    cells = [BUILD_CELL.format(count=count, clustered=clustered, root=str(ROOT)),
             APP_CELL.format(uploads=str(folder / f"uploads-{count}"))]
    document = {
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                   "source": source.splitlines(keepends=True)} for source in cells],
        "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    name = f"lasso-{count}.ipynb"
    (folder / name).write_text(json.dumps(document, indent=1))
    return name


def wait_until(condition: Callable[[], bool], timeout: float, every: float = 0.1) -> float | None:
    """Seconds until ``condition()`` is true, polled; ``None`` after ``timeout`` seconds."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            return None
        time.sleep(every)


def coloured_share(page) -> float:
    """The share of the plot's pixels that are not (nearly) white, from a screenshot."""
    import numpy as np
    from PIL import Image

    plot = page.locator(PLOT).first
    if not plot.count():
        return 0.0
    pixels = np.asarray(Image.open(io.BytesIO(plot.screenshot())).convert("RGB"), dtype=np.int16)
    return float((pixels.sum(axis=2) < 3 * 235).mean())


def shot(page, count: int, step: str) -> None:
    page.screenshot(path=str(SHOTS / f"soundslike-lasso-{count}-{step}.png"), full_page=False)


def panel_text(page) -> str:
    return page.evaluate(PANEL_JS)


def measure(page, url: str, token: str, name: str, count: int, timeout: float) -> dict:
    """Drive one notebook: the four timings (``None``: timed out) and what was seen."""
    result: dict = {"points": count}
    page.set_default_timeout(60_000)
    open_notebook(page, url, token, name)

    # (a) The map: Run All, the library built in the kernel, then the App until points show.
    run_started = time.monotonic()
    run_all_cells(page)
    ready = page.locator(".jp-OutputArea-output", has_text="library ready")
    ready.wait_for(timeout=timeout * 1000)
    ready_at = time.monotonic()
    result["built"] = ready.inner_text().strip()
    result["library_s"] = ready_at - run_started
    page.locator(PLOT).first.wait_for(timeout=timeout * 1000)
    page.locator(PLOT).first.scroll_into_view_if_needed()
    drawn = wait_until(lambda: coloured_share(page) > DRAWN_SHARE, timeout, every=0.05)
    result["map_s"] = None if drawn is None else time.monotonic() - ready_at
    result["run_all_to_map_s"] = None if drawn is None else time.monotonic() - run_started
    app_line = page.locator(".jp-OutputArea-output", has_text="App built in")
    result["app_built"] = app_line.first.inner_text().strip() if app_line.count() else "?"
    shot(page, count, "1-map")
    if drawn is None:
        return result

    # (b) Lasso round the left half of the map, as tests/test_browser_organise.py draws it.
    labels = page.locator(".soundslike-labels")
    labels.scroll_into_view_if_needed()
    labels.get_by_role("button", name="lasso").click()
    if wait_until(lambda: page.evaluate(DRAGMODE_JS) == "lasso", 60) is None:
        result["error"] = "the map's drag mode never became lasso"
        return result
    plot = page.locator(PLOT + " .nsewdrag").first
    plot.scroll_into_view_if_needed()
    drag_started = time.monotonic()
    draw_lasso(page, plot, [(0.02, 0.02), (0.5, 0.02), (0.5, 0.98), (0.02, 0.98), (0.02, 0.03)])
    result["drag_s"] = time.monotonic() - drag_started
    chosen = labels.locator(".widget-html", has_text=re.compile(r"\d+ sounds? chosen"))
    result["lasso_s"] = wait_until(lambda: chosen.count() > 0, timeout)
    if result["lasso_s"] is None:
        shot(page, count, "2-lasso-timeout")
        return result
    result["chosen"] = int(re.search(r"(\d+) sounds? chosen", chosen.inner_text()).group(1))
    page.wait_for_timeout(500)
    shot(page, count, "2-lasso")

    # (c) Label them: the panel's suggestion line changes once labels and suggestions are in.
    labels.locator("input[type=text]").first.fill(LABEL)
    before = panel_text(page)
    labels.get_by_role("button", name="label them").click()
    # The panel changes twice: "suggesting labels…" at once, then the suggestions.
    result["label_s"] = wait_until(
        lambda: (text := panel_text(page)) != before and "suggesting labels" not in text,
        timeout, every=0.2)
    result["panel"] = panel_text(page)
    errors = labels.locator(".soundslike-error")
    result["panel_error"] = errors.first.inner_text().strip() if errors.count() else ""
    shot(page, count, "3-labelled")
    if result["label_s"] is None:
        return result

    # (d) Colour by label: until the colour bar titled "label" is drawn.
    colour = page.locator(".soundslike-app .widget-dropdown", has_text="colour by")
    colour.scroll_into_view_if_needed()
    colour.locator("select").select_option(label="label")
    result["colour_s"] = wait_until(lambda: page.evaluate(LABEL_BAR_JS), timeout)
    page.wait_for_timeout(1000)
    page.locator(PLOT).first.scroll_into_view_if_needed()
    shot(page, count, "4-colour-by-label")
    return result


def shut_down_kernels(url: str, token: str) -> None:
    """End the notebook's kernel so that the next size has the cores to itself."""
    with urllib.request.urlopen(f"{url}/api/sessions?token={token}", timeout=10) as response:
        sessions = json.load(response)
    for session in sessions:
        request = urllib.request.Request(
            f"{url}/api/sessions/{session['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


def seconds(value: float | None) -> str:
    return "timeout" if value is None else f"{value:.1f}"


def print_table(results: list[dict]) -> None:
    print("\n| points | map drawn (s) | lasso → chosen (s) | label them → updated (s) "
          "| colour by label (s) | sounds chosen |")
    print("|---:|---:|---:|---:|---:|---:|")
    for result in results:
        print(f"| {result['points']:,} | {seconds(result.get('map_s'))} "
              f"| {seconds(result.get('lasso_s'))} | {seconds(result.get('label_s'))} "
              f"| {seconds(result.get('colour_s'))} | {result.get('chosen', '-')} |")
    print("\nmap drawn: from the notebook's 'library ready' to points on screen (App built in "
          "the kernel, widgets sent, plotly drawing with WebGL in SwiftShader). The map is PCA.")
    for result in results:
        print(f"- {result['points']:,}: {result.get('built', '?')}; "
              f"Run All -> library {seconds(result.get('library_s'))} s, "
              f"-> map {seconds(result.get('run_all_to_map_s'))} s; "
              f"{result.get('app_built', '?')}; "
              f"lasso drag (mouse down to up) {seconds(result.get('drag_s'))} s; "
              f"panel after labelling: {result.get('panel', '?')!r}"
              + (f"; error: {result['panel_error']!r}" if result.get("panel_error") else "")
              + (f"; {result['error']}" if result.get("error") else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000],
                        help="library sizes, in order (default 10000 100000)")
    parser.add_argument("--clustered", action="store_true",
                        help="noise-like clusters instead of the calibrated generator: the "
                             "search index falls back to exact search (slow labelling)")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds to wait for each step (default 900)")
    args = parser.parse_args()
    if SKIP_REASON is not None:
        raise SystemExit(SKIP_REASON)

    results = []
    with tempfile.TemporaryDirectory(prefix="soundslike-lasso-") as folder:
        names = {count: notebook(Path(folder), count, args.clustered) for count in args.sizes}
        with running_lab(Path(folder), log_name="browser-lasso-lab.log") as (url, token):
            for count in args.sizes:
                with chromium_page(stale_shots="browser-lasso-*.png") as page:
                    try:
                        result = measure(page, url, token, names[count], count, args.timeout)
                    except Exception as exc:  # report it, go on with the next size
                        shot(page, count, "failure")
                        result = {"points": count, "error": f"{type(exc).__name__}: {exc}"}
                print(json.dumps(result), flush=True)
                results.append(result)
                shut_down_kernels(url, token)
    print_table(results)


if __name__ == "__main__":
    main()
