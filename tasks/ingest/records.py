"""Source-neutral dialogue records, as readers yield them before linking to lake item ids."""

from __future__ import annotations

from dataclasses import dataclass, field

SEEKER = "seeker"
RECOMMENDER = "recommender"


@dataclass(frozen=True)
class Rejected:
    """An input record that cannot be used, with the reason; it becomes a ``quarantine`` row."""

    record_key: str
    reason: str
    excerpt: str


@dataclass(frozen=True)
class Labels:
    """What the source says about the seeker and one mentioned movie (None: unknown)."""

    liked: bool | None = None
    seen: bool | None = None
    suggested: bool | None = None


@dataclass(frozen=True)
class RawTurn:
    """One message. ``text`` holds mentions as ``@{source_movie_id}``; ``mentions`` lists them in order."""

    idx: int
    role: str
    text: str
    mentions: tuple[str, ...]
    message_id: str | None = None


@dataclass
class RawDialogue:
    """One dialogue in the source's own movie-id space.

    Attributes:
        dialogue_id: lake dialogue id, namespaced by source (``redial:20001``).
        source: source label stored in ``dialogues.source`` (``redial``, ``inspired``, ``synthetic``).
        movie_names: source movie id -> the name the source gives it (``"Heat (1995)"``).
        labels: source movie id -> seeker labels.
        turns: usable messages; ``rejected`` holds the messages that were not.
    """

    dialogue_id: str
    source: str
    seeker_id: str | None
    recommender_id: str | None
    movie_names: dict[str, str]
    labels: dict[str, Labels] = field(default_factory=dict)
    turns: list[RawTurn] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def excerpt(value: object, limit: int = 200) -> str:
    """A short printable excerpt of a rejected record."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Readers mark a mention in turn text as MARK_OPEN + source movie id + MARK_CLOSE (private-use code
# points never present in real text); linking replaces each mark with "@<lake item id>".
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"


def mark(source_movie_id: str) -> str:
    """The placeholder a reader writes into turn text for one mention."""
    return f"{MARK_OPEN}{source_movie_id}{MARK_CLOSE}"
