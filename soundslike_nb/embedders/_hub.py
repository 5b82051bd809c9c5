"""Fetching a pyannote.audio checkpoint from the Hugging Face hub, failing fast and clearly.

huggingface_hub retries an unreachable hub for about 23 s and words its errors for developers;
here a bare TCP probe decides within seconds whether to go online, and each failure becomes an
:class:`EmbedderError` that says what to do (network, gated model, token, wrong id).
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import EmbedderError

#: What pyannote looks for in a hub repository or a checkpoint directory.
CHECKPOINT_FILE = "pytorch_model.bin"
#: Environment-variable values that mean "yes".
TRUE_WORDS = {"1", "true", "yes", "on"}
_PROBE_TIMEOUT_S = 4.0

def _hub_endpoint() -> str:
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT") or constants.ENDPOINT


def _hub_unreachable(endpoint: str) -> str | None:
    """Why ``endpoint`` (or the proxy in front of it) takes no TCP connection; None if it does.

    huggingface_hub retries a failed connection for about 23 s; a bare connect answers in
    milliseconds, and a thread bounds even a hanging DNS lookup.
    """
    url = urllib.parse.urlsplit(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_url = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxy_url.hostname or "", proxy_url.port or 8080
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"{host}:{port}: {exc.strerror or exc}")

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(_PROBE_TIMEOUT_S + 1.0)
    return outcome[0] if outcome else f"{host}:{port}: no answer in {_PROBE_TIMEOUT_S + 1:g} s"


def download(hub_id: str, *, token: str | None, revision: str | None, cache_dir) -> Path:
    """The hub checkpoint's path in the local cache, downloading it when needed and possible."""
    import importlib.metadata

    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub import errors as hub_errors

    endpoint = _hub_endpoint()
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUE_WORDS or (
        constants.HF_HUB_OFFLINE
    )
    why_unreachable = None if offline else _hub_unreachable(endpoint)
    arguments = dict(
        revision=revision, cache_dir=cache_dir, token=token, endpoint=endpoint,
        library_name="pyannote", library_version=importlib.metadata.version("pyannote.audio"),
    )
    try:
        return Path(huggingface_hub.hf_hub_download(
            hub_id, CHECKPOINT_FILE, local_files_only=offline or why_unreachable is not None,
            **arguments,
        ))
    except hub_errors.LocalEntryNotFoundError:
        if offline:
            raise EmbedderError(
                f"{hub_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
                "unset HF_HUB_OFFLINE and connect to the network to download it once, "
                "or pass the path of a local checkpoint"
            ) from None
        raise EmbedderError(
            f"cannot reach the Hugging Face hub to download {hub_id!r} "
            f"({why_unreachable or 'network error'}) and it is not in the local cache: check the "
            "network connection or proxy (HTTPS_PROXY), or pass the path of a local checkpoint; "
            "HF_HUB_OFFLINE=1 uses only the cache"
        ) from None
    except hub_errors.GatedRepoError:
        if token is None:
            raise EmbedderError(
                f"{hub_id!r} is gated: accept its conditions at https://hf.co/{hub_id} while "
                "logged in, create a read token at https://hf.co/settings/tokens, then set "
                "HF_TOKEN or pass --token"
            ) from None
        raise EmbedderError(
            f"the token has no access to gated {hub_id!r}: accept its conditions at "
            f"https://hf.co/{hub_id} with the account that owns the token"
        ) from None
    except hub_errors.RepositoryNotFoundError:
        raise EmbedderError(
            f"no such checkpoint file, and no model {hub_id!r} on the Hugging Face hub (or it "
            f"is private and {'the token cannot' if token else 'no token was given to'} see it)"
        ) from None
    except hub_errors.HFValidationError as exc:
        raise EmbedderError(
            f"{hub_id!r} is neither a checkpoint file nor a hub id like 'pyannote/embedding' "
            f"({str(exc).splitlines()[0].split(' Use `repo_type`')[0]})"
        ) from None
    except hub_errors.RevisionNotFoundError:
        raise EmbedderError(f"{hub_id!r} has no revision {revision!r}") from None
    except hub_errors.EntryNotFoundError:
        raise EmbedderError(
            f"{hub_id!r} has no {CHECKPOINT_FILE}: it is not a pyannote.audio model "
            "(pipelines such as speaker diarization are not embedding models)"
        ) from None
    except hub_errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 401:
            raise EmbedderError(
                "the Hugging Face hub refused the token (invalid or expired): check HF_TOKEN "
                "or --token, or create one at https://hf.co/settings/tokens"
            ) from None
        raise EmbedderError(f"downloading {hub_id!r} failed (HTTP {status}: {exc})") from None
