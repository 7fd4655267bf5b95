"""Reading a catalog file record by record: CSV, JSONL or Parquet, one bad record never costing the others.

CSV is parsed row-wise (Python's ``csv`` in strict mode, one record at a time), so a ragged row, a bad
quote or an invalid UTF-8 row is one unreadable record and the rest of the file is read. A quoted field may
span lines; a quote still open after ``MAX_RECORD_LINES`` lines, or one whose joined lines do not make a row
of the header's width, rejects its first line only and reading resumes on the next. A file that is unusable
as a whole (a corrupt Parquet file, a header that cannot be read, a duplicate column) raises
``CatalogInputError``.

``iter_catalog_file`` streams: Parquet is read ``batch_rows`` rows at a time and CSV records are parsed
batch by batch (the file's lines are read once), so a caller holds one batch of records, not the file's.
JSONL (whose columns are the union over all its lines) and the ReDial movie list come as one batch.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from tasks.ingest.records import excerpt, file_key
from tasks.ingest.redial_movies import FORMAT as REDIAL_MOVIES
from tasks.ingest.redial_movies import missing_columns, redial_movie_row

MAX_RECORD_LINES = 64
BATCH_ROWS = 20_000  # records per streamed batch
FORMATS = ("csv", "jsonl", "parquet", REDIAL_MOVIES)
_UNTERMINATED = "unterminated quoted field"

Row = dict[str, object]


class CatalogInputError(ValueError):
    """The catalog as a whole cannot be ingested (missing file, unknown format, no item_id column, corrupt)."""


@dataclass(frozen=True)
class RawRecord:
    """One record of a catalog file: its row (column names mapped), or the reason it cannot be read.

    Attributes:
        key: the quarantine key, ``<file>@<sha256 prefix>#L<line>`` (``#row<n>`` for Parquet).
        row: the parsed row, None when the record is unreadable.
        reason: why the record cannot be read (None when ``row`` is set).
        text: the raw record, for the quarantine excerpt.
    """

    key: str
    row: Row | None
    reason: str | None
    text: str


@dataclass(frozen=True)
class CatalogFile:
    """A catalog file read: its column names (after the mapping) and its records in file order."""

    columns: list[str]
    records: list[RawRecord]


def _parse_csv(text: str) -> list[str] | None:
    """The fields of one CSV record; None while a quoted field is still open. Raises ``csv.Error``."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            return None
        raise
    return rows[0] if rows else []


def _csv_record(lines: list[bytes], start: int, width: int | None) -> tuple[int, list[str] | str]:
    """(index of the line after the record, its fields or the reason it is unreadable) for the record that
    begins at line ``start``; an unreadable multi-line record consumes its first line only."""
    text = ""
    for end in range(start, min(len(lines), start + MAX_RECORD_LINES)):
        try:
            text += lines[end].decode("utf-8")
        except UnicodeDecodeError as exc:
            return start + 1, f"invalid UTF-8: at byte {exc.start}" if end == start else _UNTERMINATED
        try:
            fields = _parse_csv(text)
        except csv.Error as exc:
            return start + 1, f"bad CSV quoting: {exc}" if end == start else _UNTERMINATED
        if fields is None:
            continue
        if end > start and width is not None and len(fields) != width:
            return start + 1, _UNTERMINATED
        return end + 1, fields
    return start + 1, _UNTERMINATED


def _csv_header(path: Path, lines: list[bytes]) -> tuple[list[str], int]:
    """The header's column names and the index of the first data line (no lines: no columns)."""
    if not lines:
        return [], 0
    end, header = _csv_record(lines, 0, None)
    if isinstance(header, str):
        raise CatalogInputError(f"{path.name}: the header cannot be read ({header})")
    names = [name.strip() for name in header]
    if names:
        names[0] = names[0].removeprefix("\ufeff")
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise CatalogInputError(f"{path.name}: duplicate column {repeated[0]!r} in the header")
    return names, end


def _csv_records(path: Path, prefix: str) -> tuple[list[str], Iterator[RawRecord]]:
    """The header's names and the file's records, parsed one at a time as they are consumed."""
    with path.open("rb") as fh:
        lines = fh.readlines()
    names, first = _csv_header(path, lines)

    def records() -> Iterator[RawRecord]:
        line = first
        while line < len(lines):
            end, fields = _csv_record(lines, line, len(names))
            key, text = f"{prefix}#L{line + 1}", b"".join(lines[line:end]).decode("utf-8", "replace").rstrip("\r\n")
            if isinstance(fields, str):
                yield RawRecord(key, None, fields, text)
            elif len(fields) != len(names) and any(f.strip() for f in fields):
                reason = f"ragged row: {len(fields)} fields, header has {len(names)}"
                yield RawRecord(key, None, reason, text)
            elif any(f.strip() for f in fields):
                row: Row = {n: (v if v.strip() else None) for n, v in zip(names, fields, strict=True)}
                yield RawRecord(key, row, None, text)
            line = end

    return names, records()


def _read_csv(path: Path, prefix: str) -> CatalogFile:
    names, records = _csv_records(path, prefix)
    return CatalogFile(names, list(records))


def _json_record(raw: bytes) -> Row | str:
    try:
        record = json.loads(raw)
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8: at byte {exc.start}"
    except RecursionError:
        return "invalid JSON: nested too deeply"
    except ValueError as exc:  # JSONDecodeError, or an integer of thousands of digits
        return f"invalid JSON: {exc}"
    return record if isinstance(record, dict) else f"not a JSON object: {type(record).__name__}"


