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

import orjson

from tasks.ingest.records import (
    RECOMMENDER,
    SEEKER,
    Labels,
    RawDialogue,
    RawTurn,
    Rejected,
    check_id,
    clean_text,
    decode_line,
    excerpt,
    keyed_lines,
    mark,
)

_MENTION = re.compile(r"@(\d+)")
_DECIMAL = re.compile(r"-?[1-9][0-9]*|0")  # an integer's own decimal form
_DIGITS_TO_NINES = bytes.maketrans(b"0123456789", b"9" * 10)  # a run of 19 digits becomes 19 nines
_REQUIRED = ("conversationId", "messages", "initiatorWorkerId", "respondentWorkerId")


_FLAGS = {0: False, 1: True}
_NO_LABELS = Labels()


def _flag(value: Any) -> bool | None:
    return _FLAGS.get(value) if isinstance(value, int) else None


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
            new = Labels(_flag(qa.get("liked")), _flag(qa.get("seen")), _flag(qa.get("suggested")))
            old = merged.get(key := str(movie_id))
            if old is not None and None in new:
                new = Labels(*(o if n is None else n for n, o in zip(new, old, strict=True)))
            merged[key] = new
    return merged


def _mark_match(match: re.Match[str]) -> str:
    return mark(match.group(1))


def _roles(seeker: str, recommender: str) -> dict[str | int, str]:
    """Sender id -> role. An integer sender is the id whose decimal form it is: ``1`` is ``"1"`` (never
    ``"01"``), so the ids that are canonical decimals are keyed by their integer too."""
    roles: dict[str | int, str] = {seeker: SEEKER, recommender: RECOMMENDER}
    for worker, role in ((seeker, SEEKER), (recommender, RECOMMENDER)):
        if _DECIMAL.fullmatch(worker):
            roles[int(worker)] = role
    return roles


def _role(sender: Any, roles: dict[str | int, str]) -> str | None:
    kind = type(sender)
    if kind is str or kind is int:
        return roles.get(sender)
    if isinstance(sender, str):
        return roles.get(str(sender))
    return roles.get(str(sender)) if isinstance(sender, int) and not isinstance(sender, bool) else None


def _turn(idx: int, message: Any, roles: dict[str | int, str], names: dict[str, str]) -> RawTurn | str:
    """A usable turn, or the reason it is not."""
    if not isinstance(message, dict):
        return "message is not an object"
    text = message.get("text")
    if not isinstance(text, str):
        return "empty message"
    normalised = clean_text(text)
    if not normalised:
        return "empty message"
    role = _role(message.get("senderWorkerId"), roles)
    if role is None:
        return f"sender {message.get('senderWorkerId')!r} is neither the initiator nor the respondent"
    mentions: tuple[str, ...] = ()
    if "@" in text:
        found = _MENTION.findall(text)
        undefined = [m for m in found if m not in names]
        if undefined:
            return f"mentions @{undefined[0]}, which the dialogue's movieMentions does not define"
        normalised, mentions = _MENTION.sub(_mark_match, normalised), tuple(dict.fromkeys(found))
    message_id = message.get("messageId")
    message_id = None if message_id is None else check_id(message_id, "messageId")
    return RawTurn(idx, role, normalised, mentions, message_id)


def _names(mentions: Any) -> dict[str, str]:
    """``movieMentions`` as source movie id -> name; entries whose name is not text are left out (a turn that
    mentions one is then rejected as undefined)."""
    if not isinstance(mentions, dict):
        return {}
    return {str(k): clean_text(v) for k, v in mentions.items() if isinstance(v, str) and len(str(k)) <= 200}


def _header(record: Any) -> tuple[str, str, str] | str:
    """(dialogue id, seeker id, recommender id), or the reason the record is not a usable dialogue."""
    if not isinstance(record, dict):
        return "record is not a JSON object"
    missing = [f for f in _REQUIRED if f not in record]
    if missing:
        return f"missing field(s): {', '.join(missing)}"
    if not isinstance(record.get("messages"), list):
        return "messages is not a list"
    try:
        ids = [check_id(record[f], f) for f in ("conversationId", "initiatorWorkerId", "respondentWorkerId")]
    except ValueError as exc:
        return f"invalid id: {exc}"
    return ids[0], ids[1], ids[2]


