"""Build the bundled demo sound library ``data/demo/`` from a pinned PyPI wheel.

The demo sounds are the Kenney (www.kenney.nl) sound effects that ship inside the
``arcade`` 3.3.3 wheel on PyPI, under ``arcade/resources/assets/sounds/``.  That folder's
own ``License.txt`` says "Everything in this package is licensed CC0" and links to
http://creativecommons.org/publicdomain/zero/1.0/, and its ``readme.txt`` says the assets
"are a subset of what is available from Kenney.nl".  The wheel names no individual packs.

What the script does, step by step:

1. ``pip download`` the pinned wheel (``arcade==3.3.3``, no dependencies, wheel only) into a
   temporary folder, or use a wheel given with ``--wheel``.
2. Check the wheel's SHA-256 against ``WHEEL_SHA256`` and stop if it differs.
3. Check that the sounds folder's ``License.txt`` still carries the CC0 statement.
4. Copy the chosen sound files, byte for byte (no re-encoding), to ``data/demo/kenney/``,
   together with a verbatim copy of the wheel's ``License.txt``.
5. Write ``data/demo/LICENSES.csv`` (columns ``file,source,author,licence``).

Files chosen: every sound effect in that folder, with three exceptions so that no sound
appears twice: ``laser1.ogg`` (the same recording as ``laser1.mp3``; the mp3 is kept so the
demo also exercises mp3 decoding), ``phaseJump1.wav`` and ``rockHit2.wav`` (the same
recordings as the ``.ogg`` files kept).  Note that ``laser1.wav`` is a *different* sound
from ``laser1.mp3``; both are kept.  The two music tracks in ``arcade/resources/assets/music``
(by "Anttis", no licence stated in the wheel) are not used.

Output is deterministic: running the script twice gives byte-identical files.  Audio files
under ``data/demo/kenney/`` that are not in the selection are reported, never deleted.

Usage::

    python scripts/fetch_demo_sounds.py                 # download and (re)build data/demo
    python scripts/fetch_demo_sounds.py --wheel PATH    # use an already downloaded wheel

Needs only the standard library and pip (run through ``python -m pip``).
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# Run from a checkout, often in a venv without soundslike_nb: take the checkout's (stdlib only).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from soundslike_nb._hashing import sha256_file

ARCADE_VERSION = "3.3.3"
WHEEL_NAME = f"arcade-{ARCADE_VERSION}-py3-none-any.whl"
# SHA-256 of arcade-3.3.3-py3-none-any.whl as served by PyPI (files.pythonhosted.org).
WHEEL_SHA256 = "25f4e0e5b8bcbe7a7d087c0a23b19e9f423b0c70ec00945c8712c9a3e541ebd2"

SOUNDS_DIR = "arcade/resources/assets/sounds"
LICENSE_MEMBER = f"{SOUNDS_DIR}/License.txt"
LICENSE_MARKERS = (
    "Everything in this package is licensed CC0",
    "http://creativecommons.org/publicdomain/zero/1.0/",
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = REPO_ROOT / "data" / "demo"
PACK_DIR = "kenney"  # sub-folder of the destination that holds the sounds

AUTHOR = "Kenney (www.kenney.nl)"
LICENCE = "CC0-1.0"
SOURCE_NOTE = (
    'per the wheel\'s readme.txt "a subset of what is available from Kenney.nl" '
    "(https://kenney.nl/); pack not named in the wheel"
)
AUDIO_SUFFIXES = (".wav", ".ogg", ".mp3", ".flac", ".aiff", ".aif")

# The chosen files, by their names in SOUNDS_DIR (kept unchanged in data/demo/kenney/).
SELECTED: tuple[str, ...] = (
    *(f"coin{i}.wav" for i in range(1, 6)),
    *(f"error{i}.wav" for i in range(1, 6)),
    "explosion1.wav",
    "explosion2.wav",
    *(f"fall{i}.wav" for i in range(1, 5)),
    *(f"gameover{i}.wav" for i in range(1, 6)),
    *(f"hit{i}.wav" for i in range(1, 6)),
    *(f"hurt{i}.wav" for i in range(1, 6)),
    *(f"jump{i}.wav" for i in range(1, 6)),
    "laser1.mp3",
    *(f"laser{i}.wav" for i in range(1, 6)),
    *(f"lose{i}.wav" for i in range(1, 6)),
    "phaseJump1.ogg",
    "rockHit2.ogg",
    "secret2.wav",
    "secret4.wav",
    *(f"upgrade{i}.wav" for i in range(1, 6)),
)


def download_wheel(workdir: Path) -> Path:
    """Download the pinned arcade wheel (no dependencies) into ``workdir`` with pip."""
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary", ":all:", "--disable-pip-version-check",
        "--dest", str(workdir), f"arcade=={ARCADE_VERSION}",
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    wheel = workdir / WHEEL_NAME
    if not wheel.is_file():
        raise SystemExit(f"pip did not produce {WHEEL_NAME} in {workdir}")
    return wheel


def check_wheel(wheel: Path) -> None:
    """Stop unless ``wheel`` has the pinned SHA-256."""
    actual = sha256_file(wheel)
    if actual != WHEEL_SHA256:
        raise SystemExit(
            f"SHA-256 mismatch for {wheel}:\n  expected {WHEEL_SHA256}\n  got      {actual}"
        )
    print(f"wheel OK: {wheel.name} sha256={actual}")


def check_licence_text(zf: zipfile.ZipFile) -> bytes:
    """Return the sounds folder's License.txt, after checking it states CC0."""
    text = zf.read(LICENSE_MEMBER)
    decoded = text.decode("utf-8", errors="replace")
    missing = [m for m in LICENSE_MARKERS if m not in decoded]
    if missing:
        raise SystemExit(f"{LICENSE_MEMBER} lacks the expected statement(s): {missing}")
    return text


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it already holds exactly that; return True if written."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def licence_rows() -> list[dict[str, str]]:
    """Return one LICENSES.csv row per selected file, sorted by file path."""
    rows = [
        {
            "file": f"{PACK_DIR}/{name}",
            "source": f"arcade {ARCADE_VERSION} wheel (PyPI), {SOUNDS_DIR}/{name}; {SOURCE_NOTE}",
            "author": AUTHOR,
            "licence": LICENCE,
        }
        for name in SELECTED
    ]
    return sorted(rows, key=lambda row: row["file"])


