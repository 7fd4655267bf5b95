"""Catalog ingest: a CSV, JSONL or Parquet item catalog into ``items`` (upsert on ``item_id``).

Columns ``item_id, title, year, text, poster_url`` (or ``poster_path``, a local file), ``plot_url`` (text
fetched by the crawl stage when the catalog has none); ``columns`` maps other names onto these. An
``attributes`` JSON column, if present, is kept; otherwise every other column is folded into
``attributes``. Rows without an id, with a year that is not a year, with a non-text plot, or repeating an
id with different content go to ``quarantine``; the rest lands. ``content_hash`` covers the fields that
feed features, so later stages redo exactly what changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

import features
from features import CommitInfo, Lake, QuarantineRecord
from tasks.ingest.summary import InputSummary
from tasks.items import item_content_hash

STAGE = "ingest_catalog"
CORE = ("item_id", "title", "year", "text", "poster_url", "poster_path", "plot_url")


class CatalogInputError(ValueError):
    """The catalog as a whole cannot be ingested (missing file, unknown format, no item_id column)."""


class CatalogSummary(InputSummary):
    """Counts of one catalog ingest."""


Row = dict[str, object]


def _read_jsonl(path: Path) -> tuple[list[str], list[Row | str]]:
    """Rows as parsed (a nested plot stays a dict, so it can be refused); a bad line becomes its reason."""
    rows: list[Row | str] = []
    columns: dict[str, None] = {}
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                rows.append(f"invalid JSON: {exc}")
                continue
            if not isinstance(record, dict):
                rows.append(f"not a JSON object: {type(record).__name__}")
                continue
            columns.update(dict.fromkeys(record))
            rows.append(record)
    return list(columns), rows


def _read(path: Path, fmt: str | None, columns: Mapping[str, str]) -> tuple[list[str], list[Row | str]]:
    """Column names (after the mapping) and rows; a row that cannot be read at all is its reason."""
    kind = fmt or {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}.get(path.suffix.lower())
    if not path.is_file():
        raise CatalogInputError(f"catalog file not found: {path}")
    if kind not in ("csv", "jsonl", "parquet"):
        raise CatalogInputError(f"cannot tell the format of {path.name}; pass --format csv|jsonl|parquet")
    if kind == "jsonl":
        names, rows = _read_jsonl(path)
    else:
        frame = pl.read_csv(path, infer_schema=False) if kind == "csv" else pl.read_parquet(path)
        names, rows = frame.columns, list(frame.iter_rows(named=True))
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise CatalogInputError(f"{path.name}: column mapping names missing column(s) {', '.join(unknown)}")
    renamed = [{columns.get(k, k): v for k, v in row.items()} if isinstance(row, dict) else row for row in rows]
    return [columns.get(c, c) for c in names], renamed


def _attributes(row: dict[str, object], extra: list[str]) -> str | None:
    if "attributes" in row and row["attributes"] is not None:
        return str(row["attributes"])
    values = {k: row[k] for k in extra if row.get(k) is not None}
    return json.dumps(values, sort_keys=True, ensure_ascii=False, default=str) if values else None


def _year(value: object) -> int | str | None:
    """The year as int, None when absent, or the reason it is not a year."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        year = int(str(value).strip())
    except ValueError:
        return f"unparseable year {value!r}"
    return year if 1800 <= year <= 2200 else f"implausible year {year}"


def _clean(row: dict[str, object], extra: list[str], source: str) -> dict[str, object] | str:
    """A normalised item row, or the reason the raw row is rejected."""
    item_id = row.get("item_id")
    if item_id is None or not str(item_id).strip():
        return "missing item_id"
    year = _year(row.get("year"))
    if isinstance(year, str):
        return year
    text = row.get("text")
    if text is not None and not isinstance(text, str):
        return f"plot text is {type(text).__name__}, not text"
    poster = row.get("poster_url") or row.get("poster_path")
    item: dict[str, object] = {
        "item_id": str(item_id).strip(),
        "source": source,
        "title": _str(row.get("title")),
        "year": year,
        "text": text or None,
        "attributes": _attributes(row, extra),
        "poster_url": _str(poster),
        "plot_url": _str(row.get("plot_url")),
    }
    return {**item, "content_hash": item_content_hash(item)}


