"""Dialogue ingest: stream a ReDial or INSPIRED file into ``dialogues`` and ``turns``; nothing lost.

Per batch of dialogues: link mentions to items (creating namespaced items for unknown movies), then
write ``quarantine`` -> ``items`` -> ``turns`` -> ``dialogues``. The ``dialogues`` row, with a hash of
the dialogue's content, is written last and marks the dialogue as done: a dialogue whose hash is
unchanged is skipped entirely, and a run killed half-way redoes only what its last commit did not cover.
Re-ingesting the same file writes no new version of any table.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import polars as pl
import pyarrow as pa

import features
from features import CommitInfo, Lake, QuarantineRecord
from tasks.ingest.enrich import Enricher
from tasks.ingest.inspired import InspiredFormatError, read_inspired
from tasks.ingest.linking import ItemLinker
from tasks.ingest.records import MARK_CLOSE, MARK_OPEN, Labels, RawDialogue, Rejected, paused_gc
from tasks.ingest.redial import read_redial
from tasks.ingest.summary import InputSummary

DialogueFormat = Literal["redial", "inspired"]
STAGE = "ingest_dialogues"
_MARK = re.compile(f"{MARK_OPEN}(.*?){MARK_CLOSE}")
_READERS = {"redial": read_redial, "inspired": read_inspired}
_NO_LABELS = Labels()


class DialogueInputError(ValueError):
    """The input as a whole cannot be ingested (missing file, unknown format)."""


@dataclass(kw_only=True)
class IngestSummary(InputSummary):
    """Counts of one dialogue ingest, as printed by the CLI and shown in the Prefect artifact: the input's
    counts (dialogues), the turns written and deleted, and the items created for unknown movies."""

    format: str
    turns_written: int = 0
    turns_deleted: int = 0
    items_created: int = 0


def detect_format(path: Path, fmt: str | None = None) -> DialogueFormat:
    """The dialogue format, from ``fmt`` or the file extension (``.jsonl``/``.json``: redial, ``.tsv``: inspired)."""
    if fmt is not None:
        if fmt not in _READERS:
            raise DialogueInputError(f"unknown dialogue format {fmt!r}; use one of: {', '.join(_READERS)}")
        return fmt  # type: ignore[return-value]
    by_suffix: dict[str, DialogueFormat] = {".jsonl": "redial", ".json": "redial", ".tsv": "inspired"}
    if path.suffix.lower() not in by_suffix:
        raise DialogueInputError(f"cannot tell the format of {path.name}; pass --format redial|inspired")
    return by_suffix[path.suffix.lower()]


def _category(reason: str) -> str:
    return re.sub(r"[@#]?\d+", "N", reason.split(":")[0]).strip()


def _batches(records: Iterable[RawDialogue | Rejected], size: int) -> Iterator[list[RawDialogue | Rejected]]:
    batch: list[RawDialogue | Rejected] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _hash(payload: object) -> str:
    """sha256 of the payload as compact JSON with sorted keys (orjson writes the bytes
    ``json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))`` would)."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _turn_rows(dialogue: RawDialogue, linker: ItemLinker) -> list[dict[str, object]]:
    """The dialogue's ``turns`` rows, all columns but ``ingested_at``, with mentions linked to lake item ids."""
    links = {movie: linker.link(dialogue.source, movie, name) for movie, name in dialogue.movie_names.items()}
    at = {movie: f"@{item}" for movie, item in links.items()}

    def linked(match: re.Match[str]) -> str:  # a mention mark -> "@<lake item id>"
        return at.get(match.group(1)) or f"@{match.group(1)}"

    rows = []
    for turn in dialogue.turns:
        text, items, liked, seen, suggested = turn.text, [], [], [], []
        if turn.mentions:
            movies = turn.mentions if len(turn.mentions) == 1 else tuple(dict.fromkeys(turn.mentions))
            items = [links[m] for m in movies if m in links]
            items = items if len(items) < 2 else list(dict.fromkeys(items))
            labels = [dialogue.labels.get(m, _NO_LABELS) for m in movies]
            liked, seen, suggested = (
                [lab.liked for lab in labels],
                [lab.seen for lab in labels],
                [lab.suggested for lab in labels],
            )
        if MARK_OPEN in text:
            text = _MARK.sub(linked, text)
        rows.append(
            {
                "dialogue_id": dialogue.dialogue_id,
                "turn_idx": turn.idx,
                "role": turn.role,
                "text": text,
                "mentioned_item_ids": items,
                "liked": liked,
                "seen": seen,
                "suggested": suggested,
                "source_message_id": turn.message_id,
            }
        )
    return rows


