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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

import features
from features import CommitInfo, Lake, QuarantineRecord
from features.redact import has_userinfo
from tasks.ingest.catalog_files import CatalogInputError, RawRecord, Row, read_catalog_file
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


def _dedupe(rows: list[tuple[RawRecord, Row]]) -> tuple[list[Row], list[_Rejected]]:
    """Drop exact repeats; ids repeated with different content are rejected (every copy)."""
    by_id: dict[str, list[tuple[RawRecord, Row]]] = {}
    for record, row in rows:
        by_id.setdefault(str(row["item_id"]), []).append((record, row))
    kept: list[Row] = []
    rejected: list[_Rejected] = []
    for item_id, copies in by_id.items():
        if len({str(r["content_hash"]) for _, r in copies}) == 1:
            kept.append(copies[0][1])
        else:
            reason = f"duplicate item_id {item_id!r} with conflicting content"
            rejected += [_Rejected(record, reason) for record, _ in copies]
    return kept, rejected


def _validate(records: list[RawRecord], extra: list[str], source: str) -> tuple[list[Row], list[_Rejected]]:
    """(rows to land, every rejected record with its reason): unusable rows and conflicting repeats rejected."""
    good: list[tuple[RawRecord, Row]] = []
    bad: list[_Rejected] = []
    for record in records:
        if record.row is None:
            bad.append(_Rejected(record, record.reason or "unreadable record"))
            continue
        try:
            good.append((record, _clean(record.row, extra, source)))
        except (ValueError, TypeError, RecursionError) as exc:
            bad.append(_Rejected(record, str(exc) or type(exc).__name__))
    kept, conflicts = _dedupe(good)
    return kept, bad + conflicts


def _category(reason: str) -> str:
    return "duplicate item_id" if reason.startswith("duplicate item_id") else reason.split(":")[0]


def _quarantine_records(bad: list[_Rejected], source: str, summary: CatalogSummary) -> list[QuarantineRecord]:
    """The quarantine records of the rejected rows (an excerpt of each raw record); counts them by reason."""
    for rejected in bad:
        summary.count_rejected(_category(rejected.reason))
    return [QuarantineRecord(f"catalog:{source}", r.record.key, r.reason, r.record.text) for r in bad]


def ingest_catalog(
    path: str | Path,
    *,
    fmt: str | None = None,
    source: str | None = None,
    columns: Mapping[str, str] | None = None,
    lake: Lake | str | None = None,
    run_id: str | None = None,
    enricher: Enricher | None = None,
) -> CatalogSummary:
    """Upsert a catalog file into ``items``; bad rows go to ``quarantine``.

    Args:
        path: CSV, JSONL or Parquet file.
        fmt: format override (default: from the extension).
        source: label stored in ``items.source`` (default ``catalog``, ``redial`` for ``redial-movies``).
        columns: the file's column names mapped onto ours, e.g. ``{"movie_title": "title"}``.
        lake: lake root.
        run_id: flow run id recorded in the commits.
        enricher: a metadata source whose matched fields go into the rows' ``text`` and ``attributes``.
    """
    file = Path(path)
    source = source or (REDIAL_SOURCE if fmt == REDIAL_MOVIES else "catalog")
    read = read_catalog_file(file, fmt, columns or {})
    summary = CatalogSummary(source_file=str(file), read=len(read.records))
    if not read.records:
        summary.notes.append(f"catalog {file.name} has no rows: nothing to ingest")
        return summary
    if "item_id" not in read.columns and any(r.row is not None for r in read.records):
        raise CatalogInputError(f"{file.name}: no item_id column (columns: {', '.join(read.columns)})")
    extra = [c for c in read.columns if c not in (*CORE, "attributes")]
    now = datetime.now(UTC)
    config: dict[str, object] = {"source": source, "columns": dict(columns or {})}
    if enricher is not None:
        config["enrich_with"] = enricher.name
    commit = CommitInfo(
        stage=STAGE, flow_run_id=run_id, config_hash=features.config_hash(config), extra={"source_file": file.name}
    )
    kept, bad = _validate(read.records, extra, source)
    records = _quarantine_records(bad, source, summary)
    summary.record(features.quarantine(records, commit=commit, lake=lake, at=now))
    if kept and enricher is not None:
        kept = enricher.enrich(kept)
    if kept:
        items = pl.DataFrame([{**r, "ingested_at": now} for r in kept], infer_schema_length=None)
        result = features.upsert("items", items, commit=commit, lake=lake)
        summary.written, summary.updated, summary.unchanged = result.inserted, result.updated, result.unchanged
        summary.record(result)
    return summary