def _str(value: object) -> str | None:
    return None if value is None or (isinstance(value, str) and not value.strip()) else str(value).strip()


def _dedupe(rows: list[tuple[int, dict[str, object]]]) -> tuple[list[dict[str, object]], list[tuple[int, str]]]:
    """Drop exact repeats; ids repeated with different content are rejected (every copy)."""
    by_id: dict[str, list[tuple[int, dict[str, object]]]] = {}
    for line, row in rows:
        by_id.setdefault(str(row["item_id"]), []).append((line, row))
    kept, rejected = [], []
    for item_id, copies in by_id.items():
        if len({str(r["content_hash"]) for _, r in copies}) == 1:
            kept.append(copies[0][1])
        else:
            rejected += [(line, f"duplicate item_id {item_id!r} with conflicting content") for line, _ in copies]
    return kept, rejected


def _validate(raw_rows: list[Row | str], extra: list[str], source: str) -> tuple[list[Row], list[tuple[int, str]]]:
    """(rows to land, (line, reason) of every rejected row): unusable rows and conflicting repeats rejected."""
    good: list[tuple[int, Row]] = []
    bad: list[tuple[int, str]] = []
    for line, row in enumerate(raw_rows, start=1):
        cleaned = _clean(row, extra, source) if isinstance(row, dict) else row
        if isinstance(cleaned, dict):
            good.append((line, cleaned))
        else:
            bad.append((line, cleaned))
    kept, conflicts = _dedupe(good)
    return kept, bad + conflicts


def _quarantine_records(
    bad: list[tuple[int, str]], raw_rows: list[Row | str], file: Path, source: str, summary: CatalogSummary
) -> list[QuarantineRecord]:
    """The quarantine records of the rejected rows (an excerpt of each raw row); counts them by reason."""
    for _, reason in bad:
        summary.count_rejected(reason.split(" ")[0] if not reason.startswith("duplicate") else "duplicate item_id")
    return [
        QuarantineRecord(
            f"catalog:{source}", f"{file.name}#row{line}", reason, json.dumps(raw_rows[line - 1], default=str)
        )
        for line, reason in bad
    ]


def ingest_catalog(
    path: str | Path,
    *,
    fmt: str | None = None,
    source: str = "catalog",
    columns: Mapping[str, str] | None = None,
    lake: Lake | str | None = None,
    run_id: str | None = None,
) -> CatalogSummary:
    """Upsert a catalog file into ``items``; bad rows go to ``quarantine``.

    Args:
        path: CSV, JSONL or Parquet file.
        fmt: format override (default: from the extension).
        source: label stored in ``items.source``.
        columns: the file's column names mapped onto ours, e.g. ``{"movie_title": "title"}``.
        lake: lake root.
        run_id: flow run id recorded in the commits.
    """
    file = Path(path)
    names, raw_rows = _read(file, fmt, columns or {})
    if "item_id" not in names:
        raise CatalogInputError(f"{file.name}: no item_id column (columns: {', '.join(names)})")
    extra = [c for c in names if c not in (*CORE, "attributes")]
    summary = CatalogSummary(source_file=str(file), read=len(raw_rows))
    now = datetime.now(UTC)
    config = {"source": source, "columns": dict(columns or {})}
    commit = CommitInfo(
        stage=STAGE, flow_run_id=run_id, config_hash=features.config_hash(config), extra={"source_file": file.name}
    )
    kept, bad = _validate(raw_rows, extra, source)
    records = _quarantine_records(bad, raw_rows, file, source, summary)
    summary.record(features.quarantine(records, commit=commit, lake=lake, at=now))
    if kept:
        items = pl.DataFrame([{**r, "ingested_at": now} for r in kept], infer_schema_length=None)
        result = features.upsert("items", items, commit=commit, lake=lake)
        summary.written, summary.updated, summary.unchanged = result.inserted, result.updated, result.unchanged
        summary.record(result)
    return summary