def _dialogue_row(dialogue: RawDialogue, turns: list[dict[str, object]], source_file: str) -> dict[str, Any]:
    content = [dialogue.source, dialogue.seeker_id, dialogue.recommender_id, len(dialogue.rejected), *turns]
    return {
        "dialogue_id": dialogue.dialogue_id,
        "source": dialogue.source,
        "source_file": source_file,
        "seeker_id": dialogue.seeker_id,
        "recommender_id": dialogue.recommender_id,
        "n_turns": len(turns),
        "n_quarantined_turns": len(dialogue.rejected),
        "content_hash": _hash(content),
    }


def _arrow(table: str, rows: list[dict[str, object]], now: datetime) -> pa.Table:
    """``rows`` (every column of ``table`` but ``ingested_at``) as an Arrow table, stamped ``ingested_at=now``."""
    schema = features.spec_for(table).schema
    body = pa.schema([f for f in schema if f.name != "ingested_at"])
    columns = pa.array(rows, type=pa.struct(body)).flatten() if rows else body.empty_table().columns
    stamp = pa.repeat(pa.scalar(now, type=schema.field("ingested_at").type), len(rows))
    return pa.Table.from_arrays([*columns, stamp], names=[*body.names, "ingested_at"])


def _existing_hashes(ids: list[str], lake: Lake) -> dict[str, str]:
    if not ids:
        return {}
    found = (
        features.read("dialogues", columns=["dialogue_id", "content_hash"], missing="empty", lake=lake)
        .filter(pl.col("dialogue_id").is_in(ids))
        .collect()
    )
    return dict(found.iter_rows())


def _stale_turns(changed: dict[str, set[int]], lake: Lake) -> pl.DataFrame:
    """Keys (``dialogue_id, turn_idx``) of stored turns of changed dialogues that the new content no longer has:
    an anti-join, however many turns go."""
    kept = pl.DataFrame(
        [(d, i) for d, idxs in changed.items() for i in idxs],
        schema={"dialogue_id": pl.String, "turn_idx": pl.Int32},
        orient="row",
    )
    return (
        features.read("turns", columns=["dialogue_id", "turn_idx"], lake=lake)
        .filter(pl.col("dialogue_id").is_in(list(changed)))
        .join(kept.lazy(), on=["dialogue_id", "turn_idx"], how="anti")
        .collect()
    )


