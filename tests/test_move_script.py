"""The move script, run for real on hostile file names in a scratch folder: it moves, never
deletes or overwrites, its dry run touches nothing, and no name is ever run as code."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from soundslike_nb.errors import ParameterError
from soundslike_nb.move_script import move_script, write_move_script

HOSTILE = ["a b.wav", "quote's \"double\".wav", "new\nline.wav", "$(touch PWNED).wav",
           "-rf --no-preserve-root.wav", "ünïcødé 音 🔊.wav", "`touch PWNED2`.wav",
           "semi;colon && echo hi.wav", "back\\slash.wav", "tab\there.wav", '""".wav']


@pytest.fixture
def library(tmp_path):
    """One group per hostile name: ``keep/<name>`` kept, ``copies/<name>`` discarded."""
    root = tmp_path / "library"
    rows = []
    for group, name in enumerate(HOSTILE, start=1):
        for folder, keep in (("keep", True), ("copies", False)):
            path = root / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"{folder}:{name}".encode())
            rows.append({"group": group, "keep": keep, "path": str(path)})
    return root, pd.DataFrame(rows)


def _run(script, *args, cwd):
    return subprocess.run([sys.executable, str(script), *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


def test_dry_run_then_move_hostile_names(library, tmp_path):
    root, table = library
    target = tmp_path / "scratch"
    script = write_move_script(table, tmp_path / "move.py", to=target)
    assert os.access(script, os.X_OK)

    dry = _run(script, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert f"would move {len(HOSTILE)} file(s), skipped 0" in dry.stdout
    assert len(dry.stdout.splitlines()) == len(HOSTILE) + 1  # one line per file, even "\n"
    assert not target.exists()
    assert sorted(os.listdir(root / "copies")) == sorted(HOSTILE)

    done = _run(script, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(target)) == sorted(HOSTILE)   # same names, nothing lost
    for name in HOSTILE:
        assert (target / name).read_bytes() == f"copies:{name}".encode()
        assert (root / "keep" / name).read_bytes() == f"keep:{name}".encode()
    assert os.listdir(root / "copies") == []
    created = {name for _, _, files in os.walk(tmp_path) for name in files}
    assert not created & {"PWNED", "PWNED2", "hi"}  # no name ran as a command

    again = _run(script, cwd=tmp_path)  # everything is gone now: skipped, nothing broken
    assert again.returncode == 1 and f"skipped {len(HOSTILE)}" in again.stdout


def test_never_overwrites_and_skips_when_the_keeper_is_gone(library, tmp_path):
    root, table = library
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "a b.wav").write_bytes(b"already here")
    os.unlink(root / "keep" / "new\nline.wav")
    script = write_move_script(table, tmp_path / "move.py")
    assert _run(script, cwd=tmp_path).returncode == 2  # no default folder: --to required
    done = _run(script, "--to", str(target), cwd=tmp_path)
    assert (target / "a b.wav").read_bytes() == b"already here"
    assert (target / "a b (2).wav").read_bytes() == b"copies:a b.wav"
    assert (root / "copies" / "new\nline.wav").exists()  # its group would lose its last copy
    assert "its keeper" in done.stdout and done.returncode == 1


def test_a_changed_file_is_skipped(library, tmp_path):
    root, table = library
    script = write_move_script(table, tmp_path / "move.py", to=tmp_path / "out")
    (root / "copies" / "a b.wav").write_bytes(b"edited since, longer than before")
    done = _run(script, cwd=tmp_path)
    assert "skip (changed since listed)" in done.stdout
    assert (root / "copies" / "a b.wav").exists()


def test_each_group_must_keep_one_file():
    table = pd.DataFrame({"group": [1, 1], "keep": [False, False], "path": ["/a", "/b"]})
    with pytest.raises(ParameterError, match="group 1 must keep exactly one file, keeps 0"):
        move_script(table)
    with pytest.raises(ParameterError, match="needs columns"):
        move_script(table.drop(columns="keep"))


def test_the_script_is_valid_python_whatever_the_names():
    table = pd.DataFrame({"group": [1, 1], "keep": [True, False],
                          "path": ['/x/"""; import os; os.system("id") #.wav',
                                   "/x/\udcff undecodable\u202e.wav"]}, dtype=object)
    text = move_script(table, to='/tmp/"""')
    compile(text, "move.py", "exec")
    assert "import os; os.system" not in text.split("MOVES = [")[0]
