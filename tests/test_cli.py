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
    assert set(hits[0]) == {"rank", "name", "path", "start", "end", "duration", "similarity",
                            "cnn", "timbre", "spectrum", "envelope"}
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


def test_a_reader_that_stops_early_gets_no_error(demo_library_file, demo_dir):
    search = subprocess.Popen(
        [sys.executable, "-m", "soundslike_nb", "search", str(demo_library_file),
         str(demo_dir / "kenney" / "coin1.wav"), "--json", "-k", "50"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    search.stdout.close()  # like `| head -0`: the reader is gone before anything is printed
    assert search.wait(timeout=120) == 0
    assert search.stderr.read() == b""


def test_bad_file_in_subprocess_has_no_traceback(tmp_path, demo_library_file):
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    result = _run("search", str(demo_library_file), str(junk))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "junk.wav" in result.stderr
    assert "not a readable audio file" in result.stderr and "Traceback" not in result.stderr


def test_a_sound_of_the_library_is_the_query_not_its_first_result(demo_library_file, capsys,
                                                                  monkeypatch):
    import soundslike_nb.model_choice as model_choice
    from soundslike_nb import load_library

    monkeypatch.setattr(model_choice, "get_embedder", lambda *a, **k: pytest.fail("model loaded"))
    query = str(load_library(demo_library_file).rows["path"][4])
    assert main(["search", str(demo_library_file), query, "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("query: ") and "a sound of this library" in lines[0]
    assert query not in "\n".join(lines[1:]) and len(lines) == 2 + 3


@pytest.fixture(scope="module")
def copies_library(tmp_path_factory, aisfx):
    """Two takes of a hit and one coin, each with an MP3, a quieter and a stereo copy."""
    import shutil

    import numpy as np
    import soundfile as sf

    from soundslike_nb import build_library

    folder = tmp_path_factory.mktemp("copies") / "sfx"
    packs = folder / "packs"
    packs.mkdir(parents=True)
    for stem in ("hit1", "hit2", "coin1"):
        source = ROOT / "data" / "demo" / "kenney" / f"{stem}.wav"
        shutil.copy(source, folder / source.name)
        data, rate = sf.read(source, always_2d=True, dtype="float32")
        mono = data.mean(axis=1)
        sf.write(packs / f"{stem} (pack copy).mp3", mono, rate, format="MP3")
        sf.write(packs / f"-{stem} quiet.wav", 0.5 * mono, rate, subtype="PCM_16")
        sf.write(packs / f"{stem} stereo.wav", np.stack([mono, mono], 1), rate,
                 subtype="PCM_24")
    out = folder.parent / "copies.parquet"
    build_library(folder, out=out, embedder=aisfx, progress=False)
    return out


def test_duplicates_writes_csv_json_and_a_move_script_that_runs(copies_library, tmp_path,
                                                                capsys):
    import csv

    table, script = tmp_path / "groups.csv", tmp_path / "move.py"
    code = main(["duplicates", str(copies_library), "--csv", str(table), "--json",
                 str(tmp_path / "groups.json"), "--script", str(script), "--to",
                 str(tmp_path / "discards"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "3 groups of near-duplicates, 12 files; 9 could go" in out
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 12 and {row["group"] for row in rows} == {"1", "2", "3"}
    groups = {}
    for row in rows:
        stem = Path(row["path"]).name.lstrip("'-").split(" ")[0].split(".")[0]
        groups.setdefault(row["group"], set()).add(stem)
    assert sorted(map(sorted, groups.values())) == [["coin1"], ["hit1"], ["hit2"]]
    assert all(row["keep"] in {"True", "False"} and row["reason"] for row in rows)
    assert all(not row["name"].startswith("-") for row in rows)  # neutralised: "'-hit1 ..."
    assert len(json.loads((tmp_path / "groups.json").read_text())) == 12

    moved = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                           timeout=60)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert len(list((tmp_path / "discards").rglob("*.*"))) == 9
    kept = [row["path"] for row in rows if row["keep"] == "True"]
    assert all(os.path.exists(path) for path in kept)


@pytest.mark.parametrize("arguments, fragment", [
    (["duplicates", "{missing}"], "no such library file"),
    (["duplicates", "{lib}", "--threshold", "nan"], "must be a number"),
    (["duplicates", "{lib}", "--threshold", "3"], "threshold"),
    (["duplicates", "{lib}", "--to", "{out}"], "--script"),
    (["duplicates", "{lib}", "--min-correlation", "0"], "min_correlation"),
])
def test_duplicates_bad_usage_is_one_line(arguments, fragment, demo_library_file, tmp_path,
                                          capsys):
    values = {"lib": str(demo_library_file), "missing": str(tmp_path / "none.parquet"),
              "out": str(tmp_path / "out")}
    code = _exit_code([argument.format(**values) for argument in arguments])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err


def test_search_saves_csv_and_a_session(demo_library_file, demo_dir, tmp_path, capsys):
    from soundslike_nb.session import load_session

    query = str(demo_dir / "kenney" / "coin1.wav")
    assert main(["search", str(demo_library_file), query, "-k", "3", "--weights", "timbre=0.5",
                 "--csv", str(tmp_path / "hits.csv"), "--save-session",
                 str(tmp_path / "s.json")]) == 0
    capsys.readouterr()
    header = (tmp_path / "hits.csv").read_text().splitlines()[0]
    assert header.startswith("name,path,duration,similarity")
    session = load_session(tmp_path / "s.json")
    assert session.k == 3 and session.weights["timbre"] == 0.5 and len(session.results) == 3
    assert session.query == query and session.messages == ()


def test_search_by_label(demo_library_file, demo_dir, tmp_path, capsys):
    import shutil

    from soundslike_nb import load_library

    library_file = tmp_path / "tagged.parquet"
    shutil.copy(demo_library_file, library_file)
    library = load_library(library_file)
    coins = [position for position, path in enumerate(library.rows["path"]) if "coin" in path]
    library.tag(coins, "coin")
    query = str(demo_dir / "kenney" / "explosion1.wav")
    assert main(["search", str(library_file), query, "-k", "3", "--tag", "coin", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert len(found) == 3 and all("coin" in hit["path"] for hit in found)
    assert main(["search", str(library_file), query, "--tag", "nobody"]) == 0
    assert "no sound matches (check the duration range and --tag)" in capsys.readouterr().out
    assert main(["search", str(library_file), query, "--tag", "bad\tlabel"]) == 2
    assert "label" in capsys.readouterr().err
