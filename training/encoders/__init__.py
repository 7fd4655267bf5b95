"""Encoders in plain PyTorch: model specs with fingerprints, open_clip towers, a sentence encoder."""

from training.encoders.device import autocast, is_oom, pick_device
from training.encoders.spec import ModelSpec, ModelSpecError

__all__ = ["ModelSpec", "ModelSpecError", "autocast", "is_oom", "pick_device"]
