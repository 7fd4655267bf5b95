"""The researchers' read API: versioned, lazy reads of lake tables, their history and the catalog.

Example:
    >>> import features
    >>> features.read("turns", version=3).filter(pl.col("role") == "seeker").collect()  # doctest: +SKIP
    >>> features.history("turns").select("version", "timestamp", "stage")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from features.catalog import TABLES, spec_for
from features.commits import PREFIX
from features.errors import LakeError
from features.lake import Lake, resolve_lake
from features.store import open_table, require_table, unreadable_as_lake_error

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Missing = Literal["raise", "empty"]


def _as_utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _version_at(table: str, dt: DeltaTable, when: datetime) -> int:
    """The newest version committed at or before ``when``, by the commit timestamps ``history()`` shows.

    Delta's own timestamp travel goes by the log files' modification times, which a copy of the lake
    (``cp -r``, ``aws s3 sync``, a backup restore) resets; the commit timestamps travel with the log.
    """
    cutoff_ms = (when - _EPOCH) // timedelta(milliseconds=1)  # integer ms, as in the log (no float rounding)
    versions = [int(e["version"]) for e in dt.history() if int(e["timestamp"]) <= cutoff_ms]
    if not versions:
        raise LakeError(f"table {table!r} did not exist yet at {when.isoformat()}")
    return max(versions)


def _pin(table: str, dt: DeltaTable, version: int | None, as_of: datetime | None) -> None:
    latest = dt.version()
    if version is not None:
        if not 0 <= version <= latest:
            raise LakeError(f"table {table!r} has versions 0..{latest}; version {version} does not exist")
        dt.load_as_version(version)
    elif as_of is not None:
        dt.load_as_version(_version_at(table, dt, _as_utc(as_of)))


def _empty_frame(table: str, *, columns: Sequence[str] | None = None) -> pl.LazyFrame:
    """A lazy frame with no rows and the catalog schema of ``table`` (only ``columns`` when given).

    Raises:
        UnknownTableError: ``table`` is not in the catalog.
        LakeError: a requested column is not in the table's declared schema.
    """
    schema = spec_for(table).schema
    unknown = [c for c in columns or () if c not in schema.names]
    if unknown:
        raise LakeError(f"table {table!r} declares no column(s) {', '.join(unknown)}")
    frame = pl.DataFrame(schema.empty_table()).lazy()
    return frame.select(list(columns)) if columns else frame


def read(
    table: str,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
    columns: Sequence[str] | None = None,
    missing: Missing = "raise",
    lake: Lake | str | None = None,
) -> pl.LazyFrame:
    """A lazy frame over one table, at its latest version or pinned in time.

    Args:
        table: catalog table name (see ``tables()``).
        version: a Delta version number to read.
        as_of: read the version that was current at this time (naive datetimes are UTC).
        columns: columns to select (default: all).
        missing: what a table not written to this lake yet reads as: ``"raise"`` (``TableNotFoundError``) or
            ``"empty"`` (no rows, the catalog schema, only ``columns`` when given).
        lake: lake root (see ``features.lake.resolve_lake``).

    Returns:
        A ``polars.LazyFrame``; vectors are ``list<f32>`` (cast to ``pl.Array`` for fixed width).

    Raises:
        UnknownTableError: ``table`` is not in the catalog.
        TableNotFoundError: the table has not been written to this lake (and ``missing="raise"``).
        LakeError: both ``version`` and ``as_of`` given, or they point outside the table's history.

    Example:
        >>> features.read("turns", columns=["dialogue_id"], missing="empty").collect().shape  # doctest: +SKIP
        (0, 1)
    """
    if version is not None and as_of is not None:
        raise LakeError("pass either version= or as_of=, not both")
    if missing not in ("raise", "empty"):
        raise ValueError(f"missing must be 'raise' or 'empty', not {missing!r}")
    dt = open_table(table, lake) if missing == "empty" else require_table(table, lake)
    if dt is None:
        return _empty_frame(table, columns=columns)
    with unreadable_as_lake_error(table, lake):
        _pin(table, dt, version, as_of)
        frame = pl.scan_delta(dt)
    return frame.select(list(columns)) if columns else frame


def resolve_version(
    table: str, *, version: int | None = None, as_of: datetime | None = None, lake: Lake | str | None = None
) -> int:
    """The Delta version ``read`` with the same arguments reads (the latest when neither is given)."""
    if version is not None and as_of is not None:
        raise LakeError("pass either version= or as_of=, not both")
    dt = require_table(table, lake)
    with unreadable_as_lake_error(table, lake):
        _pin(table, dt, version, as_of)
    return int(dt.version())


def _metrics(entry: dict[str, object]) -> str:
    return json.dumps(entry.get("operationMetrics", {}), sort_keys=True, default=str)


def history(table: str, *, lake: Lake | str | None = None) -> pl.DataFrame:
    """One row per table version, newest first: version, timestamp, operation, our commit metadata.

    Columns: ``version, timestamp, operation, stage, flow_run_id, config_hash, code_version,
    input_versions`` (JSON), ``metadata`` (JSON of all ``mmcrs.*`` keys), ``metrics`` (JSON).
    """
    dt = require_table(table, lake)
    rows = []
    for entry in dt.history():
        ours = {k.removeprefix(PREFIX): str(v) for k, v in entry.items() if k.startswith(PREFIX)}
        rows.append(
            {
                "version": int(entry["version"]),
                "timestamp": datetime.fromtimestamp(int(entry["timestamp"]) / 1000, tz=UTC),
                "operation": str(entry.get("operation", "")),
                "stage": ours.get("stage"),
                "flow_run_id": ours.get("flow_run_id") or None,
                "config_hash": ours.get("config_hash") or None,
                "code_version": ours.get("code_version"),
                "input_versions": ours.get("input_versions"),
                "metadata": json.dumps(ours, sort_keys=True),
                "metrics": _metrics(entry),
            }
        )
    return pl.DataFrame(rows, schema_overrides={"timestamp": pl.Datetime("ms", "UTC")})


def _row_count(dt: DeltaTable) -> int | None:
    actions = pa.table(dt.get_add_actions(flatten=True))
    if "num_records" not in actions.column_names:
        return None
    return int(pc.sum(actions.column("num_records")).as_py() or 0)


def row_count(table: str, *, version: int | None = None, lake: Lake | str | None = None) -> int:
    """Rows of a table at a version (default latest), from the commit log's file statistics (no data read)."""
    dt = require_table(table, lake)
    _pin(table, dt, version, None)
    counted = _row_count(dt)
    if counted is None:  # files written without statistics: count the data
        return int(pl.scan_delta(dt).select(pl.len()).collect().item())
    return counted


def tables(*, lake: Lake | str | None = None) -> pl.DataFrame:
    """The catalog with each table's state in this lake: exists, version, rows, keys, description."""
    resolved = resolve_lake(lake)
    rows = []
    for name, spec in TABLES.items():
        dt = open_table(spec, resolved)
        rows.append(
            {
                "table": name,
                "exists": dt is not None,
                "version": None if dt is None else dt.version(),
                "rows": None if dt is None else _row_count(dt),
                "keys": ", ".join(spec.keys),
                "partition_by": ", ".join(spec.partition_by),
                "description": spec.description,
                "uri": resolved.table_uri(name),
            }
        )
    return pl.DataFrame(rows)