class _Run:
    """State of one ingest run: lake, linker, commit metadata, counts."""

    def __init__(
        self,
        path: Path,
        fmt: DialogueFormat,
        lake: Lake,
        run_id: str | None,
        batch_size: int,
        enricher: Enricher | None,
    ) -> None:
        self.path, self.lake, self.now, self.enricher = path, lake, datetime.now(UTC), enricher
        self.summary = IngestSummary(source_file=str(path), format=fmt)
        self.seen: set[str] = set()
        items_version = features.table_version("items", lake=lake)
        items = features.read("items", columns=["item_id", "source", "title", "year"], missing="empty", lake=lake)
        self.linker = ItemLinker.from_items(items.collect())
        self.commit = CommitInfo(
            stage=STAGE,
            flow_run_id=run_id,
            config_hash=features.config_hash({"format": fmt, "batch_size": batch_size}),
            input_versions={"items": items_version} if items_version is not None else {},
            extra={"source_file": path.name},
        )
        self.quarantine_source = f"dialogues:{fmt}"

    def reject(self, rejected: list[Rejected]) -> None:
        for r in rejected:
            self.summary.count_rejected(_category(r.reason))
        records = [QuarantineRecord(self.quarantine_source, r.record_key, r.reason, r.excerpt) for r in rejected]
        self.summary.record(features.quarantine(records, commit=self.commit, lake=self.lake, at=self.now))

    def _split(self, batch: list[RawDialogue | Rejected]) -> tuple[list[RawDialogue], list[Rejected]]:
        dialogues: list[RawDialogue] = []
        rejected: list[Rejected] = []
        self.summary.read += len(batch)
        for record in batch:
            if isinstance(record, Rejected):
                rejected.append(record)
                continue
            rejected.extend(record.rejected)
            if record.dialogue_id in self.seen:
                reason = f"duplicate dialogue id in input: {record.dialogue_id}"
                rejected.append(Rejected(record.record_key, reason, f"{len(record.turns)} turns"))
            elif not record.turns:
                rejected.append(Rejected(record.record_key, "dialogue has no usable messages", record.dialogue_id))
            else:
                self.seen.add(record.dialogue_id)
                dialogues.append(record)
        return dialogues, rejected

    def ingest_batch(self, batch: list[RawDialogue | Rejected]) -> None:
        dialogues, rejected = self._split(batch)
        self.reject(rejected)
        turns = {d.dialogue_id: _turn_rows(d, self.linker) for d in dialogues}
        rows = [_dialogue_row(d, turns[d.dialogue_id], self.path.name) for d in dialogues]
        old = _existing_hashes([r["dialogue_id"] for r in rows], self.lake)
        todo = [r for r in rows if old.get(r["dialogue_id"]) != r["content_hash"]]
        self.summary.unchanged += len(rows) - len(todo)
        if not todo:
            return
        if self.linker.new_items:
            new = self.enricher.enrich(self.linker.new_items) if self.enricher else self.linker.new_items
            items = _arrow("items", new, self.now)
            result = features.upsert("items", items, commit=self.commit, lake=self.lake)
            self.summary.items_created += result.inserted
            self.summary.record(result)
            self.linker.new_items.clear()
        turn_rows = [t for r in todo for t in turns[r["dialogue_id"]]]
        result = features.upsert("turns", _arrow("turns", turn_rows, self.now), commit=self.commit, lake=self.lake)
        self.summary.turns_written += result.inserted + result.updated
        self.summary.record(result)
        changed = {
            r["dialogue_id"]: {t["turn_idx"] for t in turns[r["dialogue_id"]]} for r in todo if r["dialogue_id"] in old
        }
        stale = _stale_turns(changed, self.lake) if changed else None
        if stale is not None and stale.height:
            deleted = features.delete_keys("turns", stale, commit=self.commit, lake=self.lake)
            self.summary.turns_deleted += deleted.deleted
            self.summary.record(deleted)
        result = features.upsert("dialogues", _arrow("dialogues", todo, self.now), commit=self.commit, lake=self.lake)
        self.summary.written += result.inserted
        self.summary.updated += result.updated
        self.summary.unchanged += result.unchanged  # another run landed the same content since the hash check
        self.summary.record(result)


def ingest_dialogues(
    path: str | Path,
    *,
    fmt: str | None = None,
    lake: Lake | str | None = None,
    run_id: str | None = None,
    batch_size: int = 20_000,
    enricher: Enricher | None = None,
) -> IngestSummary:
    """Ingest one dialogue file into the lake, writing only what differs from what is stored.

    Whether an unchanged file needs reading at all is the stage runner's decision (``flows.stages``).

    Args:
        path: a ReDial JSONL or INSPIRED TSV file.
        fmt: ``"redial"`` or ``"inspired"``; default from the file extension.
        lake: lake root (see ``features.resolve_lake``).
        run_id: the flow run id recorded in every commit.
        batch_size: dialogues per commit batch (bounds memory on very large files).
        enricher: a metadata source for the items created for movies no item matched.

    Returns:
        The run's ``IngestSummary``.

    Raises:
        DialogueInputError: the file is missing, of unknown format, or unusable as a whole.
    """
    source = Path(path)
    if not source.is_file():
        raise DialogueInputError(f"dialogue file not found: {source}")
    dialogue_format = detect_format(source, fmt)
    resolved = features.resolve_lake(lake)
    run = _Run(source, dialogue_format, resolved, run_id, batch_size, enricher)
    try:
        with paused_gc():
            for batch in _batches(_READERS[dialogue_format](source), batch_size):
                run.ingest_batch(batch)
                batch.clear()  # freed now, not traversed by the collector once it runs again
    except InspiredFormatError as exc:
        raise DialogueInputError(str(exc)) from exc
    return run.summary
