"""Catalog ingest: a CSV, JSONL or Parquet item catalog into ``items`` (upsert on ``item_id``).

Columns ``item_id, title, year, text, poster_url`` (or ``poster_path``, a local file), ``plot_url`` (text
fetched by the crawl stage when the catalog has none); ``columns`` maps other names onto these. An
``attributes`` JSON column, if present, is kept; otherwise every other column is folded into
``attributes``. A record that cannot be read (see ``tasks.ingest.catalog_files``), that lacks an id, whose
id is not a string or integer of sane length, whose title, plot or urls are not text, whose year is not a
year, or that repeats an id with different content goes to ``quarantine`` (one row per record, keyed by the
file's content and the record's line); the rest lands. ``content_hash`` covers the fields that
feed features, so later stages redo exactly what changed.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

import features
from features import CommitInfo, Lake, QuarantineRecord
from features.redact import has_userinfo
from tasks.ingest.catalog_files import BATCH_ROWS, CatalogInputError, RawRecord, Row, iter_catalog_file
from tasks.ingest.enrich import Enricher
from tasks.ingest.records import check_id
from tasks.ingest.redial_movies import FORMAT as REDIAL_MOVIES
from tasks.ingest.redial_movies import REDIAL_SOURCE
from tasks.ingest.summary import InputSummary
from tasks.items import item_content_hash

STAGE = "ingest_catalog"
CORE = ("item_id", "title", "year", "text", "poster_url", "poster_path", "plot_url")
__all__ = ["CORE", "STAGE", "CatalogInputError", "CatalogSummary", "ingest_catalog"]


class CatalogSummary(InputSummary):
    """Counts of one catalog ingest."""


def _attributes(row: Row, extra: list[str]) -> str | None:
    value = row.get("attributes")
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    if value is not None:
        raise ValueError(f"invalid attributes: {type(value).__name__}, not JSON text or an object")
    values = {k: row[k] for k in extra if row.get(k) is not None}
    return json.dumps(values, sort_keys=True, ensure_ascii=False, default=str) if values else None


def _year(value: object) -> int | None:
    """The year as int, None when absent; raises ``ValueError`` with the reason it is not a year."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and (math.isnan(value) or value.is_integer()):
        return None if math.isnan(value) else _year(int(value))
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"unparseable year: {type(value).__name__}")
    try:
        year = int(value.strip()) if isinstance(value, str) else value
    except ValueError:
        raise ValueError(f"unparseable year: {_short(value)}") from None
    if not 1800 <= year <= 2200:
        raise ValueError(f"implausible year: {_short(year)}")
    return year


def _short(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters (a reason stays short however long the value)."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else f"<{len(str(abs(value)))} digits>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(row: Row, name: str) -> str | None:
    """A text column's value (None when absent or blank); raises ``ValueError`` for any other type."""
    value = row.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"invalid {name}: {type(value).__name__}, not text")
    return value.strip() or None if isinstance(value, str) else None


def _url(row: Row, name: str) -> str | None:
    """A URL column's value; a URL carrying credentials (``user:password@``) is refused, never stored."""
    value = _text(row, name)
    if value is not None and has_userinfo(value):
        raise ValueError(f"invalid {name}: it carries credentials (user:password@), which would be stored")
    return value


def _clean(row: Row, extra: list[str], source: str) -> Row:
    """A normalised item row; raises ``ValueError`` with the reason the raw row is rejected. Types are
    checked, never stringified: an id is a string or an integer, titles and urls are text."""
    if row.get("item_id") is None or (isinstance(row["item_id"], str) and not row["item_id"].strip()):
        raise ValueError("missing item_id")
    try:
        item_id = check_id(row["item_id"], "item_id")
    except ValueError as exc:
        raise ValueError(f"invalid item_id: {exc}") from None
    text = row.get("text")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"invalid text: plot text is {type(text).__name__}, not text")
    item: Row = {
        "item_id": item_id,
        "source": source,
        "title": _text(row, "title"),
        "year": _year(row.get("year")),
        "text": text or None,
        "attributes": _attributes(row, extra),
        "poster_url": _url(row, "poster_url") or _text(row, "poster_path"),
        "plot_url": _url(row, "plot_url"),
    }
    return {**item, "content_hash": item_content_hash(item)}


@dataclass(frozen=True)
class _Rejected:
    record: RawRecord
    reason: str


