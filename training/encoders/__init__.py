"""Encoders in plain PyTorch: open_clip towers, a sentence encoder (their weights named by ``training.spec``)."""

from training.encoders.device import autocast, is_oom, pick_device

__all__ = ["autocast", "is_oom", "pick_device"]
