"""Device choice and precision: CUDA with bf16 autocast when present, the CPU in fp32 otherwise."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


class DeviceError(ValueError):
    """A requested device this machine does not have (or a string that names no device)."""


def check_device(requested: str) -> torch.device:
    """The device ``requested`` names (``cpu``, ``cuda``, ``cuda:N``), checked against this machine.

    Raises:
        DeviceError: not a device string, CUDA absent, or no CUDA device with that index.
    """
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"device {requested!r} is not a device (cpu, cuda, cuda:N): {exc}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {requested!r} requested but CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {requested!r} requested but this machine has {count} CUDA device(s)")
    elif device.type != "cpu":
        raise DeviceError(f"device {requested!r}: only cpu and cuda devices are supported")
    return device


def pick_device(requested: str | None = None) -> torch.device:
    """The device to run on: ``requested`` when given (``cpu``, ``cuda``, ``cuda:1``), else CUDA if available.

    Raises:
        DeviceError: ``requested`` names a device this machine does not have.
    """
    if requested:
        return check_device(requested)
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
