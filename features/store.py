"""Low-level access to the Delta tables of a lake: open, version, schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound

from features.catalog import TableSpec, spec_for
from features.errors import CorruptTableError, LakeError, TableNotFoundError
from features.lake import Lake, resolve_lake


def open_table(table: str | TableSpec, lake: Lake | str | None = None) -> DeltaTable | None:
    """The Delta table of a catalog table, or None when it has not been written yet.

    Raises:
        CorruptTableError: the table's commit log cannot be read (e.g. a truncated ``_delta_log`` entry).
        LakeError: the lake cannot be reached (e.g. a folder this process may not read).
    """
    spec = table if isinstance(table, TableSpec) else spec_for(table)
    resolved = resolve_lake(lake)
    uri = resolved.table_uri(spec.name)
    try:
        return DeltaTable(uri, storage_options=resolved.options())
    except DeltaTableNotFound:
        return None
    except DeltaError as exc:
        raise CorruptTableError(spec.name, uri, str(exc)) from None
    except OSError as exc:
        raise LakeError(f"table {spec.name!r} at {uri} cannot be opened: {exc}") from None


@contextmanager
def unreadable_as_lake_error(table: str, lake: Lake | str | None = None) -> Iterator[None]:
    """Inside the block, a failure to read ``table``'s log or data files (a truncated commit, a data file
    deleted behind Delta's back) becomes a ``CorruptTableError`` naming the table.

    Example:
        >>> with unreadable_as_lake_error("items", lake):  # doctest: +SKIP
        ...     frame = features.read("items", lake=lake).collect()
    """
    try:
        yield
    except LakeError:
        raise
    except (DeltaError, OSError) as exc:
        uri = resolve_lake(lake).table_uri(table)
        raise CorruptTableError(table, uri, f"{type(exc).__name__}: {exc}") from None


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
