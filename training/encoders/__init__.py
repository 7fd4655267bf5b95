"""Encoders in plain PyTorch: open_clip towers, a sentence encoder (their weights named by ``training.spec``)."""

from training.encoders.device import autocast, is_oom, pick_device
from training.spec import ModelSpec, ModelSpecError

__all__ = ["ModelSpec", "ModelSpecError", "autocast", "is_oom", "pick_device"]
