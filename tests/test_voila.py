"""`make app`: Voilà serves the notebook as an app, with no notes, code or build log on the page."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .browser import free_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _app_arguments() -> list[str]:
    """The arguments the Makefile's ``app`` target gives Voilà."""
    recipe = re.search(r"^app:.*\n\t\$\(BIN\)/voila (.+)$", (ROOT / "Makefile").read_text(), re.M)
    return shlex.split(recipe[1])


def test_the_app_page_shows_the_app_alone(tmp_path):
    from soundslike_nb.app import open_library

    open_library(ROOT / "data" / "demo.parquet", folders=[ROOT / "data" / "demo"],
                 progress=False).map(progress=False)  # built before, as the README says
    notebook = (ROOT / "notebooks" / "soundslike.ipynb").read_text()
    assert "Run All Cells" in notebook  # the notes the page must leave out
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "voila", "--no-browser", f"--port={port}", *_app_arguments()],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        page = ""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=170) as answer:
                    page = answer.read().decode()
                break
            except OSError:
                time.sleep(1)
        assert "application/vnd.jupyter.widget-view+json" in page  # the app is on the page
        assert "Run All Cells" not in page and "LIBRARY =" not in page
        assert not re.search(r"\d+ sounds \(\d+ embedded", page)  # no build log
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
