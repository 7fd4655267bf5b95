"""Source-neutral dialogue records, as readers yield them before linking to lake item ids."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

SEEKER = "seeker"
RECOMMENDER = "recommender"


@dataclass(frozen=True)
class Rejected:
    """An input record that cannot be used, with the reason; it becomes a ``quarantine`` row."""

    record_key: str
    reason: str
    excerpt: str


class Labels(NamedTuple):
    """What the source says about the seeker and one mentioned movie (None: unknown)."""

    liked: bool | None = None
    seen: bool | None = None
    suggested: bool | None = None


class RawTurn(NamedTuple):
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
    record_key: str = ""  # where in the input it came from (``file@digest#L7``): the key of its rejections


MAX_ID_CHARS = 200


def excerpt(value: object, limit: int = 200) -> str:
    """A short printable excerpt of a rejected record (never raises, however odd the value)."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except (RecursionError, ValueError):
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_id(value: object, field: str) -> str:
    """``value`` as an id: a string or integer (never a bool, float, list or object) of at most ``MAX_ID_CHARS``
    characters; raises ``ValueError`` with the reason otherwise.

    Example:
        >>> check_id(20001, "conversationId")
        '20001'
    """
    if type(value) is int:
        text = str(value)
    elif type(value) is str:
        text = value.strip()
    elif isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{field} is {type(value).__name__ if value is not None else 'null'}, not a string or integer")
    else:
        text = value.strip() if isinstance(value, str) else str(value)
    if not text:
        raise ValueError(f"{field} is empty")
    if len(text) > MAX_ID_CHARS:
        raise ValueError(f"{field} is {len(text)} characters long (at most {MAX_ID_CHARS})")
    return text


def file_key(path: Path) -> str:
    """The quarantine key prefix of an input file: its name and the start of its sha256 (``new.jsonl@3f2a…``),
    so rejections from two different files of the same name never share a key."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"{path.name}@{digest.hexdigest()[:16]}"


def keyed_lines(path: Path) -> Iterator[tuple[str, bytes]]:
    """Every line of a line-based input file, as bytes, with its record key ``<file>@<sha256 prefix>#L<line>``
    (see ``file_key``); blank lines included, so a reader decides what a blank line means."""
    prefix = file_key(path)
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            yield f"{prefix}#L{line_no}", raw


def decode_line(raw: bytes, key: str) -> str | Rejected:
    """One input line as text, or a ``Rejected`` naming its first byte that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(key, f"invalid UTF-8 at byte {exc.start}", excerpt(raw.decode("utf-8", "replace")))


# Readers mark a mention in turn text as MARK_OPEN + source movie id + MARK_CLOSE (private-use code
# points; ``clean_text`` replaces them in input text); linking replaces each mark with "@<lake item id>".
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"


def clean_text(text: str) -> str:
    """Source text with whitespace collapsed and the mark characters replaced (U+FFFD), so input text can
    never forge or break a mention mark."""
    return " ".join(text.replace(MARK_OPEN, "\ufffd").replace(MARK_CLOSE, "\ufffd").split())


def mark(source_movie_id: str) -> str:
    """The placeholder a reader writes into turn text for one mention."""
    return f"{MARK_OPEN}{source_movie_id}{MARK_CLOSE}"


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a reader builds many small containers (rows, turns).

    The records form no reference cycles (reference counting frees them), yet each allocation burst
    triggers collections that traverse the whole growing heap: pausing them more than halves the cost of
    parsing and linking. The collector is re-enabled (if it was on) when the block ends, however it ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
