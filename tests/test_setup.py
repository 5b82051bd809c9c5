"""The set-up itself: the pinned torch pair imports with pyannote; env files agree; light import."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#;]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


def test_pyannote_imports_with_the_pinned_torch_pair():
    import pyannote.audio
    import torch
    import torchaudio

    pins = _pins()
    assert torch.__version__.split("+")[0] == pins["torch"]
    assert torchaudio.__version__.split("+")[0] == pins["torchaudio"]
    assert pyannote.audio.__version__ == pins["pyannote-audio"]
    # torchaudio's compiled part loads beside this torch (a mismatched pair fails right here)
    assert torchaudio.functional.melscale_fbanks(5, 0.0, 100.0, 2, 200).shape == (5, 2)


def test_pip_check_is_clean():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_environment_yml_installs_what_the_makefile_installs():
    import yaml

    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lines = next(item["pip"] for item in environment["dependencies"]
                     if isinstance(item, dict))
    extras = re.search(r"^EXTRAS\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)[1]
    assert "-c constraints.txt" in pip_lines
    assert f"-e .[{extras}]" in pip_lines
    python = next(item for item in environment["dependencies"]
                  if isinstance(item, str) and item.startswith("python"))
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = project["requires-python"].removeprefix(">=")
    assert tuple(map(int, python.split("=")[1].split("."))) >= tuple(map(int, minimum.split(".")))
    # every package pyproject asks for is pinned, so conda and the Makefile get the same set
    pins = _pins()
    wanted = project["dependencies"] + [d for extra in extras.split(",")
                                        for d in project["optional-dependencies"][extra]]
    for requirement in wanted:
        name = re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!\[;]", requirement)[0]).lower()
        assert name in pins, f"{name} is not pinned in constraints.txt"


@pytest.mark.parametrize("statement", ["import soundslike_nb", "import soundslike_nb.cli"])
def test_import_stays_light(statement):
    heavy = ["torch", "faiss", "umap", "pyannote", "librosa", "plotly", "ipywidgets", "pandas"]
    code = f"import sys; {statement}; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == ""


def test_console_script_and_module_entry_points():
    for command in ([str(Path(sys.executable).parent / "soundslike"), "--help"],
                    [sys.executable, "-m", "soundslike_nb", "--help"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "index" in result.stdout and "search" in result.stdout
