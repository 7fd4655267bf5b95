"""Low-level access to the Delta tables of a lake: open, version, schema."""

from __future__ import annotations

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound

from features.catalog import TableSpec, spec_for
from features.errors import TableNotFoundError
from features.lake import Lake, resolve_lake


def open_table(table: str | TableSpec, lake: Lake | str | None = None) -> DeltaTable | None:
    """The Delta table of a catalog table, or None when it has not been written yet."""
    spec = table if isinstance(table, TableSpec) else spec_for(table)
    resolved = resolve_lake(lake)
    try:
        return DeltaTable(resolved.table_uri(spec.name), storage_options=resolved.options())
    except DeltaTableNotFound:
        return None


def require_table(table: str | TableSpec, lake: Lake | str | None = None) -> DeltaTable:
    """Like ``open_table`` but raises ``TableNotFoundError`` for a table not written yet."""
    spec = table if isinstance(table, TableSpec) else spec_for(table)
    dt = open_table(spec, lake)
    if dt is None:
        raise TableNotFoundError(spec.name, resolve_lake(lake).table_uri(spec.name))
    return dt


def table_version(table: str, *, lake: Lake | str | None = None) -> int | None:
    """The latest version of a table, or None when it does not exist yet."""
    dt = open_table(table, lake)
    return None if dt is None else dt.version()


def table_versions(tables: list[str], *, lake: Lake | str | None = None) -> dict[str, int]:
    """Latest versions of several tables (absent tables left out): what a stage records as its inputs."""
    found = {name: table_version(name, lake=lake) for name in tables}
    return {name: v for name, v in found.items() if v is not None}


def disk_schema(dt: DeltaTable) -> pa.Schema:
    """The Arrow schema of a Delta table as stored."""
    return pa.schema(dt.schema().to_arrow())