def _extra(row: Row) -> list[str]:
    """The row's columns besides the core ones (folded into ``attributes``; a column absent from a row
    has no value there, so the row's own keys give the same attributes as the file's columns)."""
    return [c for c in row if c not in (*CORE, "attributes")]


def _validate(records: list[RawRecord], source: str) -> tuple[list[tuple[RawRecord, Row]], list[_Rejected]]:
    """(each usable record with its row, every unusable record with its reason)."""
    good: list[tuple[RawRecord, Row]] = []
    bad: list[_Rejected] = []
    for record in records:
        if record.row is None:
            bad.append(_Rejected(record, record.reason or "unreadable record"))
            continue
        try:
            good.append((record, _clean(record.row, _extra(record.row), source)))
        except (ValueError, TypeError, RecursionError) as exc:
            bad.append(_Rejected(record, str(exc) or type(exc).__name__))
    return good, bad


def _category(reason: str) -> str:
    return "duplicate item_id" if reason.startswith("duplicate item_id") else reason.split(":")[0]


def _conflict(item_id: str) -> str:
    return f"duplicate item_id {item_id!r} with conflicting content"


@dataclass
class _Staging:
    """Pass one of a catalog ingest: every batch's usable rows spilled to Parquet (with each record's key and
    excerpt, and whether it repeats an earlier id), and per id the hash of its first copy (8 bytes of it),
    so that ids repeated with different content are known, however far apart, before anything lands."""

    folder: Path
    first: dict[str, int] = field(default_factory=dict)
    conflicted: set[str] = field(default_factory=set)
    files: list[Path] = field(default_factory=list)

    def spill(self, good: list[tuple[RawRecord, Row]]) -> None:
        """Spill one batch's usable rows, noting repeats and conflicts."""
        repeat: list[bool] = []
        for _, row in good:
            item_id, digest = str(row["item_id"]), int(str(row["content_hash"])[:16], 16)
            repeat.append(item_id in self.first)
            if item_id not in self.first:
                self.first[item_id] = digest
            elif self.first[item_id] != digest:
                self.conflicted.add(item_id)
        if not good:
            return
        columns = {name: [row[name] for _, row in good] for name in good[0][1]}
        columns |= {"_key": [r.key for r, _ in good], "_text": [r.text for r, _ in good], "_repeat": repeat}
        schema = {
            name: pl.Int64 if name == "year" else pl.Boolean if name == "_repeat" else pl.String for name in columns
        }
        self.files.append(self.folder / f"{len(self.files)}.parquet")
        pl.DataFrame(columns, schema=schema).write_parquet(self.files[-1])

    def batches(self, source: str) -> Iterator[tuple[pl.DataFrame, list[QuarantineRecord]]]:
        """Pass two, batch by batch: (rows to land, quarantine records of the conflicting copies)."""
        for path in self.files:
            frame = pl.read_parquet(path)
            clash = frame["item_id"].cast(pl.String).is_in(list(self.conflicted))
            rejected = frame.filter(clash)
            records = [
                QuarantineRecord(f"catalog:{source}", key, _conflict(str(item_id)), text)
                for item_id, key, text in rejected.select("item_id", "_key", "_text").iter_rows()
            ]
            kept = frame.filter(~clash & ~pl.col("_repeat")).drop("_key", "_text", "_repeat")
            yield kept, records


def _quarantine_records(bad: list[_Rejected], source: str, summary: CatalogSummary) -> list[QuarantineRecord]:
    """The quarantine records of the rejected rows (an excerpt of each raw record); counts them by reason."""
    for rejected in bad:
        summary.count_rejected(_category(rejected.reason))
    return [QuarantineRecord(f"catalog:{source}", r.record.key, r.reason, r.record.text) for r in bad]


def _first_batch_checked(file: Path, names: list[str], batches: Iterator[list[RawRecord]]) -> Iterator[list[RawRecord]]:
    """The batches, refusing a file without an ``item_id`` column that has readable rows (before any write)."""
    if "item_id" in names:
        return batches
    whole = [record for batch in batches for record in batch]
    if any(r.row is not None for r in whole):
        raise CatalogInputError(f"{file.name}: no item_id column (columns: {', '.join(names)})")
    return iter([whole] if whole else [])


def _stage_file(
    batches: Iterator[list[RawRecord]], staging: _Staging, source: str, summary: CatalogSummary, write: _Writer
) -> None:
    """Pass one: validate every batch, quarantine its unusable records, spill its usable rows."""
    for batch in batches:
        summary.read += len(batch)
        good, bad = _validate(batch, source)
        write.quarantine(_quarantine_records(bad, source, summary))
        staging.spill(good)