def render_csv(rows: list[dict[str, str]]) -> bytes:
    """Render the licence table as UTF-8 CSV bytes with Unix line endings."""
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=["file", "source", "author", "licence"], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def build(wheel: Path, dest: Path) -> None:
    """Extract the selected sounds from ``wheel`` into ``dest`` and write LICENSES.csv."""
    check_wheel(wheel)
    pack = dest / PACK_DIR
    written = 0
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        absent = [n for n in SELECTED if f"{SOUNDS_DIR}/{n}" not in names]
        if absent:
            raise SystemExit(f"not in the wheel: {absent}")
        written += write_if_changed(pack / "License.txt", check_licence_text(zf))
        for name in SELECTED:
            written += write_if_changed(pack / name, zf.read(f"{SOUNDS_DIR}/{name}"))
    written += write_if_changed(dest / "LICENSES.csv", render_csv(licence_rows()))

    chosen = set(SELECTED)
    extra = sorted(
        p.name
        for p in pack.iterdir()
        if p.suffix.lower() in AUDIO_SUFFIXES and p.name not in chosen
    )
    if extra:
        print(f"warning: audio files in {pack} not in the selection (left alone): {extra}")
    total = sum((pack / n).stat().st_size for n in SELECTED)
    print(f"{len(SELECTED)} sounds in {pack} ({total / 1e6:.2f} MB); {written} file(s) written")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--wheel", type=Path, help=f"use this local {WHEEL_NAME} instead of downloading it"
    )
    parser.add_argument(
        "--dest", type=Path, default=DEFAULT_DEST, help="output folder (default: data/demo)"
    )
    args = parser.parse_args(argv)
    if args.wheel is not None:
        build(args.wheel, args.dest)
    else:
        with tempfile.TemporaryDirectory(prefix="arcade_wheel_") as tmp:
            build(download_wheel(Path(tmp)), args.dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
