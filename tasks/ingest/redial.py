"""Reader for ReDial's raw JSONL (one conversation per line), streaming, line by line.

Fields used: ``conversationId``, ``messages[{text, senderWorkerId, messageId}]``, ``movieMentions{id: name}``,
``initiatorWorkerId`` (the seeker), ``respondentWorkerId``, ``initiatorQuestions`` / ``respondentQuestions``
(``{id: {suggested, seen, liked}}`` with 0 = no, 1 = yes, 2 = did not say). A line carrying
``"synthetic": true`` (the demo's MovieLens-derived dialogues) is labelled source ``synthetic``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tasks.ingest.records import RECOMMENDER, SEEKER, Labels, RawDialogue, RawTurn, Rejected, excerpt, mark

_MENTION = re.compile(r"@(\d+)")
_REQUIRED = ("conversationId", "messages", "initiatorWorkerId", "respondentWorkerId")


def _flag(value: Any) -> bool | None:
    return {0: False, 1: True}.get(value) if isinstance(value, int) else None


def _labels(record: dict[str, Any]) -> dict[str, Labels]:
    """Seeker labels per movie: the initiator's answers, else the respondent's."""
    merged: dict[str, Labels] = {}
    for field in ("respondentQuestions", "initiatorQuestions"):  # later wins
        answers = record.get(field)
        if not isinstance(answers, dict):
            continue
        for movie_id, qa in answers.items():
            if not isinstance(qa, dict):
                continue
            old = merged.get(str(movie_id), Labels())
            new = {k: _flag(qa.get(k)) for k in ("liked", "seen", "suggested")}
            merged[str(movie_id)] = Labels(**{k: v if v is not None else getattr(old, k) for k, v in new.items()})
    return merged


def _turn(idx: int, message: Any, roles: dict[str, str], names: dict[str, str]) -> RawTurn | str:
    """A usable turn, or the reason it is not."""
    if not isinstance(message, dict):
        return "message is not an object"
    text = message.get("text")
    if not isinstance(text, str) or not text.strip():
        return "empty message"
    role = roles.get(str(message.get("senderWorkerId")))
    if role is None:
        return f"sender {message.get('senderWorkerId')!r} is neither the initiator nor the respondent"
    mentions = _MENTION.findall(text)
    undefined = [m for m in mentions if m not in names]
    if undefined:
        return f"mentions @{undefined[0]}, which the dialogue's movieMentions does not define"
    normalised = _MENTION.sub(lambda m: mark(m.group(1)), " ".join(text.split()))
    message_id = None if message.get("messageId") is None else str(message["messageId"])
    return RawTurn(idx, role, normalised, tuple(dict.fromkeys(mentions)), message_id)


def parse_record(record: Any, *, record_key: str) -> RawDialogue | Rejected:
    """One decoded JSON line to a ``RawDialogue`` (or a ``Rejected`` when it lacks what a dialogue needs)."""
    if not isinstance(record, dict):
        return Rejected(record_key, "record is not a JSON object", excerpt(record))
    missing = [f for f in _REQUIRED if f not in record]
    if missing or not isinstance(record.get("messages"), list):
        reason = f"missing field(s): {', '.join(missing)}" if missing else "messages is not a list"
        return Rejected(record_key, reason, excerpt(json.dumps(record)[:200]))
    mentions = record.get("movieMentions") or {}
    names = {str(k): str(v) for k, v in mentions.items()} if isinstance(mentions, dict) else {}
    source = "synthetic" if record.get("synthetic") else "redial"
    seeker, recommender = str(record["initiatorWorkerId"]), str(record["respondentWorkerId"])
    dialogue = RawDialogue(
        dialogue_id=f"{source}:{record['conversationId']}",
        source=source,
        seeker_id=seeker,
        recommender_id=recommender,
        movie_names=names,
        labels=_labels(record),
    )
    roles = {seeker: SEEKER, recommender: RECOMMENDER}
    for idx, message in enumerate(record["messages"]):
        turn = _turn(idx, message, roles, names)
        if isinstance(turn, RawTurn):
            dialogue.turns.append(turn)
        else:
            key = f"{dialogue.dialogue_id}#turn{idx}"
            dialogue.rejected.append(Rejected(key, turn, excerpt(message)))
    return dialogue


def read_redial(path: Path) -> Iterator[RawDialogue | Rejected]:
    """Stream a ReDial JSONL file: one ``RawDialogue`` or ``Rejected`` per non-blank line."""
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            key = f"{path.name}#L{line_no}"
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                text = raw.decode("utf-8", "replace")
                yield Rejected(key, f"invalid UTF-8 at byte {exc.start}", excerpt(text))
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Rejected(key, f"invalid JSON: {exc.msg} at column {exc.colno}", excerpt(line.strip()))
                continue
            yield parse_record(record, record_key=key)
