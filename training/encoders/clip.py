"""open_clip image and text towers behind one small interface: L2-normalised float32 vectors on the CPU.

The model's own preprocess travels with it (``ClipEncoder.preprocess``), so the image pipeline decodes and
transforms exactly as the model was trained. Architectures shipped in ``model_configs/`` (e.g. the tiny
``mmcrs-tiny`` used by tests and the offline demo) are registered with open_clip on import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F

from training.encoders.device import autocast, pick_device
from training.spec import ModelSpec, ModelSpecError

CONFIG_DIR = Path(__file__).parent / "model_configs"
for _config in sorted(CONFIG_DIR.glob("*.json")):
    open_clip.add_model_config(_config)  # name = file stem


def _create(spec: ModelSpec) -> tuple[torch.nn.Module, Callable[..., torch.Tensor]]:
    if spec.is_random:
        with torch.random.fork_rng(devices=[]):  # a seeded init that leaves the caller's RNG alone
            torch.manual_seed(int(spec.seed or 0))
            model, _, preprocess = open_clip.create_model_and_transforms(spec.target, pretrained=None)
    elif spec.kind in ("local", "package"):
        path = spec.path()
        if not (path / "open_clip_config.json").is_file():
            raise ModelSpecError(f"{path} is not an open_clip model folder (needs open_clip_config.json)")
        model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{path}")
    else:
        model, _, preprocess = open_clip.create_model_and_transforms(f"hf-hub:{spec.target}")
    return model, preprocess


@dataclass
class ClipEncoder:
    """A loaded open_clip model.

    Attributes:
        model: the open_clip model (eval mode, on ``device``).
        preprocess: PIL image -> (3, H, W) tensor, the model's own transform.
        tokenizer: texts -> (N, context_length) token ids.
        device: where the model runs.
        model_id: fingerprinted id (see ``ModelSpec.model_id``).
        spec: the spec it was loaded from.
    """

    model: Any
    preprocess: Callable[..., torch.Tensor]
    tokenizer: Callable[..., torch.Tensor]
    device: torch.device
    model_id: str
    spec: ModelSpec

    @classmethod
    def load(cls, spec: ModelSpec | str, *, device: str | None = None) -> ClipEncoder:
        """Load an open_clip model from a spec (``random:mmcrs-tiny@0``, ``local:/dir``, ``hub:...``)."""
        parsed = ModelSpec.parse(spec) if isinstance(spec, str) else spec
        model, preprocess = _create(parsed)
        target = pick_device(device)
        model = model.eval().to(target)
        return cls(model, preprocess, _tokenizer(parsed), target, cls.model_id_for(parsed), parsed)

    @staticmethod
    def model_id_for(spec: ModelSpec | str) -> str:
        """The ``model_id`` a spec loads as, without loading it (hashes the weight files once)."""
        parsed = ModelSpec.parse(spec) if isinstance(spec, str) else spec
        return parsed.model_id("clip-" + _arch_name(parsed))

    @property
    def dim(self) -> int:
        """Output dimension."""
        return (
            int(self.model.text_projection.shape[1])
            if hasattr(self.model, "text_projection")
            else int(self.model.visual.output_dim)
        )

    @torch.inference_mode()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) preprocessed images -> (B, D) L2-normalised float32 on the CPU."""
        with autocast(self.device):
            features = self.model.encode_image(pixels.to(self.device, non_blocking=True))
        return F.normalize(features.float(), dim=-1).cpu()

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> tuple[torch.Tensor, int]:
        """Texts -> ((N, D) L2-normalised float32, how many filled the whole context and were cut)."""
        tokens = self.tokenizer(list(texts))
        truncated = int((tokens[:, -1] != 0).sum())  # the last position is only used when the text was cut
        with autocast(self.device):
            features = self.model.encode_text(tokens.to(self.device, non_blocking=True))
        return F.normalize(features.float(), dim=-1).cpu(), truncated


def _tokenizer(spec: ModelSpec) -> Callable[..., torch.Tensor]:
    if spec.is_random:
        return open_clip.get_tokenizer(spec.target)
    if spec.kind == "hub":
        return open_clip.get_tokenizer(f"hf-hub:{spec.target}")
    return open_clip.get_tokenizer(f"local-dir:{spec.path()}")


def _arch_name(spec: ModelSpec) -> str:
    return spec.target if spec.is_random else Path(spec.target).name or "model"
