"""Reader for the INSPIRED dialogue release (``dialog_data/{train,dev,test}.tsv``), streaming.

One utterance per row, tab-separated, with a header; the columns used are ``dialog_id``, ``speaker``
(``RECOMMENDER`` / ``SEEKER``), ``text`` (quotes written as ``QUOTATION_MARK``) and ``movies``
(``;``-separated ``Title (Year)`` names mentioned in the utterance). Rows of one dialogue are consecutive.
INSPIRED has no per-movie liked/seen labels, so those stay unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from tasks.ingest.records import (
    RECOMMENDER,
    SEEKER,
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
from tasks.ingest.titles import split_title_year

REQUIRED_COLUMNS = ("dialog_id", "speaker", "text", "movies")
_ROLES = {"SEEKER": SEEKER, "RECOMMENDER": RECOMMENDER}


class InspiredFormatError(ValueError):
    """The file as a whole is not an INSPIRED TSV (e.g. its header lacks required columns)."""


def _mention_text(text: str, names: list[str]) -> str:
    """Replace the first occurrence of each mentioned title in ``text`` with its mention mark."""
    for name in names:
        title, _ = split_title_year(name)
        if not title:
            continue
        pattern = re.compile(re.escape(title), re.IGNORECASE)
        text = pattern.sub(lambda _m, n=name: mark(n), text, count=1)
    return text


def _turn(idx: int, row: dict[str, str]) -> RawTurn | str:
    role = _ROLES.get(row["speaker"].strip().upper())
    if role is None:
        return f"unknown speaker {row['speaker']!r}"
    text = clean_text(row["text"].replace("QUOTATION_MARK", '"'))
    if not text:
        return "empty message"
    names = list(dict.fromkeys(clean_text(n) for n in row["movies"].split(";") if clean_text(n)))
    return RawTurn(idx, role, _mention_text(text, names), tuple(names), row.get("utt_id") or None)


def _dialogue(dialog_id: str, record_key: str) -> RawDialogue:
    clean = dialog_id.strip().removesuffix(".pkl")
    return RawDialogue(f"inspired:{clean}", "inspired", None, None, movie_names={}, record_key=record_key)


def _header(path: Path, first: bytes) -> list[str]:
    columns = first.decode("utf-8", "replace").rstrip("\r\n").split("\t")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InspiredFormatError(f"{path}: not an INSPIRED TSV, header lacks {', '.join(missing)}")
    return columns


def _row(raw: bytes, columns: list[str], key: str) -> dict[str, str] | Rejected:
    """One TSV line as a row, or a ``Rejected`` (bad UTF-8, wrong field count, an unusable ``dialog_id``)."""
    text = decode_line(raw, key)
    if isinstance(text, Rejected):
        return text
    fields = text.rstrip("\r\n").split("\t")
    if len(fields) < len(columns):  # trailing empty columns may be cut; required ones may not
        fields += [""] * (len(columns) - len(fields))
    if len(fields) != len(columns):
        return Rejected(key, f"row has {len(fields)} fields, header has {len(columns)}", excerpt(raw.decode()))
    row = dict(zip(columns, fields, strict=True))
    try:
        check_id(row["dialog_id"], "dialog_id")
    except ValueError as exc:
        return Rejected(key, f"invalid id: {exc}", excerpt(raw.decode()))
    return row


def _rows(path: Path) -> Iterator[tuple[str, dict[str, str] | Rejected]]:
    """(record key, row or ``Rejected``) per non-blank line after the header."""
    lines = keyed_lines(path)
    columns = _header(path, next(lines, ("", b""))[1])
    for key, raw in lines:
        if raw.strip():
            yield key, _row(raw, columns, key)


def read_inspired(path: Path) -> Iterator[RawDialogue | Rejected]:
    """Stream an INSPIRED TSV: one ``RawDialogue`` per dialogue, ``Rejected`` for unusable rows.

    A rejected utterance is keyed by its line (``<file>@<sha256 prefix>#L<line>``); a dialogue by its first line.

    Raises:
        InspiredFormatError: the header lacks the required columns (the input as a whole is unusable).
    """
    current: RawDialogue | None = None
    for key, row in _rows(path):
        if isinstance(row, Rejected):
            yield row
            continue
        dialogue_id = _dialogue(row["dialog_id"], key).dialogue_id
        if current is None or current.dialogue_id != dialogue_id:
            if current is not None:
                yield current
            current = _dialogue(row["dialog_id"], key)
        turn = _turn(len(current.turns) + len(current.rejected), row)
        if isinstance(turn, RawTurn):
            current.turns.append(turn)
            current.movie_names.update({n: n for n in turn.mentions})
        else:
            current.rejected.append(Rejected(key, turn, excerpt(row["text"] or key)))
    if current is not None:
        yield current