def parse_record(record: Any, *, record_key: str) -> RawDialogue | Rejected:
    """One decoded JSON line to a ``RawDialogue`` (or a ``Rejected`` when it lacks what a dialogue needs).

    Ids (``conversationId``, the worker ids) must be strings or integers of sane length: null, objects,
    floats (NaN) and bools are rejected, never stringified.
    """
    header = _header(record)
    if isinstance(header, str):
        return Rejected(record_key, header, excerpt(record))
    conversation, seeker, recommender = header
    names = _names(record.get("movieMentions"))
    source = "synthetic" if record.get("synthetic") is True else "redial"
    dialogue = RawDialogue(
        dialogue_id=f"{source}:{conversation}",
        source=source,
        seeker_id=seeker,
        recommender_id=recommender,
        movie_names=names,
        labels=_labels(record),
        record_key=record_key,
    )
    roles = _roles(seeker, recommender)
    for idx, message in enumerate(record["messages"]):
        try:
            turn = _turn(idx, message, roles, names)
        except ValueError as exc:
            turn = f"invalid message: {exc}"
        if isinstance(turn, RawTurn):
            dialogue.turns.append(turn)
        else:
            dialogue.rejected.append(Rejected(f"{record_key}#turn{idx}", turn, excerpt(message)))
    return dialogue


def _stdlib_decode(line: str, key: str) -> Any | Rejected:
    """``json.loads``, for the lines orjson refuses or might read differently; its reasons are the ones stored."""
    try:
        value = json.loads(line)
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # text that is not Unicode (a lone surrogate)
        return value
    except json.JSONDecodeError as exc:
        return Rejected(key, f"invalid JSON: {exc.msg} at column {exc.colno}", excerpt(line.strip()))
    except RecursionError:
        return Rejected(key, "invalid JSON: nested too deeply", excerpt(line.strip()))
    except UnicodeEncodeError:
        return Rejected(key, "invalid JSON: a lone surrogate escape (text that is not Unicode)", excerpt(line.strip()))
    except ValueError as exc:  # e.g. an integer of thousands of digits
        return Rejected(key, f"invalid JSON: {exc}", excerpt(line.strip()))


def _decode(raw: bytes, key: str) -> Any | Rejected:
    """One JSONL line decoded, or a ``Rejected`` saying why it cannot be (bad UTF-8, bad JSON, nested too deep,
    an integer too long to convert, a lone surrogate).

    orjson reads the line when it can; a line it refuses, or one with a run of 19+ digits (orjson reads
    integers beyond 64 bits as floats), goes to ``json.loads``, so the values and reasons are the standard
    library's.
    """
    line = decode_line(raw, key)
    if isinstance(line, Rejected):
        return line
    if b"9" * 19 not in raw.translate(_DIGITS_TO_NINES):
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
    return _stdlib_decode(line, key)


def read_redial(path: Path) -> Iterator[RawDialogue | Rejected]:
    """Stream a ReDial JSONL file: one ``RawDialogue`` or ``Rejected`` per non-blank line.

    A line that cannot be decoded or parsed is one ``Rejected``; it never stops the file. Record keys are
    ``<file>@<sha256 prefix>#L<line>`` (see ``records.file_key``).
    """
    for key, raw in keyed_lines(path):
        if not raw.strip():
            continue
        record = _decode(raw, key)
        if isinstance(record, Rejected):
            yield record
            continue
        try:
            yield parse_record(record, record_key=key)
        except (RecursionError, ValueError, TypeError) as exc:  # whatever else a hostile record trips
            yield Rejected(key, f"unusable record: {type(exc).__name__}: {exc}", excerpt(raw.decode("utf-8")))
