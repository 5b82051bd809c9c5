"""The command line, as a user runs it: index, search --json, one-line errors with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from soundslike_nb.audio import AUDIO_EXTENSIONS
from soundslike_nb.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soundslike_nb", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd or ROOT,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.mark.slow
def test_index_then_search_json_end_to_end(tmp_path, demo_dir):
    out = tmp_path / "demo.parquet"
    first = _run("index", str(demo_dir), "-o", str(out), "--quiet")
    assert first.returncode == 0, first.stderr
    sounds = sum(path.suffix.lower() in AUDIO_EXTENSIONS for path in demo_dir.rglob("*"))
    assert f": {sounds} sounds; {sounds} embedded" in first.stdout, first.stdout
    again = _run("index", str(demo_dir), "-o", str(out), "--quiet")
    assert again.returncode == 0, again.stderr
    assert f": {sounds} sounds; 0 embedded" in again.stdout, again.stdout
    assert f"{sounds} unchanged" in again.stdout, again.stdout

    query = demo_dir / "kenney" / "hurt3.wav"
    found = _run("search", str(out), str(query), "-k", "5", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert [hit["rank"] for hit in hits] == [1, 2, 3, 4, 5]
    assert set(hits[0]) == {"rank", "name", "path", "duration", "similarity", "cnn", "timbre",
                            "spectrum", "envelope"}
    assert str(query) not in {hit["path"] for hit in hits}  # the query is not its own result
    assert [hit["similarity"] for hit in hits] == sorted((h["similarity"] for h in hits),
                                                        reverse=True)
    siblings = [hit for hit in hits if Path(hit["path"]).name.startswith("hurt")]
    assert siblings, f"no sibling of hurt3 in the top 5: {[h['name'] for h in hits]}"


def test_search_duration_bounds_are_inclusive(demo_library_file, capsys, tmp_path):
    import shutil

    from soundslike_nb import load_library

    lib = load_library(demo_library_file)
    row = lib.rows.iloc[3]
    exact = float(row["duration"])
    copy = shutil.copy(row["path"], tmp_path / "copy.wav")  # not a row: analysed, then found
    code = main(["search", str(demo_library_file), str(copy), "-k", "50", "--json",
                 "--min-duration", repr(exact), "--max-duration", repr(exact)])
    hits = json.loads(capsys.readouterr().out)
    assert code == 0 and hits and all(hit["duration"] == exact for hit in hits)
    assert hits[0]["path"] == row["path"]


def test_table_output_and_empty_range(demo_library_file, demo_dir, capsys):
    query = str(demo_dir / "kenney" / "coin1.wav")
    assert main(["search", str(demo_library_file), query, "-k", "3"]) == 0
    table = capsys.readouterr().out
    assert "similarity" in table and "coin" in table
    assert main(["search", str(demo_library_file), query, "--min-duration", "1000"]) == 0
    assert "no sound matches" in capsys.readouterr().out
    assert main(["search", str(demo_library_file), query, "--min-duration", "1000",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code)


@pytest.mark.parametrize("arguments, fragment", [
    (["search", "{lib}", "{missing}"], "no such file"),
    (["search", "{missing}", "{query}"], "no such library file"),
    (["search", "{lib}", "{query}", "-k", "0"], "k must be"),
    (["search", "{lib}", "{query}", "--min-duration", "3", "--max-duration", "1"], "3"),
    (["search", "{lib}", "{query}", "-k", "many"], "invalid int value"),
    (["search", "{lib}", "{query}", "--min-duration", "nan"], "must be a number"),
    (["index", "{missing}", "-o", "{out}"], "no such folder"),
    (["index", "{query_dir}", "-o", "{out}", "--embedder", "nonsense"], "unknown embedder"),
    (["index", "{query_dir}"], "required"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_usage_is_one_line_and_exit_2(arguments, fragment, demo_library_file, demo_dir,
                                          tmp_path, capsys):
    values = {"lib": str(demo_library_file), "missing": str(tmp_path / "missing.wav"),
              "query": str(demo_dir / "kenney" / "coin1.wav"), "out": str(tmp_path / "o.parquet"),
              "query_dir": str(demo_dir)}
    code = _exit_code([argument.format(**values) for argument in arguments])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], captured.err
    assert "Traceback" not in captured.err


def test_bad_file_in_subprocess_has_no_traceback(tmp_path, demo_library_file):
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    result = _run("search", str(demo_library_file), str(junk))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "junk.wav" in result.stderr
    assert "not a readable audio file" in result.stderr and "Traceback" not in result.stderr


def test_a_sound_of_the_library_is_the_query_not_its_first_result(demo_library_file, capsys,
                                                                  monkeypatch):
    import soundslike_nb.analysis as analysis
    from soundslike_nb import load_library

    monkeypatch.setattr(analysis, "get_embedder", lambda *a, **k: pytest.fail("model loaded"))
    query = str(load_library(demo_library_file).rows["path"][4])
    assert main(["search", str(demo_library_file), query, "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("query: ") and "a sound of this library" in lines[0]
    assert query not in "\n".join(lines[1:]) and len(lines) == 2 + 3
