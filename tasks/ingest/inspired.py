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

from tasks.ingest.records import RECOMMENDER, SEEKER, RawDialogue, RawTurn, Rejected, excerpt, mark
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
    text = " ".join(row["text"].replace("QUOTATION_MARK", '"').split())
    if not text:
        return "empty message"
    names = list(dict.fromkeys(n.strip() for n in row["movies"].split(";") if n.strip()))
    return RawTurn(idx, role, _mention_text(text, names), tuple(names), row.get("utt_id") or None)


def _dialogue(dialog_id: str) -> RawDialogue:
    clean = dialog_id.removesuffix(".pkl")
    return RawDialogue(f"inspired:{clean}", "inspired", None, None, movie_names={})


def _header(path: Path, first: bytes) -> list[str]:
    columns = first.decode("utf-8", "replace").rstrip("\r\n").split("\t")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InspiredFormatError(f"{path}: not an INSPIRED TSV, header lacks {', '.join(missing)}")
    return columns


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str] | Rejected]]:
    with path.open("rb") as fh:
        columns = _header(path, fh.readline())
        for line_no, raw in enumerate(fh, start=2):
            key = f"{path.name}#L{line_no}"
            if not raw.strip():
                continue
            try:
                fields = raw.decode("utf-8").rstrip("\r\n").split("\t")
            except UnicodeDecodeError as exc:
                text = raw.decode("utf-8", "replace")
                yield line_no, Rejected(key, f"invalid UTF-8 at byte {exc.start}", excerpt(text))
                continue
            if len(fields) < len(columns):  # trailing empty columns may be cut; required ones may not
                fields += [""] * (len(columns) - len(fields))
            if len(fields) != len(columns) or not fields[columns.index("dialog_id")].strip():
                yield (
                    line_no,
                    Rejected(
                        key,
                        f"row has {len(fields)} fields, header has {len(columns)}",
                        excerpt(raw.decode("utf-8", "replace")),
                    ),
                )
                continue
            yield line_no, dict(zip(columns, fields, strict=True))


def read_inspired(path: Path) -> Iterator[RawDialogue | Rejected]:
    """Stream an INSPIRED TSV: one ``RawDialogue`` per dialogue, ``Rejected`` for unusable rows.

    Raises:
        InspiredFormatError: the header lacks the required columns (the input as a whole is unusable).
    """
    current: RawDialogue | None = None
    for line_no, row in _rows(path):
        if isinstance(row, Rejected):
            yield row
            continue
        if current is None or current.dialogue_id != _dialogue(row["dialog_id"]).dialogue_id:
            if current is not None:
                yield current
            current = _dialogue(row["dialog_id"])
        turn = _turn(len(current.turns) + len(current.rejected), row)
        if isinstance(turn, RawTurn):
            current.turns.append(turn)
            current.movie_names.update({n: n for n in turn.mentions})
        else:
            key = f"{current.dialogue_id}#turn{len(current.turns) + len(current.rejected)}"
            current.rejected.append(Rejected(key, turn, excerpt(row["text"] or f"line {line_no}")))
    if current is not None:
        yield current
