"""The one SHA-256 helper: known digests, streaming past one block, runnable examples."""

from __future__ import annotations

import doctest
import hashlib
import subprocess
import sys

import numpy as np

from soundslike_nb import _hashing
from soundslike_nb._hashing import sha256_bytes, sha256_file

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_known_digests():
    assert sha256_bytes(b"") == EMPTY_SHA256
    assert sha256_bytes(bytearray(b"abc")) == sha256_bytes(memoryview(b"abc")) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_file_digest_streams_across_blocks(tmp_path):
    # 2.5 blocks of 1 MiB: the digest must cover every block, the partial last one included
    data = np.random.default_rng(0).integers(0, 256, 5 * (1 << 19), dtype=np.uint8).tobytes()
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest() == sha256_bytes(data)
    assert sha256_file(str(path)) == sha256_file(path)
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == EMPTY_SHA256


def test_examples_run():
    result = doctest.testmod(_hashing)
    assert result.attempted >= 3 and result.failed == 0


def test_importing_it_stays_light():
    code = ("import sys, soundslike_nb._hashing\n"
            "print(sorted({'numpy', 'torch'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