def _read_jsonl(path: Path, prefix: str) -> CatalogFile:
    """Rows as parsed (a nested plot stays a dict, so it can be refused); a bad line becomes its reason."""
    records: list[RawRecord] = []
    columns: dict[str, None] = {}
    with path.open("rb") as fh:
        for line, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            record, text = _json_record(raw), raw.decode("utf-8", "replace").strip()
            if isinstance(record, str):
                records.append(RawRecord(f"{prefix}#L{line}", None, record, text))
                continue
            columns.update(dict.fromkeys(record))
            records.append(RawRecord(f"{prefix}#L{line}", record, None, text))
    return CatalogFile(list(columns), records)


def _parquet_records(path: Path, prefix: str, batch_rows: int) -> tuple[list[str], Iterator[RawRecord]]:
    """The file's column names and its rows, read ``batch_rows`` at a time as they are consumed."""
    try:
        file = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise CatalogInputError(f"{path.name}: not a readable Parquet file ({type(exc).__name__})") from exc

    def records() -> Iterator[RawRecord]:
        n = 0
        try:
            for batch in file.iter_batches(batch_size=batch_rows):
                frame = pl.from_arrow(batch)
                assert isinstance(frame, pl.DataFrame)
                for row in frame.iter_rows(named=True):
                    n += 1
                    yield RawRecord(f"{prefix}#row{n}", row, None, excerpt(row))
        except (OSError, ValueError) as exc:  # a file damaged past its footer
            raise CatalogInputError(f"{path.name}: not a readable Parquet file ({type(exc).__name__})") from exc

    return file.schema_arrow.names, records()


def _read_redial_movies(path: Path, prefix: str) -> CatalogFile:
    """The ReDial movie list as catalog records (``tasks.ingest.redial_movies``); a row that cannot be used
    becomes an unreadable record with its reason."""
    raw = _read_csv(path, prefix)
    missing = missing_columns(raw.columns)
    if missing:
        raise CatalogInputError(f"{path.name}: not a ReDial movie list, no {', '.join(missing)} column")
    records: list[RawRecord] = []
    for record in raw.records:
        if record.row is None:
            records.append(record)
            continue
        try:
            records.append(RawRecord(record.key, redial_movie_row(record.row), None, record.text))
        except ValueError as exc:
            records.append(RawRecord(record.key, None, str(exc), record.text))
    return CatalogFile(["item_id", "title", "year", "text"], records)


def _mapped_names(path: Path, names: list[str], columns: Mapping[str, str]) -> list[str]:
    """The column names with ``columns`` (theirs -> ours) applied; refuses a mapping that names a missing
    column or puts two columns onto one name."""
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise CatalogInputError(f"{path.name}: column mapping names missing column(s) {', '.join(unknown)}")
    mapped = [columns.get(c, c) for c in names]
    clashes = [name for name, count in Counter(mapped).items() if count > 1]
    if clashes:
        sources = [c for c in names if columns.get(c, c) == clashes[0]]
        raise CatalogInputError(f"{path.name}: columns {', '.join(sources)} would all become {clashes[0]!r}")
    return mapped


def _mapped(records: Iterator[RawRecord], columns: Mapping[str, str]) -> Iterator[RawRecord]:
    for r in records:
        yield (
            r
            if r.row is None or not columns
            else RawRecord(r.key, {columns.get(k, k): v for k, v in r.row.items()}, None, r.text)
        )


def _batches(records: Iterator[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    while batch := list(itertools.islice(records, size)):
        yield batch


def _kind(path: Path, fmt: str | None) -> str:
    kind = fmt or {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}.get(path.suffix.lower())
    if not path.is_file():
        raise CatalogInputError(f"catalog file not found: {path}")
    if kind not in FORMATS:
        raise CatalogInputError(f"cannot tell the format of {path.name}; pass --format {'|'.join(FORMATS)}")
    return kind


def iter_catalog_file(
    path: Path, fmt: str | None, columns: Mapping[str, str], *, batch_rows: int = BATCH_ROWS
) -> tuple[list[str], Iterator[list[RawRecord]]]:
    """The catalog's column names (``columns``, theirs -> ours, applied) and its records in batches of
    ``batch_rows`` (Parquet and CSV are streamed; JSONL and the ReDial movie list come whole, one batch).

    Raises:
        CatalogInputError: the file is missing, of unknown format, or unusable as a whole (before any batch).
    """
    kind = _kind(path, fmt)
    prefix = file_key(path)
    if kind == "parquet":
        names, records = _parquet_records(path, prefix, batch_rows)
    elif kind == "csv":
        names, records = _csv_records(path, prefix)
    else:
        whole = _read_jsonl(path, prefix) if kind == "jsonl" else _read_redial_movies(path, prefix)
        names, records = whole.columns, iter(whole.records)
    return _mapped_names(path, names, columns), _batches(_mapped(records, columns), batch_rows)


def read_catalog_file(path: Path, fmt: str | None, columns: Mapping[str, str]) -> CatalogFile:
    """Read a catalog file record by record, with ``columns`` (theirs -> ours) applied (the whole file in
    memory; ``iter_catalog_file`` streams it).

    Raises:
        CatalogInputError: the file is missing, of unknown format, or unusable as a whole.
    """
    names, batches = iter_catalog_file(path, fmt, columns)
    return CatalogFile(names, [record for batch in batches for record in batch])
