"""LLM backends behind one interface: a local Hugging Face causal LM, or an OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ChatPrompt:
    """One chat request: a system message, earlier exchanges, a user message, and optional images.

    Attributes:
        system: the system message.
        user: the last user message (the one to answer).
        images: raw image bytes for the last user turn.
        history: earlier (user, assistant) exchanges of the same conversation, oldest first; they come between
            the system message and ``user``.
        cache_from: a hint for backends that keep KV caches (``CachingBackend``): the key of a stored state whose
            tokens may prefix this prompt (e.g. the previous step of the same conversation). Never changes the
            answer, only how much of the prompt has to be computed again; unknown keys are ignored.
        cache_as: keep the state after answering this prompt (prompt + answer) under this key, for a later
            prompt's ``cache_from``, until ``release_cache``.
    """

    system: str
    user: str
    images: tuple[bytes, ...] = field(default=(), repr=False)
    history: tuple[tuple[str, str], ...] = ()
    cache_from: str | None = field(default=None, compare=False)
    cache_as: str | None = field(default=None, compare=False)

    def messages(self) -> list[dict[str, str]]:
        """The conversation as chat messages (system, earlier exchanges, the last user message), without images."""
        turns = [{"role": "system", "content": self.system}]
        for user, assistant in self.history:
            turns += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        return [*turns, {"role": "user", "content": self.user}]


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


@runtime_checkable
class CachingBackend(Backend, Protocol):
    """A backend that keeps KV-cache states between calls (``ChatPrompt.cache_as`` / ``cache_from``).

    Its callers must release what they stored when a conversation ends, so that memory stays bounded.
    """

    def release_cache(self, keys: Iterable[str] | None = None) -> int:
        """Drop the states stored under ``keys`` (all of them when None); returns how many were dropped."""
        ...

    def cached_states(self) -> int:
        """How many states are held now."""
        ...


__all__ = ["Backend", "CachingBackend", "ChatPrompt", "Generation"]
