"""Device choice and precision: CUDA with bf16 autocast when present, the CPU in fp32 otherwise."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """The device to run on: ``requested`` when given (``cpu``, ``cuda``, ``cuda:1``), else CUDA if available."""
    if requested:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {requested!r} requested but CUDA is not available")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    """bf16 autocast on CUDA; nothing on the CPU (bf16 is ~8x slower than fp32 on this kind of CPU)."""
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        yield


def is_oom(exc: BaseException) -> bool:
    """True for a CUDA out-of-memory error (the batch should be halved and retried)."""
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()
