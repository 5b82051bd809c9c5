"""The pyannote.audio backend, on checkpoints with seeded random weights built here; no network."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

# Imported plainly, not with importorskip: a broken torch/torchaudio pair must fail, not skip.
import pyannote.audio
import pytest
import torch
from pyannote.audio import Inference

from soundslike_nb.embedders import Embedder, get_embedder
from soundslike_nb.embedders import _hub as hub
from soundslike_nb.embedders import _pyannote_checkpoint as safe_loading
from soundslike_nb.embedders import pyannote as backend
from soundslike_nb.errors import AudioError, EmbedderError

from .pyannote_fixture import (
    make_segmentation_checkpoint,
    make_wespeaker_checkpoint,
    make_xvector_checkpoint,
)

SR = 16000
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def noise(samples: int, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(samples)).astype(np.float32)


def tone(samples: int, frequency: float) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * frequency * np.arange(samples) / SR)).astype(np.float32)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pyannote")
    return {
        "xvector": make_xvector_checkpoint(folder / "xvector.ckpt"),
        "segmentation": make_segmentation_checkpoint(folder / "vad.ckpt"),
    }


@pytest.fixture(scope="module")
def embedder(checkpoints):
    return get_embedder(checkpoints["xvector"], device="cpu")


def fake_download(monkeypatch, behaviour) -> list[dict]:
    """Replace hf_hub_download with ``behaviour(**kwargs)``; the probe says the hub answers."""
    import huggingface_hub

    calls: list[dict] = []

    def download(repo_id, filename, **kwargs):
        calls.append({"repo_id": repo_id, "filename": filename, **kwargs})
        return behaviour(**kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    monkeypatch.setattr(hub, "_hub_unreachable", lambda endpoint: None)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return calls


def hub_error(kind: type, status: int) -> Exception:
    response = SimpleNamespace(status_code=status, headers={}, request=None)
    return kind(f"{status} Client Error", response=response)


def snapshot_of(checkpoint: Path, root: Path) -> Path:
    """Copy ``checkpoint`` where the Hugging Face cache would keep it."""
    target = root / "models--someone--model" / "snapshots" / COMMIT / "pytorch_model.bin"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint, target)
    return target


# --- loading and the protocol ----------------------------------------------------------------


def test_pyannote_and_torchaudio_work_together():
    import torchaudio

    assert pyannote.audio.__version__.startswith("4.")
    spectrum = torchaudio.compliance.kaldi.fbank(torch.zeros(1, 4000), num_mel_bins=20)
    assert spectrum.shape[1] == 20


def test_checkpoint_loads_through_the_registry(embedder, checkpoints):
    sha256 = hashlib.sha256(checkpoints["xvector"].read_bytes()).hexdigest()
    assert isinstance(embedder, Embedder)
    assert embedder.id == f"checkpoint:xvector.ckpt@{sha256[:12]}"
    assert (embedder.sample_rate, embedder.dimension, embedder.min_samples) == (16000, 512, 5041)
    assert not embedder.model.training


def test_provenance_is_complete_and_serialisable(embedder, checkpoints):
    provenance = json.loads(json.dumps(embedder.provenance))
    assert provenance["id"] == embedder.id
    assert provenance["backend"] == "pyannote.audio"
    assert provenance["version"] == f"pyannote.audio {pyannote.audio.__version__} XVectorSincNet"
    assert provenance["dimension"] == 512 and provenance["sample_rate"] == 16000
    assert provenance["weights_sha256"] == hashlib.sha256(
        checkpoints["xvector"].read_bytes()
    ).hexdigest()
    assert (provenance["window_s"], provenance["hop_s"]) == (backend.WINDOW_S, backend.HOP_S)


def test_directory_with_pytorch_model_bin_loads(checkpoints, tmp_path):
    shutil.copyfile(checkpoints["xvector"], tmp_path / "pytorch_model.bin")
    loaded = get_embedder(tmp_path, device="cpu")
    assert loaded.id.startswith(f"checkpoint:{tmp_path.name}/pytorch_model.bin@")


def test_wespeaker_architecture_is_256_d_and_takes_short_sounds(tmp_path):
    loaded = get_embedder(make_wespeaker_checkpoint(tmp_path / "wespeaker.ckpt"), device="cpu")
    assert (loaded.dimension, loaded.min_samples) == (256, 1680)
    embeddings = loaded.embed([noise(1000, 0), noise(SR, 1)])
    assert embeddings.shape == (2, 256) and np.isfinite(embeddings).all()


# --- embedding -------------------------------------------------------------------------------


def test_embeddings_of_every_length_are_finite_float32_and_deterministic(embedder):
    lengths = [1, 100, 5040, 5041, SR, 10 * SR, 10 * SR + 1, 16 * SR]  # padded ... windowed
    waveforms = [noise(length, seed) for seed, length in enumerate(lengths)]
    first = embedder.embed(waveforms)
    assert first.shape == (len(lengths), 512) and first.dtype == np.float32
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, embedder.embed(waveforms))


def test_progress_counts_the_windows_of_long_sounds(embedder):
    waveforms = [noise(40 * SR, 1), noise(SR, 2)]
    shares: list[float] = []
    with_progress = embedder.embed(waveforms, progress=shares.append)
    np.testing.assert_array_equal(with_progress, embedder.embed(waveforms))
    assert len(shares) >= 2 and shares == sorted(shares) and shares[-1] == 1.0


def test_silence_and_empty_input(embedder):
    assert np.isfinite(embedder.embed([np.zeros(SR, np.float32)])).all()
    empty = embedder.embed([])
    assert empty.shape == (0, 512) and empty.dtype == np.float32


def test_same_sound_gives_cosine_one_and_different_sounds_less(embedder):
    sounds = [noise(2 * SR, 1), noise(2 * SR, 1), noise(2 * SR, 2), tone(2 * SR, 440)]
    first, copy, other, low, high = embedder.embed([*sounds, tone(2 * SR, 3000)])
    assert cosine(first, copy) > 0.999999
    assert cosine(first, low) < 0.9999  # random weights: all vectors are alike, but not equal
    assert cosine(low, high) < 0.999
    assert cosine(first, other) < cosine(first, copy)


def test_batched_path_equals_pyannote_inference_one_by_one(embedder):
    inference = Inference(embedder.model, window="whole")

    def whole(samples: np.ndarray) -> np.ndarray:
        return inference({"waveform": torch.from_numpy(samples)[None], "sample_rate": SR})

    clips = [noise(SR, seed) for seed in range(5)]  # equal lengths: one batch
    for clip, embedding in zip(clips, embedder.embed(clips)):
        assert cosine(embedding, whole(clip)) >= 0.9999

    short = noise(1000, 7)  # centred in zeros up to the 5041-sample minimum
    padded = np.pad(short, (2020, 2021))
    assert cosine(embedder.embed([short])[0], whole(padded)) >= 0.9999

    long = noise(23 * SR, 8)  # windows start at 0, 5, 10 and (aligned to the end) 13 s
    windows = [whole(long[start * SR : (start + 10) * SR]) for start in (0, 5, 10, 13)]
    expected = np.mean([w / np.linalg.norm(w) for w in windows], axis=0)
    assert cosine(embedder.embed([long])[0], expected) >= 0.9999


def test_bad_waveforms_are_refused(embedder):
    with pytest.raises(AudioError, match="waveform 1"):
        embedder.embed([noise(SR, 0), np.full(SR, np.nan, np.float32)])
    with pytest.raises(AudioError, match="0 samples"):
        embedder.embed([np.zeros(0, np.float32)])


# --- local checkpoint errors -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["missing.ckpt", "nowhere/model.bin"])
def test_missing_checkpoint(tmp_path, name):
    with pytest.raises(EmbedderError, match="no such checkpoint"):
        get_embedder(tmp_path / name)


def test_missing_relative_checkpoint_is_not_looked_up_on_the_hub(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EmbedderError, match=r"no such checkpoint: 'models/xvector\.pt'"):
        get_embedder("models/xvector.pt")


def test_malformed_hub_id(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EmbedderError, match="neither a checkpoint file nor a hub id"):
        get_embedder("not/a/hub id")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is a text file\n", "not a pyannote.audio checkpoint"),
        (b"", "empty file"),
        (b"PK\x03\x04 a truncated zip", "not a loadable pyannote.audio checkpoint"),
    ],
)
def test_file_that_is_not_a_checkpoint(tmp_path, content, message):
    path = tmp_path / "model.ckpt"
    path.write_bytes(content)
    with pytest.raises(EmbedderError, match=message):
        get_embedder(path)


def test_torch_file_that_is_not_a_pyannote_checkpoint(tmp_path):
    path = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {"weight": torch.zeros(3)}}, path)
    with pytest.raises(EmbedderError, match=r"PyTorch file but not a pyannote.audio checkpoint"):
        get_embedder(path)


def test_directory_without_checkpoint(tmp_path):
    with pytest.raises(EmbedderError, match=r"directory without pytorch_model.bin"):
        get_embedder(tmp_path)


def test_segmentation_model_is_not_an_embedding_model(checkpoints):
    with pytest.raises(EmbedderError, match=r"PyanNet.*not an embedding model"):
        get_embedder(checkpoints["segmentation"])


# --- loading without unpickling code ---------------------------------------------------------


class RunsCodeWhenUnpickled:
    """Unpickling this makes a directory: what a hostile checkpoint could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


