"""What the browser tests share: Debian's Chromium driven by Playwright, and a JupyterLab server
started here (as root, on a free localhost port, with a random token, offline-quiet)."""

from __future__ import annotations

import contextlib
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
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("SOUNDSLIKE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required"]


def skip_reason() -> str | None:
    """Why a browser test cannot run here (``None``: it can)."""
    if not CHROMIUM.exists():
        return (f"no Chromium at {CHROMIUM}: install Debian's (apt-get install chromium) "
                "to run the browser test")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -e '.[dev]')"
    return None


SKIP_REASON = skip_reason()
#: The marks of a browser test module: slow, browser, and skipped (saying why) where it cannot run.
MARKS = [pytest.mark.browser, pytest.mark.slow,
         pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_lab(root_dir: Path, *, log_name: str = "lab.log") -> Iterator[tuple[str, str]]:
    """JupyterLab serving ``root_dir``: yields ``(url, token)``; stopped afterwards, its log
    copied to ``test-artifacts/browser/<log_name>``."""
    token, port = secrets.token_hex(16), free_port()
    home = Path(tempfile.mkdtemp(prefix="soundslike-lab-"))
    # No news or update prompts (the machine is offline, and a toast would cover the app), and
    # no autosave, which would write this run's outputs into the notebook.
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
        f"--ServerApp.root_dir={root_dir}", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
        f"--LabApp.user_settings_dir={home / 'settings'}",
    ]
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(home / "runtime"), PYTHONUNBUFFERED="1")
    log = open(home / "lab.log", "wb")  # noqa: SIM115 - closed below, after the server
    server = subprocess.Popen(command, cwd=root_dir, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (home / "lab.log").read_text())
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        if ARTIFACTS.exists():
            shutil.copy(home / "lab.log", ARTIFACTS / log_name)
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def chromium_page(*, stale_shots: str, accept_downloads: bool = False) -> Iterator:
    """A Playwright page in headless Chromium (1800 x 1100); screenshots matching
    ``stale_shots`` (a glob in ``test-artifacts/browser/``) from an earlier run are removed."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(stale_shots):
        old.unlink()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1800, "height": 1100},
                                          accept_downloads=accept_downloads)
            yield context.new_page()
        finally:
            browser.close()


def run_all_cells(page) -> None:
    """Run ▸ Run All Cells from the menu, as a user would (again if the kernel was not ready)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _attempt in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            page.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]")).first.wait_for(
                timeout=15_000)
            return
        except PlaywrightTimeout:
            continue


def write_app_notebook(folder: Path, library_path: Path | str) -> Path:
    """The app's notebook written into ``folder``, opening ``library_path`` as it is
    (``FOLDERS = None``), its outputs cleared: the notebook a browser test serves."""
    import json

    notebook = json.loads((ROOT / "notebooks" / "soundslike.ipynb").read_text())
    settings_cells = 0
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if re.search(r"^LIBRARY = ", source, re.M):
            source = re.sub(r"^LIBRARY = .*$", f"LIBRARY = {str(library_path)!r}", source,
                            flags=re.M)
            cell["source"] = re.sub(r"^FOLDERS = .*$", "FOLDERS = None", source, flags=re.M)
            settings_cells += 1
        cell["outputs"], cell["execution_count"] = [], None
    assert settings_cells == 1, "the notebook's settings cell (LIBRARY = ...) was not found"
    path = Path(folder) / "soundslike.ipynb"
    path.write_text(json.dumps(notebook, indent=1))
    return path


def open_notebook(page, url: str, token: str, name: str) -> None:
    """Open notebook ``name`` of the served folder and wait for an idle kernel (answering
    JupyterLab's kernel prompt, which it sometimes shows although the notebook names one)."""
    page.goto(f"{url}/lab/tree/{name}?reset&token={token}")
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=90_000)
    page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).wait_for(timeout=90_000)
    choose_kernel = page.get_by_role("button", name="Select", exact=True)
    if choose_kernel.count():
        choose_kernel.first.click()


def draw_lasso(page, plot, loop: list[tuple[float, float]], *, steps: int = 12) -> None:
    """Drag the mouse over ``plot`` (a locator) through ``loop``: points as shares of its width
    and height, the first where the button goes down, the last where it comes up."""
    box = plot.bounding_box()
    left, top, width, height = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(left + loop[0][0] * width, top + loop[0][1] * height)
    page.mouse.down()
    for x, y in loop[1:]:
        page.mouse.move(left + x * width, top + y * height, steps=steps)
    page.mouse.up()
