"""Versioned prompt templates: a system part and a user part, separated by a line of ``=====``."""

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


def render(template: Template, fields: dict[str, str], *, images: tuple[bytes, ...] = ()) -> ChatPrompt:
    """The chat prompt with ``fields`` filled in (values are inserted verbatim)."""
    return ChatPrompt(system=template.system, user=template.user.format(**fields), images=images)