class TrainingNote:
    """A harmless object of a class no allowlist knows, as a user's own training code saves."""

    def __init__(self, text: str) -> None:
        self.text = text


def checkpoint_with(source: Path, target: Path, *, legacy_format: bool = False, **entries
                    ) -> Path:
    """A copy of the checkpoint at ``source`` with ``entries`` added or replaced; in torch's
    legacy format (a bare pickle, not a zip archive) if asked."""
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)  # made by the tests
    checkpoint.update(entries)
    torch.save(checkpoint, target, _use_new_zipfile_serialization=not legacy_format)
    return target


@pytest.fixture
def torch_loads(monkeypatch) -> list[dict]:
    """Record the keyword arguments of every ``torch.load`` call."""
    calls: list[dict] = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    return calls


def test_local_checkpoint_is_loaded_weights_only(checkpoints, torch_loads, tmp_path):
    shutil.copyfile(checkpoints["xvector"], tmp_path / "pytorch_model.bin")
    get_embedder(checkpoints["xvector"], device="cpu")
    get_embedder(tmp_path, device="cpu")  # a directory holding pytorch_model.bin
    assert len(torch_loads) >= 4
    assert all(call.get("weights_only") is True for call in torch_loads), torch_loads


def test_hub_checkpoint_is_loaded_weights_only(monkeypatch, checkpoints, torch_loads, tmp_path):
    cached = snapshot_of(checkpoints["xvector"], tmp_path)
    fake_download(monkeypatch, lambda **kwargs: cached)
    assert get_embedder("someone/model", device="cpu").dimension == 512
    assert torch_loads and all(call.get("weights_only") is True for call in torch_loads)


