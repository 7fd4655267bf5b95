"""CRS recommendation samples from ``turns`` (UniCRS / CRSLab protocol), and the split by dialogue.

For each recommender turn that mentions items, one sample per mentioned item: the context is the
dialogue before that turn (text, mentioned items with their liked labels) plus the latest preference
summary written before it. A target already mentioned earlier in the dialogue is a *repeat*; the
"no repeats" protocol leaves those samples out.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

MENTION = re.compile(r"@(\w(?:[\w:.\-/]*\w)?)")  # @<item_id>; trailing punctuation is not part of the id


@dataclass(frozen=True)
class Sample:
    """One recommendation sample."""

    dialogue_id: str
    turn_idx: int
    target: str
    context_text: str  # earlier turns, "role: text" per line
    context_items: tuple[str, ...]  # items mentioned earlier, in order, without duplicates
    context_liked: tuple[bool | None, ...]  # aligned with context_items (last label seen)
    summary: str | None  # latest preference summary with upto_turn < turn_idx
    repeat: bool  # target among context_items
    context_mentions: tuple[str, ...] = ()  # aligned with context_items: the latest turn mentioning it, rendered
    labels_observed: bool = True  # False: context_liked carries no information (serving time, every label None)


@dataclass(frozen=True)
class Split:
    """Dialogue ids per split, and the seed that made it."""

    seed: int
    train: tuple[str, ...]
    valid: tuple[str, ...]
    test: tuple[str, ...]

    def of(self, name: str) -> tuple[str, ...]:
        """The dialogue ids of ``"train"``, ``"valid"`` or ``"test"``."""
        return {"train": self.train, "valid": self.valid, "test": self.test}[name]


def split_dialogues(
    dialogue_ids: Iterable[str], *, seed: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> Split:
    """Shuffle the (sorted, de-duplicated) dialogue ids with ``seed`` and cut them by ``fractions``."""
    ids = sorted(set(dialogue_ids))
    random.Random(seed).shuffle(ids)
    n_train = round(len(ids) * fractions[0])
    n_valid = round(len(ids) * fractions[1])
    return Split(seed, tuple(ids[:n_train]), tuple(ids[n_train : n_train + n_valid]), tuple(ids[n_train + n_valid :]))


def without_labels(samples: Iterable[Sample]) -> list[Sample]:
    """The samples as ``recommend()`` sees their dialogues at serving time: every context item's label unknown.

    Labels that come from a post-dialogue questionnaire (ReDial's liked / seen) are no model input at test time.
    """
    return [
        dataclasses.replace(s, context_liked=(None,) * len(s.context_items), labels_observed=False) for s in samples
    ]


def render_text(text: str, titles: Mapping[str, str] | None = None) -> str:
    """Replace ``@<item_id>`` mentions by item titles where known (the LM reads words, not ids)."""
    if not titles:
        return text
    return MENTION.sub(lambda m: titles.get(m.group(1), m.group(0)), text)


def _latest_summary(summaries: Sequence[tuple[int, str]], turn_idx: int) -> str | None:
    before = [s for s in summaries if s[0] < turn_idx]
    return max(before)[1] if before else None


def _dialogue_samples(
    dialogue_id: str, turns: list[dict], summaries: Sequence[tuple[int, str]], titles: Mapping[str, str] | None
) -> list[Sample]:
    samples: list[Sample] = []
    lines: list[str] = []
    liked: dict[str, bool | None] = {}  # insertion-ordered: the context items
    mention: dict[str, str] = {}  # item -> the latest line that mentions it
    for turn in turns:
        mentioned = list(turn["mentioned_item_ids"] or [])
        if turn["role"] == "recommender" and mentioned:
            context = "\n".join(lines)
            summary = _latest_summary(summaries, turn["turn_idx"])
            items, labels = tuple(liked), tuple(liked.values())
            texts = tuple(mention[i] for i in items)
            for target in dict.fromkeys(mentioned):
                samples.append(
                    Sample(
                        dialogue_id, turn["turn_idx"], target, context, items, labels, summary, target in liked, texts
                    )
                )
        lines.append(f"{turn['role']}: {render_text(turn['text'], titles)}")
        mention |= dict.fromkeys(mentioned, lines[-1])
        labels_now = list(turn["liked"] or [None] * len(mentioned))
        for item, label in zip(mentioned, labels_now + [None] * (len(mentioned) - len(labels_now)), strict=True):
            liked[item] = label if label is not None else liked.get(item)
    return samples


def build_samples(
    turns: pl.DataFrame,
    *,
    summaries: pl.DataFrame | None = None,
    titles: Mapping[str, str] | None = None,
) -> list[Sample]:
    """Samples from a ``turns`` frame, ordered by (dialogue_id, turn_idx, target position).

    Args:
        turns: rows of the ``turns`` table (dialogue_id, turn_idx, role, text, mentioned_item_ids, liked).
        summaries: rows of ``preference_summaries`` (dialogue_id, upto_turn, summary); one model/prompt.
        titles: item_id -> title, used to render mentions in the context text.
    """
    by_dialogue: dict[str, list[tuple[int, str]]] = {}
    if summaries is not None:
        for row in summaries.select("dialogue_id", "upto_turn", "summary").iter_rows():
            by_dialogue.setdefault(row[0], []).append((row[1], row[2]))
    samples: list[Sample] = []
    ordered = turns.sort("dialogue_id", "turn_idx")
    for (dialogue_id,), group in ordered.group_by("dialogue_id", maintain_order=True):
        rows = group.select("turn_idx", "role", "text", "mentioned_item_ids", "liked").to_dicts()
        samples.extend(_dialogue_samples(str(dialogue_id), rows, by_dialogue.get(str(dialogue_id), []), titles))
    return samples


def context_from_messages(
    messages: Sequence[Mapping[str, str]], *, titles: Mapping[str, str] | None = None
) -> tuple[str, tuple[str, ...]]:
    """Context text and mentioned items (in order, unique) of a dialogue given as ``{"role", "text"}`` dicts
    (chat-style ``{"role", "content"}`` too)."""
    texts = [message_text(m) for m in messages]
    lines = [f"{m.get('role', 'seeker')}: {render_text(t, titles)}" for m, t in zip(messages, texts, strict=True)]
    items = tuple(dict.fromkeys(i for t in texts for i in MENTION.findall(t)))
    return "\n".join(lines), items


def mention_lines(
    messages: Sequence[Mapping[str, str]], items: Sequence[str], *, titles: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """Per item of ``items``, the latest message that mentions it as a rendered ``"role: text"`` line ("" when
    none does): the text the sentiment head reads."""
    latest: dict[str, str] = {}
    for m in messages:
        text = message_text(m)
        latest |= dict.fromkeys(MENTION.findall(text), f"{m.get('role', 'seeker')}: {render_text(text, titles)}")
    return tuple(latest.get(i, "") for i in items)


def message_text(message: Mapping[str, str]) -> str:
    """A message's text: its ``text``, else its chat-style ``content``.

    Raises:
        ValueError: the message has neither as a string.
    """
    text = message.get("text", message.get("content"))
    if not isinstance(text, str):
        raise ValueError(f'a message needs a "text" (or "content") string: {dict(message)!r:.80}')
    return text
