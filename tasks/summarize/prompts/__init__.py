"""Versioned prompt templates: a system part and a user part, separated by a line of ``=====``.

A recurrent template either carries the previous step's answer inside its user part (a ``{previous}`` field,
``preference_v1``) or is *conversational* (no ``{previous}``, ``preference_v2``): step k+1's chat is step k's
chat, step k's answer as the assistant turn, and a new user message, so consecutive steps share a token prefix
and a backend can reuse its KV cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from tasks.summarize.backends import ChatPrompt

SEPARATOR = "\n=====\n"


@dataclass(frozen=True)
class Template:
    """A prompt template file: its name (``item_v1``), system text and user text with ``{fields}``."""

    name: str
    system: str
    user: str

    @property
    def text(self) -> str:
        """The file's content (what the prompt hash covers)."""
        return self.system + SEPARATOR + self.user

    @property
    def conversational(self) -> bool:
        """Recurrent steps continue one chat (True) instead of quoting the previous answer (``{previous}``)."""
        return "{previous}" not in self.user


@cache
def load_template(name: str) -> Template:
    """The template ``tasks/summarize/prompts/<name>.txt`` (shipped as package data)."""
    raw = resources.files(__package__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    system, _, user = raw.partition(SEPARATOR)
    return Template(name=name, system=system.strip(), user=user.strip())


def prompt_hash(template: Template, inputs: Any) -> str:
    """sha256 of the template text and the (JSON-serialised) inputs it is rendered with."""
    payload = template.text + "\0" + json.dumps(inputs, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def render(
    template: Template,
    fields: dict[str, str],
    *,
    images: tuple[bytes, ...] = (),
    history: tuple[tuple[str, str], ...] = (),
    cache_from: str | None = None,
    cache_as: str | None = None,
) -> ChatPrompt:
    """The chat prompt with ``fields`` filled in (values are inserted verbatim; fields the template does not
    name are ignored), after the earlier ``history`` exchanges, with the backend's cache hints."""
    return ChatPrompt(
        system=template.system,
        user=template.user.format(**fields),
        images=images,
        history=history,
        cache_from=cache_from,
        cache_as=cache_as,
    )
