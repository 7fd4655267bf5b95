"""Output checks: an LLM answer that is empty, runs away, or ignores the format is not a summary."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tasks.summarize.backends import Backend, ChatPrompt, Generation

_LEAKED_MARKERS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "\nuser:", "\nassistant:")


@dataclass(frozen=True)
class OutputChecks:
    """What a usable summary looks like.

    Attributes:
        min_chars: shorter (after stripping) counts as empty.
        require_phrase: a phrase the answer must contain (case-insensitive), e.g. ``"prefer"``; None: any.
        allow_unfinished: accept answers cut at ``max_new_tokens`` as they are (tests with random weights).
        trim_unfinished: an answer cut at ``max_new_tokens`` keeps its complete sentences (if any are left,
            it is usable; a long-winded answer is not a runaway one).
        max_repeat_share: the largest share of repeated word trigrams before an answer counts as runaway.
    """

    min_chars: int = 12
    require_phrase: str | None = None
    allow_unfinished: bool = False
    trim_unfinished: bool = True
    max_repeat_share: float = 0.5


def _repeat_share(text: str) -> float:
    words = re.findall(r"\w+", text.lower())
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return 0.0 if len(grams) < 4 else 1.0 - len(set(grams)) / len(grams)


def trim_to_sentences(generation: Generation) -> Generation:
    """An answer cut at the token cap, shortened to its last complete sentence (unchanged when none ends)."""
    if generation.finished:
        return generation
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", generation.text)]
    if not ends:
        return generation
    return Generation(generation.text[: ends[-1]].strip(), generation.new_tokens, finished=True)


def check_output(generation: Generation, checks: OutputChecks) -> str | None:
    """The reason an answer is unusable (``empty``, ``runaway: ...``, ``off-format: ...``), or None when usable."""
    text = generation.text.strip()
    if len(text) < checks.min_chars:
        return "empty"
    if not generation.finished and not checks.allow_unfinished:
        return "runaway: hit max_new_tokens"
    if _repeat_share(text) > checks.max_repeat_share:
        return "runaway: repetitive"
    if any(marker in text for marker in _LEAKED_MARKERS):
        return "off-format: chat markup in the answer"
    if checks.require_phrase and checks.require_phrase.lower() not in text.lower():
        return f"off-format: no {checks.require_phrase!r}"
    return None


@dataclass(frozen=True)
class Checked:
    """A checked answer: the text when usable, else the reason (and the last text, for the quarantine)."""

    text: str
    reason: str | None
    new_tokens: int


def generate_checked(
    backend: Backend,
    prompts: list[ChatPrompt],
    *,
    checks: OutputChecks,
    max_new_tokens: int,
    retry_temperature: float = 0.7,
    seed: int = 0,
    on_generated: Callable[[int], None] | None = None,
) -> list[Checked]:
    """Generate (greedy), re-generate the unusable answers once (sampled), and report what still fails."""

    def usable(g: Generation) -> Generation:
        return trim_to_sentences(g) if checks.trim_unfinished else g

    first = [usable(g) for g in backend.generate(prompts, max_new_tokens=max_new_tokens)]
    results = [Checked(g.text, check_output(g, checks), g.new_tokens) for g in first]
    retry = [i for i, r in enumerate(results) if r.reason]
    if on_generated:
        on_generated(len(prompts))
    if retry:
        again = backend.generate(
            [prompts[i] for i in retry], max_new_tokens=max_new_tokens, temperature=retry_temperature, seed=seed
        )
        for i, g in zip(retry, map(usable, again), strict=True):
            results[i] = Checked(g.text, check_output(g, checks), results[i].new_tokens + g.new_tokens)
        if on_generated:
            on_generated(len(retry))
    return results
