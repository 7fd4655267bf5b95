"""LLM backends behind one interface: a local Hugging Face causal LM, or an OpenAI-compatible server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ChatPrompt:
    """One chat request: a system message, a user message, and optional images (raw bytes) for the user turn."""

    system: str
    user: str
    images: tuple[bytes, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Generation:
    """One output: the text, the new tokens it took, and whether it stopped on its own (not at the token cap)."""

    text: str
    new_tokens: int
    finished: bool


@runtime_checkable
class Backend(Protocol):
    """What a summarizer needs from an LLM.

    ``model_id`` names the weights (with their fingerprint) so that a different model never reuses another's
    summaries; ``accepts_images`` says whether image content parts are understood.
    """

    model_id: str
    accepts_images: bool

    def generate(
        self, prompts: list[ChatPrompt], *, max_new_tokens: int, temperature: float = 0.0, seed: int | None = None
    ) -> list[Generation]:
        """One generation per prompt, in order. ``temperature`` 0 is greedy."""
        ...


__all__ = ["Backend", "ChatPrompt", "Generation"]
