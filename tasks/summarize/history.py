"""A seeker's history before a recommendation, in chunks: what the recurrent summarizer reads, and nothing later.

A recommendation point is a recommender turn that mentions items. For a point at turn ``t``, the history is
built from turns ``< t`` only: the items mentioned so far (in order of first mention, with the seeker's
liked/seen labels where the turns carry them, and the item summary when there is one) in chunks of
``chunk_size`` items, each chunk with the seeker's own words since the previous chunk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Turn = Mapping[str, Any]  # a ``turns`` row: turn_idx, role, text, mentioned_item_ids, liked, seen


@dataclass(frozen=True)
class HistoryItem:
    """One mentioned item as the summarizer sees it."""

    item_id: str
    title: str
    liked: bool | None
    seen: bool | None
    summary: str | None
    turn_idx: int  # where it was first mentioned

    def describe(self) -> str:
        """One prompt line: ``- Title (liked, seen): summary``."""
        labels = [
            lab
            for lab, v in (
                ("liked", self.liked),
                ("disliked", self.liked is False),
                ("seen", self.seen),
                ("not seen", self.seen is False),
            )
            if v is True
        ]
        line = f"- {self.title}" + (f" ({', '.join(labels)})" if labels else "")
        return line + (f": {self.summary}" if self.summary else "")


@dataclass(frozen=True)
class Chunk:
    """Up to ``chunk_size`` items and the seeker's words that came with them."""

    items: tuple[HistoryItem, ...]
    words: tuple[str, ...]

    def inputs(self) -> dict[str, object]:
        """What the prompt of this step is rendered from (hashed into ``prompt_hash``)."""
        return {"items": [i.describe() for i in self.items], "words": list(self.words)}


def recommendation_points(turns: Sequence[Turn]) -> list[int]:
    """Turn indices at which the recommender recommends (a recommender turn that mentions items)."""
    return [int(t["turn_idx"]) for t in turns if t["role"] == "recommender" and t["mentioned_item_ids"]]


def _readable(turn: Turn, titles: Mapping[str, str], max_chars: int) -> str:
    text = str(turn["text"])
    for item_id in turn["mentioned_item_ids"] or ():
        text = text.replace(f"@{item_id}", titles.get(item_id, item_id))
    return text[:max_chars]


def _first_mentions(
    before: Sequence[Turn], titles: Mapping[str, str], summaries: Mapping[str, str], labels: bool
) -> list[HistoryItem]:
    seen_ids: dict[str, HistoryItem] = {}
    for turn in before:
        ids = list(turn["mentioned_item_ids"] or ())
        liked = list((turn["liked"] if labels else None) or [None] * len(ids))
        seen = list((turn["seen"] if labels else None) or [None] * len(ids))
        for k, item_id in enumerate(ids):
            if item_id not in seen_ids:
                seen_ids[item_id] = HistoryItem(
                    item_id,
                    titles.get(item_id, item_id),
                    liked[k] if k < len(liked) else None,
                    seen[k] if k < len(seen) else None,
                    summaries.get(item_id),
                    int(turn["turn_idx"]),
                )
    return list(seen_ids.values())


def history_chunks(
    turns: Sequence[Turn],
    upto_turn: int,
    *,
    chunk_size: int = 3,
    titles: Mapping[str, str] | None = None,
    summaries: Mapping[str, str] | None = None,
    max_words_chars: int = 240,
    max_utterances: int = 4,
    labels: bool = True,
) -> list[Chunk]:
    """The seeker's history before turn ``upto_turn`` in chunks (turns at or after it are never read).

    Args:
        turns: one dialogue's turns, any order.
        upto_turn: the recommendation turn; only turns with a smaller index are used.
        chunk_size: items per chunk.
        titles: item_id -> title (mentions in the text are replaced by titles).
        summaries: item_id -> item summary, where one exists.
        max_words_chars: each seeker utterance is cut to this many characters.
        max_utterances: the most recent utterances kept per chunk.
        labels: show the turns' liked / seen labels; False leaves every item unlabelled (ReDial's labels are
            post-dialogue questionnaire answers, which a deployed recommender never sees).

    Returns:
        The chunks in order; empty when nothing was said or mentioned before ``upto_turn``.
    """
    titles, summaries = titles or {}, summaries or {}
    before = sorted((t for t in turns if int(t["turn_idx"]) < upto_turn), key=lambda t: int(t["turn_idx"]))
    items = _first_mentions(before, titles, summaries, labels)
    groups = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)] or [[]]
    chunks, start = [], -1
    for n, group in enumerate(groups):
        end = upto_turn - 1 if n == len(groups) - 1 else max(i.turn_idx for i in group)
        words = [
            _readable(t, titles, max_words_chars)
            for t in before
            if t["role"] == "seeker" and start < int(t["turn_idx"]) <= end
        ]
        chunks.append(Chunk(tuple(group), tuple(words[-max_utterances:])))
        start = end
    return [] if not items and not any(c.words for c in chunks) else chunks