@dataclass
class _Writer:
    """The commits of one catalog ingest: quarantine records and item upserts, counted in the summary."""

    commit: CommitInfo
    lake: Lake | str | None
    now: datetime
    summary: CatalogSummary
    enricher: Enricher | None
    _stored: pl.Series | None = None

    def quarantine(self, records: list[QuarantineRecord]) -> None:
        if records:
            self.summary.record(features.quarantine(records, commit=self.commit, lake=self.lake, at=self.now))

    def items(self, kept: pl.DataFrame) -> None:
        if not kept.height:
            return
        if self.enricher is None:
            items = kept.with_columns(pl.lit(self.now).alias("ingested_at"))
        else:
            rows = self.enricher.enrich(kept.to_dicts())
            items = pl.DataFrame([{**r, "ingested_at": self.now} for r in rows], infer_schema_length=None)
        known = items["item_id"].cast(pl.String).is_in(self.stored().implode())
        if not known.all():  # items new to the lake: appended, a commit that reads nothing of the table
            version = features.table_version("items", lake=self.lake)
            app_version = 0 if version is None else version + 1  # above any version this app recorded
            fresh = items.filter(~known)
            result = features.append(
                "items", fresh, commit=self.commit, app_id=f"{STAGE}/items", app_version=app_version, lake=self.lake
            )
            self.summary.written += result.inserted
            self.summary.record(result)
        if known.any():  # items the lake has: merged, only what changed is written
            result = features.upsert("items", items.filter(known), commit=self.commit, lake=self.lake)
            self.summary.written += result.inserted
            self.summary.updated += result.updated
            self.summary.unchanged += result.unchanged
            self.summary.record(result)

    def stored(self) -> pl.Series:
        """The ids in ``items`` when this ingest started (read once: the ingest's own appends are new ids)."""
        if self._stored is None:
            ids = features.read("items", columns=["item_id"], missing="empty", lake=self.lake).collect()
            self._stored = ids["item_id"]
        return self._stored


def ingest_catalog(
    path: str | Path,
    *,
    fmt: str | None = None,
    source: str | None = None,
    columns: Mapping[str, str] | None = None,
    lake: Lake | str | None = None,
    run_id: str | None = None,
    enricher: Enricher | None = None,
    batch_rows: int = BATCH_ROWS,
) -> CatalogSummary:
    """Upsert a catalog file into ``items``; bad rows go to ``quarantine``.

    The file is streamed in two passes over batches of ``batch_rows`` records:
    the first validates each batch and spills its rows to a scratch folder, the second lands them, one
    ``items`` upsert per batch; memory holds one batch and 8 bytes per item id, not the catalog.

    Args:
        path: CSV, JSONL or Parquet file.
        fmt: format override (default: from the extension).
        source: label stored in ``items.source`` (default ``catalog``, ``redial`` for ``redial-movies``).
        columns: the file's column names mapped onto ours, e.g. ``{"movie_title": "title"}``.
        lake: lake root.
        run_id: flow run id recorded in the commits.
        enricher: a metadata source whose matched fields go into the rows' ``text`` and ``attributes``.
        batch_rows: records per batch (the memory bound; the result does not depend on it).
    """
    file = Path(path)
    source = source or (REDIAL_SOURCE if fmt == REDIAL_MOVIES else "catalog")
    names, batches = iter_catalog_file(file, fmt, columns or {}, batch_rows=batch_rows)
    batches = _first_batch_checked(file, names, batches)
    summary = CatalogSummary(source_file=str(file))
    config: dict[str, object] = {"source": source, "columns": dict(columns or {})}
    if enricher is not None:
        config["enrich_with"] = enricher.name
    commit = CommitInfo(
        stage=STAGE, flow_run_id=run_id, config_hash=features.config_hash(config), extra={"source_file": file.name}
    )
    write = _Writer(commit, lake, datetime.now(UTC), summary, enricher)
    with tempfile.TemporaryDirectory(prefix="mmcrs-catalog-") as scratch:
        staging = _Staging(Path(scratch))
        _stage_file(batches, staging, source, summary, write)
        for kept, conflicts in staging.batches(source):
            for record in conflicts:
                summary.count_rejected(_category(record.reason))
            write.quarantine(conflicts)
            write.items(kept)
    if not summary.read:
        summary.notes.append(f"catalog {file.name} has no rows: nothing to ingest")
    return summary
