"""Small torch helpers shared by the backends: device choice and CPU bf16 detection."""

from __future__ import annotations

import functools

from ..errors import EmbedderError


def resolve_device(device: str | None):
    """``None`` → the first GPU when there is one, else the CPU; a named device is checked."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise EmbedderError(f"unknown device {device!r} ({exc})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise EmbedderError(f"device {device!r} asked for, but torch sees no CUDA GPU here")
    return resolved


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AMX or AVX-512 BF16).

    Without them, bf16 autocast on CPU is emulated and slower than fp32.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"amx_bf16", "avx512_bf16"} & flags)
    except OSError:
        pass
    return False