@pytest.mark.parametrize("source", ["local", "local, legacy format", "hub"])
def test_checkpoint_that_would_run_code_is_refused(monkeypatch, checkpoints, tmp_path, source):
    marker = tmp_path / "code-ran"
    hostile = checkpoint_with(checkpoints["xvector"], tmp_path / "hostile.ckpt",
                              legacy_format=source.endswith("legacy format"),
                              extra=RunsCodeWhenUnpickled(marker))
    if source == "hub":
        cached = snapshot_of(hostile, tmp_path / "cache")
        fake_download(monkeypatch, lambda **kwargs: cached)
    with pytest.raises(EmbedderError, match=r"refused: .*posix\.mkdir.*can run code") as raised:
        get_embedder("someone/model" if source == "hub" else hostile, device="cpu")
    assert "convert_checkpoint" in str(raised.value)
    assert not marker.exists()
    torch.load(hostile, weights_only=False)  # the payload is live: a full unpickle runs it
    assert marker.is_dir()


def test_architecture_outside_pyannote_is_not_imported(monkeypatch, checkpoints, tmp_path):
    marker = tmp_path / "imported"
    (tmp_path / "soundslike_test_payload.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    section = torch.load(checkpoints["xvector"], weights_only=False)["pyannote.audio"]
    section["architecture"] = {"module": "soundslike_test_payload", "class": "XVectorSincNet"}
    path = checkpoint_with(checkpoints["xvector"], tmp_path / "elsewhere.ckpt",
                           **{"pyannote.audio": section})
    with pytest.raises(EmbedderError, match=r"outside pyannote.audio: import soundslike_test_pay"):
        get_embedder(path)
    assert not marker.exists() and "soundslike_test_payload" not in sys.modules


def test_legacy_lightning_callbacks_load_without_their_classes(checkpoints, tmp_path):
    """Old Lightning pickled callback classes as keys, and pyannote 2-3 saved torch's version."""
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    section = torch.load(checkpoints["xvector"], weights_only=False)["pyannote.audio"]
    section["versions"]["torch"] = torch.__version__  # a TorchVersion, not a str
    path = checkpoint_with(
        checkpoints["xvector"], tmp_path / "legacy.ckpt", **{"pyannote.audio": section},
        callbacks={EarlyStopping: {"wait_count": 3}, ModelCheckpoint: {"best_model_path": "x"}},
    )
    pickled = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    assert {"torch.torch_version.TorchVersion", *safe_loading._LEGACY_CALLBACKS} <= pickled
    clip = noise(SR, 3)
    loaded = get_embedder(path, device="cpu").embed([clip])
    plain = get_embedder(checkpoints["xvector"], device="cpu").embed([clip])
    np.testing.assert_array_equal(loaded, plain)


def test_loading_leaves_torchs_allowlist_as_it_was(checkpoints):
    from pyannote.audio.core.task import Specifications

    before = set(torch.serialization.get_safe_globals())
    get_embedder(checkpoints["xvector"], device="cpu")
    # a set: torch rebuilds its own on removal, so the list's order may change
    assert set(torch.serialization.get_safe_globals()) == before
    with torch.serialization.safe_globals([Specifications]):  # allowed by the user: kept
        get_embedder(checkpoints["xvector"], device="cpu")
        assert Specifications in torch.serialization.get_safe_globals()


@pytest.mark.parametrize("make", [make_xvector_checkpoint, make_wespeaker_checkpoint])
def test_embeddings_equal_those_of_pyannotes_own_loading(tmp_path, make):
    """The weights_only path builds the same model as Model.from_pretrained's full unpickle."""
    path = make(tmp_path / "model.ckpt")
    safe = get_embedder(path, device="cpu")
    unpickled = pyannote.audio.Model.from_pretrained(path, map_location=torch.device("cpu"))
    assert type(safe.model) is type(unpickled)
    assert safe.model.specifications == unpickled.specifications
    previous = backend.PyannoteEmbedder(unpickled, id="from_pretrained", weights_sha256="0" * 64,
                                        device="cpu")
    for name, tensor in unpickled.state_dict().items():
        torch.testing.assert_close(safe.model.state_dict()[name], tensor, rtol=0, atol=0)
    clips = [noise(3 * SR, 11), noise(700, 12), noise(12 * SR, 13)]
    for new, old in zip(safe.embed(clips), previous.embed(clips)):
        assert cosine(new, old) >= 0.9999


def test_convert_checkpoint_makes_a_refused_file_loadable(
    caplog, checkpoints, embedder, tmp_path
):
    trained = checkpoint_with(checkpoints["xvector"], tmp_path / "epoch=3.ckpt",
                              note=TrainingNote("lr 1e-3"))
    with pytest.raises(EmbedderError, match=r"refused: .*TrainingNote"):
        get_embedder(trained)
    with caplog.at_level(logging.WARNING, logger=safe_loading.__name__):
        converted = backend.convert_checkpoint(trained, tmp_path / "converted.ckpt")
    assert "unpickling" in caplog.text and "epoch=3.ckpt" in caplog.text
    assert converted == tmp_path / "converted.ckpt"
    loaded = get_embedder(converted, device="cpu")
    clips = [noise(2 * SR, 21), noise(400, 22)]
    for new, old in zip(loaded.embed(clips), embedder.embed(clips)):
        assert cosine(new, old) >= 0.9999
    with pytest.raises(EmbedderError, match="no such checkpoint"):
        backend.convert_checkpoint(tmp_path / "missing.ckpt", tmp_path / "out.ckpt")


# --- the hub (never reached) -----------------------------------------------------------------


def test_hub_offline_fails_at_once(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(EmbedderError, match="HF_HUB_OFFLINE") as raised:
        get_embedder("soundslike-tests/no-such-model")
    assert time.monotonic() - started < 30
    assert "network" in str(raised.value)


def test_unreachable_hub_fails_fast(monkeypatch, tmp_path):
    import huggingface_hub

    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: refused
    started = time.monotonic()
    with pytest.raises(EmbedderError, match="cannot reach the Hugging Face hub") as raised:
        backend.PyannoteEmbedder.from_hub("soundslike-tests/no-such-model", cache_dir=tmp_path)
    assert time.monotonic() - started < 30
    assert "network" in str(raised.value) and "HF_HUB_OFFLINE" in str(raised.value)


def test_unreachable_hub_uses_the_cache(monkeypatch, checkpoints, tmp_path):
    cached = snapshot_of(checkpoints["xvector"], tmp_path)
    calls = fake_download(
        monkeypatch, lambda **kwargs: cached if kwargs["local_files_only"] else 1 / 0
    )
    monkeypatch.setattr(hub, "_hub_unreachable", lambda endpoint: "huggingface.co:443: down")
    loaded = get_embedder("someone/model", device="cpu")
    assert loaded.id == "someone/model" and calls[0]["local_files_only"] is True


def test_hub_model_provenance_and_token_default(monkeypatch, checkpoints, tmp_path):
    cached = snapshot_of(checkpoints["xvector"], tmp_path)
    calls = fake_download(monkeypatch, lambda **kwargs: cached)
    monkeypatch.setenv("HF_TOKEN", "hf_from_environment")
    loaded = get_embedder("someone/model", device="cpu")
    assert calls[0]["token"] == "hf_from_environment"
    assert calls[0]["filename"] == "pytorch_model.bin"
    provenance = loaded.provenance
    assert (provenance["id"], provenance["revision"]) == ("someone/model", COMMIT)
    assert provenance["weights_sha256"] == hashlib.sha256(cached.read_bytes()).hexdigest()
    get_embedder("someone/model", token="hf_given", device="cpu")
    assert calls[1]["token"] == "hf_given"


def test_gated_model_without_token(monkeypatch):
    from huggingface_hub.errors import GatedRepoError

    def gated(**kwargs):
        raise hub_error(GatedRepoError, 403)

    fake_download(monkeypatch, gated)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(EmbedderError, match="gated") as raised:
        get_embedder("pyannote/embedding")
    message = str(raised.value)
    assert "https://hf.co/pyannote/embedding" in message
    assert "HF_TOKEN" in message and "--token" in message


def test_bad_token(monkeypatch):
    from huggingface_hub.errors import HfHubHTTPError

    def refused(**kwargs):
        raise hub_error(HfHubHTTPError, 401)

    fake_download(monkeypatch, refused)
    with pytest.raises(EmbedderError, match="refused the token"):
        get_embedder("pyannote/embedding", token="hf_not_a_real_token")


def test_hub_repo_without_a_model_file(monkeypatch):
    from huggingface_hub.errors import RemoteEntryNotFoundError

    def missing(**kwargs):
        raise hub_error(RemoteEntryNotFoundError, 404)

    fake_download(monkeypatch, missing)
    with pytest.raises(EmbedderError, match=r"has no pytorch_model.bin"):
        get_embedder("pyannote/speaker-diarization-3.1")


# --- telemetry -------------------------------------------------------------------------------


def test_importing_soundslike_nb_leaves_pyannote_and_its_telemetry_alone():
    code = (
        "import os, sys, soundslike_nb, soundslike_nb.embedders\n"
        "print('pyannote.audio' in sys.modules, os.environ.get('PYANNOTE_METRICS_ENABLED'))"
    )
    environment = {k: v for k, v in os.environ.items() if k != "PYANNOTE_METRICS_ENABLED"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True
    )
    assert result.stdout.split() == ["False", "None"]


@pytest.mark.parametrize(
    ("before", "after", "tracked"),
    [(None, "false", False), ("true", "false", False), ("0", "false", False), ("1", "1", True)],
)
def test_telemetry_is_off_unless_the_user_opted_in(
    monkeypatch, checkpoints, before, after, tracked
):
    import pyannote.audio.telemetry as pyannote_telemetry
    from pyannote.audio.telemetry.metrics import is_metrics_enabled

    startup = Path("/proc/self/environ")
    if before == "true" and (
        not startup.exists() or b"PYANNOTE_METRICS_ENABLED=" in startup.read_bytes()
    ):
        pytest.skip("cannot tell pyannote's default from a value the test process started with")
    seen: list[bool] = []
    monkeypatch.setattr(
        pyannote_telemetry, "track_model_init", lambda model: seen.append(is_metrics_enabled())
    )
    if before is None:
        monkeypatch.delenv("PYANNOTE_METRICS_ENABLED", raising=False)
    else:  # "true" is what pyannote itself writes when imported: not the user's choice
        monkeypatch.setenv("PYANNOTE_METRICS_ENABLED", before)
    get_embedder(checkpoints["xvector"], device="cpu")
    assert os.environ["PYANNOTE_METRICS_ENABLED"] == after
    assert seen == [tracked]


# --- end to end: a library built with a pyannote checkpoint -----------------------------------


@pytest.mark.slow
def test_index_and_search_the_demo_with_a_local_checkpoint(aisfx, checkpoints, demo_dir, tmp_path):
    """As a user would: index with --embedder CKPT, name it to search, rerun, refuse the others."""
    from soundslike_nb import load_library
    from soundslike_nb.cli import main
    from soundslike_nb.embedders import check_same_model

    out = tmp_path / "lib.parquet"
    checkpoint = str(checkpoints["xvector"])
    assert main(["index", str(demo_dir), "-o", str(out), "--embedder", checkpoint,
                 "--quiet"]) == 0
    lib = load_library(out)
    assert lib.embeddings.shape == (len(lib), 512) and len(lib) >= 50
    info = lib.embedder_info
    assert info["backend"] == "pyannote.audio" and info["sample_rate"] == 16000
    assert info["weights_sha256"] == hashlib.sha256(checkpoints["xvector"].read_bytes()
                                                    ).hexdigest()
    original = demo_dir / "kenney" / "laser2.wav"
    query = tmp_path / "laser2 copy.wav"  # not a row of the library: the model must analyse it
    shutil.copyfile(original, query)
    with pytest.raises(EmbedderError, match="loads only when you name it") as raised:
        lib.search(query, k=5)  # a library never loads a model other than the shipped one
    assert f"embedder={str(checkpoints['xvector'].resolve())!r}" in str(raised.value)
    lib = load_library(out, embedder=checkpoint)
    hits = lib.search(query, k=5)  # the named checkpoint gives back the stored vectors
    assert hits["path"].iloc[0] == str(original)
    assert hits["similarity"].iloc[0] == pytest.approx(1.0, abs=1e-4)
    rerun = subprocess.run([sys.executable, "-m", "soundslike_nb", "index", str(demo_dir), "-o",
                            str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and " 0 embedded" in rerun.stdout, rerun.stdout + rerun.stderr
    with pytest.raises(EmbedderError, match="aisfx-ismir2022"):
        check_same_model(lib.embedder_info, aisfx.provenance)
    with pytest.raises(EmbedderError, match="aisfx-ismir2022"):
        load_library(out, embedder=aisfx)
    other = make_xvector_checkpoint(tmp_path / "other.ckpt", seed=1)  # same shape, other weights
    with pytest.raises(EmbedderError, match=r"xvector\.ckpt.*other\.ckpt"):
        load_library(out, embedder=other)
