"""Idempotent writes: ``upsert`` (merge on the key columns) and ``append`` (Delta app transactions).

Both commit only when something changes, so a re-run of a stage on unchanged input writes no new table
version, and a retried append of the same stage run commits nothing new. Every commit carries the
``CommitInfo`` metadata.

Example:
    >>> info = CommitInfo(stage="demo", flow_run_id="run-1")
    >>> upsert("items", rows, commit=info, lake="/tmp/lake")  # doctest: +SKIP
    WriteResult(table='items', version=0, committed=True, inserted=3, updated=0, unchanged=0, deleted=0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from features.catalog import TableSpec, spec_for
from features.commits import CommitInfo
from features.errors import DuplicateKeyError, SchemaMismatchError
from features.lake import Lake, resolve_lake
from features.schema import SchemaMode, conform
from features.store import disk_schema, open_table, require_table

Data: TypeAlias = pa.Table | pl.DataFrame


@dataclass(frozen=True)
class WriteResult:
    """What a write did. ``version`` is the table version after the write (None if no table exists)."""

    table: str
    version: int | None
    committed: bool
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    missing: int = 0  # update_columns only: rows whose key is not in the table (nothing written for them)


def _to_arrow(data: Data) -> pa.Table:
    return data.to_arrow() if isinstance(data, pl.DataFrame) else data


def _properties(commit: CommitInfo, txn: Transaction | None = None) -> CommitProperties:
    return CommitProperties(custom_metadata=commit.to_metadata(), app_transactions=[txn] if txn else None)


def _check_unique_keys(spec: TableSpec, data: pa.Table) -> None:
    keys = pl.from_arrow(data.select(list(spec.keys)))
    assert isinstance(keys, pl.DataFrame)
    dupes = keys.filter(keys.is_duplicated())
    if dupes.height:
        raise DuplicateKeyError(spec.name, spec.keys, dupes.row(0, named=True))


def _sql_literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _partition_filter(spec: TableSpec, data: pa.Table) -> dict[str, list[object]]:
    return {p: sorted(set(data.column(p).to_pylist()), key=str) for p in spec.partition_by}


def _changed_rows(
    spec: TableSpec, data: pa.Table, dt: DeltaTable, *, columns: set[str], include_new: bool = True
) -> tuple[pa.Table, int, int]:
    """Rows of ``data`` new to the table (unless ``include_new`` is False) or differing from it in one of
    ``columns`` (audit columns ignored), with the counts of new and of changed rows."""
    keys = list(spec.keys)
    on_disk = set(disk_schema(dt).names)
    compare = [c for c in data.column_names if c in columns and c not in keys and c not in spec.audit]
    existing = pl.scan_delta(dt)
    for column, values in _partition_filter(spec, data).items():
        existing = existing.filter(pl.col(column).is_in(values))
    incoming = pl.from_arrow(data)
    assert isinstance(incoming, pl.DataFrame)
    old = (
        existing.select(keys + [c for c in compare if c in on_disk])
        .join(incoming.lazy().select(keys), on=keys, how="semi")
        .rename({c: f"{c}__old" for c in compare if c in on_disk})
        .with_columns(pl.lit(True).alias("__exists"))
    )
    diffs = [~pl.col(c).eq_missing(pl.col(f"{c}__old")) if c in on_disk else pl.col(c).is_not_null() for c in compare]
    # the flags become a row mask over ``data``: the join must keep the incoming row order
    joined = (
        incoming.lazy()
        .join(old, on=keys, how="left", maintain_order="left")
        .with_columns(
            pl.col("__exists").is_null().alias("__new"),
            (pl.col("__exists").is_not_null() & pl.any_horizontal(diffs or [pl.lit(False)])).alias("__changed"),
        )
    )
    flags = joined.select("__new", "__changed").collect()
    mask = (flags["__new"] | flags["__changed"] if include_new else flags["__changed"]).to_arrow()
    return data.filter(mask), int(flags["__new"].sum()), int(flags["__changed"].sum())


def _merge(
    spec: TableSpec,
    dt: DeltaTable,
    rows: pa.Table,
    props: CommitProperties,
    *,
    columns: set[str],
    add: bool,
    insert: bool = True,
) -> None:
    """Merge ``rows`` on the keys: matched rows get the given ``columns`` set, others are inserted whole."""
    predicate = " AND ".join(f"t.{k} = s.{k}" for k in spec.keys)
    for column, values in _partition_filter(spec, rows).items():
        predicate += f" AND t.{column} IN ({', '.join(_sql_literal(v) for v in values)})"
    updates = {c: f"s.{c}" for c in rows.column_names if c in columns and c not in spec.keys}
    merger = dt.merge(
        rows, predicate=predicate, source_alias="s", target_alias="t", merge_schema=add, commit_properties=props
    )
    if updates:
        merger = merger.when_matched_update(updates=updates)
    if insert:
        merger = merger.when_not_matched_insert_all()
    merger.execute()


def _create(spec: TableSpec, lake: Lake, rows: pa.Table, props: CommitProperties, add: bool) -> None:
    write_deltalake(
        lake.table_uri(spec.name),
        rows,
        mode="append",
        partition_by=list(spec.partition_by) or None,
        schema_mode="merge" if add else None,
        storage_options=lake.options(),
        commit_properties=props,
    )


def upsert(
    table: str,
    data: Data,
    *,
    commit: CommitInfo,
    lake: Lake | str | None = None,
    schema_mode: SchemaMode = "strict",
) -> WriteResult:
    """Merge ``data`` into ``table`` on its key columns; commit only new or changed rows.

    New rows are inserted whole (columns ``data`` lacks are null); existing rows get the columns ``data``
    has and keep the others (so a catalog re-ingest does not erase what the crawl stage set).

    Args:
        table: catalog table name.
        data: rows (Arrow table or polars DataFrame); keys must be unique within it.
        commit: metadata for the commit.
        lake: lake root (see ``resolve_lake``).
        schema_mode: ``"add_columns"`` to add unknown columns as new nullable columns.

    Returns:
        A ``WriteResult``; ``committed`` is False (and no version is written) when nothing changed.

    Raises:
        SchemaMismatchError: incompatible or unknown columns.
        DuplicateKeyError: ``data`` repeats a key.
    """
    spec, resolved = spec_for(table), resolve_lake(lake)
    dt = open_table(spec, resolved)
    target = spec.schema if dt is None else disk_schema(dt)
    arrow = _to_arrow(data)
    given = set(arrow.column_names)
    rows, schema = conform(arrow, target, table=spec.name, schema_mode=schema_mode)
    _check_unique_keys(spec, rows)
    add = len(schema) > len(target)
    props = _properties(commit)
    if dt is None:
        if rows.num_rows == 0:
            return WriteResult(spec.name, None, committed=False)
        _create(spec, resolved, rows, props, add)
        return WriteResult(spec.name, require_table(spec, resolved).version(), True, inserted=rows.num_rows)
    changes, new, changed = _changed_rows(spec, rows, dt, columns=given)
    if changes.num_rows == 0 and not add:
        return WriteResult(spec.name, dt.version(), committed=False, unchanged=rows.num_rows)
    _merge(spec, dt, changes, props, columns=given, add=add)
    dt.update_incremental()
    return WriteResult(spec.name, dt.version(), True, new, changed, rows.num_rows - new - changed)


def _column_subset(spec: TableSpec, data: pa.Table, disk: pa.Schema) -> pa.Schema:
    missing = [k for k in spec.keys if k not in data.column_names]
    if missing:
        raise SchemaMismatchError(spec.name, missing[0], "is a key column and must be given")
    unknown = [c for c in data.column_names if c not in disk.names]
    if unknown:
        raise SchemaMismatchError(spec.name, unknown[0], "is not in the table's schema")
    return pa.schema([disk.field(c) for c in data.column_names])


def update_columns(table: str, data: Data, *, commit: CommitInfo, lake: Lake | str | None = None) -> WriteResult:
    """Set some columns of existing rows, matched on the key columns; other columns stay as they are.

    ``data`` holds the key columns plus the columns to set. Rows whose key is not in the table are not
    inserted (counted in ``missing``); rows whose values are already equal are not rewritten; nothing is
    committed when no row changes.

    Raises:
        TableNotFoundError: the table does not exist yet.
        SchemaMismatchError: a key column is missing, or a column is unknown or of an incompatible type.
    """
    spec, resolved = spec_for(table), resolve_lake(lake)
    dt = require_table(spec, resolved)
    arrow = _to_arrow(data)
    rows, _ = conform(arrow, _column_subset(spec, arrow, disk_schema(dt)), table=spec.name)
    _check_unique_keys(spec, rows)
    given = set(rows.column_names)
    changes, absent, changed = _changed_rows(spec, rows, dt, columns=given, include_new=False)
    unchanged = rows.num_rows - absent - changed
    if changes.num_rows == 0:
        return WriteResult(spec.name, dt.version(), committed=False, unchanged=unchanged, missing=absent)
    _merge(spec, dt, changes, _properties(commit), columns=given, add=False, insert=False)
    dt.update_incremental()
    return WriteResult(spec.name, dt.version(), True, updated=changed, unchanged=unchanged, missing=absent)


def append(
    table: str,
    data: Data,
    *,
    commit: CommitInfo,
    app_id: str,
    app_version: int = 1,
    lake: Lake | str | None = None,
    schema_mode: SchemaMode = "strict",
) -> WriteResult:
    """Append ``data`` exactly once per ``(app_id, app_version)``, using Delta app transactions.

    A retry of the same write (same ``app_id`` and a version not above the one recorded in the table)
    commits nothing. Use one ``app_id`` per logical writer (e.g. ``"embed/<flow-run-id>/shard-3"``).

    Returns:
        A ``WriteResult``; ``committed`` is False when the transaction was already recorded.
    """
    spec, resolved = spec_for(table), resolve_lake(lake)
    dt = open_table(spec, resolved)
    recorded = None if dt is None else dt.transaction_version(app_id)
    if dt is not None and recorded is not None and recorded >= app_version:
        return WriteResult(spec.name, dt.version(), committed=False, unchanged=len(data))
    target = spec.schema if dt is None else disk_schema(dt)
    rows, schema = conform(_to_arrow(data), target, table=spec.name, schema_mode=schema_mode)
    props = _properties(commit, Transaction(app_id=app_id, version=app_version))
    _create(spec, resolved, rows, props, add=len(schema) > len(target))
    return WriteResult(spec.name, require_table(spec, resolved).version(), True, inserted=rows.num_rows)


def delete(table: str, predicate: str, *, commit: CommitInfo, lake: Lake | str | None = None) -> WriteResult:
    """Delete the rows matching a SQL ``predicate``; commits only when some row matches."""
    spec = spec_for(table)
    dt = open_table(spec, lake)
    if dt is None:
        return WriteResult(spec.name, None, committed=False)
    before = dt.version()
    metrics = dt.delete(predicate, commit_properties=_properties(commit))
    deleted = int(metrics.get("num_deleted_rows", 0) or 0)
    dt.update_incremental()
    return WriteResult(spec.name, dt.version(), dt.version() != before, deleted=deleted)


def delete_keys(table: str, keys: Data, *, commit: CommitInfo, lake: Lake | str | None = None) -> WriteResult:
    """Delete the rows whose key columns match a row of ``keys``: one keyed merge, however many rows.

    A join on the key columns, not a predicate string, so its cost grows with the data, not its SQL text.
    Commits only when some row matches.

    Args:
        table: catalog table name.
        keys: the key columns of the rows to delete (other columns are ignored).
        commit: metadata for the commit.
        lake: lake root (see ``resolve_lake``).

    Returns:
        A ``WriteResult`` with ``deleted`` rows.
    """
    spec = spec_for(table)
    dt = open_table(spec, lake)
    arrow = _to_arrow(keys)
    if dt is None or arrow.num_rows == 0:
        return WriteResult(spec.name, None if dt is None else dt.version(), committed=False)
    disk = disk_schema(dt)
    wanted = pa.schema([disk.field(k) for k in spec.keys])
    rows = arrow.select(list(spec.keys)).cast(wanted)
    existing = (
        pl.scan_delta(dt).select(list(spec.keys)).join(pl.from_arrow(rows).lazy(), on=list(spec.keys), how="semi")
    )  # type: ignore[union-attr]
    if existing.select(pl.len()).collect().item() == 0:
        return WriteResult(spec.name, dt.version(), committed=False)
    predicate = " AND ".join(f"t.{k} = s.{k}" for k in spec.keys)
    merger = dt.merge(
        rows, predicate=predicate, source_alias="s", target_alias="t", commit_properties=_properties(commit)
    )
    metrics = merger.when_matched_delete().execute()
    dt.update_incremental()
    return WriteResult(spec.name, dt.version(), True, deleted=int(metrics.get("num_target_rows_deleted", 0) or 0))


def replace_partition(
    table: str,
    data: Data,
    *,
    partition: dict[str, str],
    commit: CommitInfo,
    lake: Lake | str | None = None,
) -> WriteResult:
    """Replace every row of one partition with ``data`` in a single commit (readers see old or new, never both).

    For derived tables rebuilt whole, e.g. one graph of ``item_graph_edges``. Every row of ``data`` must
    belong to the partition.

    Args:
        table: catalog table name.
        data: the partition's new rows (may be empty: the partition is then emptied).
        partition: the partition's column values, e.g. ``{"graph": "co_mention"}``.
        commit: metadata for the commit.
        lake: lake root.

    Returns:
        A ``WriteResult`` with the new version; ``inserted`` is the number of rows written.
    """
    spec, resolved = spec_for(table), resolve_lake(lake)
    if sorted(partition) != sorted(spec.partition_by):
        raise ValueError(f"{table} is partitioned by {list(spec.partition_by)}, not {sorted(partition)}")
    dt = open_table(spec, resolved)
    target = spec.schema if dt is None else disk_schema(dt)
    rows, _ = conform(_to_arrow(data), target, table=spec.name, schema_mode="strict")
    _check_unique_keys(spec, rows)
    for column, value in partition.items():
        if rows.num_rows and set(rows.column(column).to_pylist()) != {value}:
            raise ValueError(f"rows outside the partition {column}={value!r}")
    predicate = " AND ".join(f"{column} = {_sql_literal(value)}" for column, value in partition.items())
    if rows.num_rows == 0 and dt is None:
        return WriteResult(spec.name, None, committed=False)
    if dt is None:
        _create(spec, resolved, rows, _properties(commit), add=False)
    else:
        write_deltalake(
            resolved.table_uri(spec.name),
            rows,
            mode="overwrite",
            predicate=predicate,
            partition_by=list(spec.partition_by) or None,
            storage_options=resolved.options(),
            commit_properties=_properties(commit),
        )
    return WriteResult(spec.name, require_table(spec, resolved).version(), True, inserted=rows.num_rows)


def merge_changes(
    table: str, upserts: Data, deletes: Data, *, commit: CommitInfo, lake: Lake | str | None = None
) -> WriteResult:
    """Upsert ``upserts`` and delete the rows keyed by ``deletes`` in one merge commit (readers see before or
    after, never half): for derived tables updated where their inputs changed, e.g. some sources' kNN lists.

    Args:
        table: catalog table name (must exist).
        upserts: whole rows to insert or update, keyed by the table's keys.
        deletes: key columns of rows to delete (a key also in ``upserts`` is upserted, not deleted).
        commit: metadata for the commit.
        lake: lake root.

    Returns:
        A ``WriteResult`` with ``inserted``, ``updated`` and ``deleted`` rows.
    """
    spec = spec_for(table)
    dt = require_table(spec, lake)
    disk, keys = disk_schema(dt), list(spec.keys)
    rows, _ = conform(_to_arrow(upserts), disk, table=spec.name, schema_mode="strict")
    _check_unique_keys(spec, rows)
    gone = pl.from_arrow(_to_arrow(deletes).select(keys).cast(pa.schema([disk.field(k) for k in keys])))
    kept = pl.from_arrow(rows)
    assert isinstance(gone, pl.DataFrame) and isinstance(kept, pl.DataFrame)
    gone = gone.join(kept.select(keys), on=keys, how="anti").unique()
    source = pl.concat(
        [kept.with_columns(__delete=pl.lit(False)), gone.with_columns(__delete=pl.lit(True))], how="diagonal"
    )
    if source.height == 0:
        return WriteResult(spec.name, dt.version(), committed=False)
    predicate = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    for column, values in _partition_filter(spec, source.to_arrow()).items():
        predicate += f" AND t.{column} IN ({', '.join(_sql_literal(v) for v in values)})"
    merger = dt.merge(
        source.to_arrow(),
        predicate=predicate,
        source_alias="s",
        target_alias="t",
        commit_properties=_properties(commit),
    )
    updates = {c: f"s.{c}" for c in rows.column_names}
    merger = merger.when_matched_delete(predicate="s.__delete").when_matched_update(
        updates={c: v for c, v in updates.items() if c not in keys}, predicate="NOT s.__delete"
    )
    metrics = merger.when_not_matched_insert(updates=updates, predicate="NOT s.__delete").execute()
    dt.update_incremental()
    counts = {name: int(metrics.get(f"num_target_rows_{name}", 0) or 0) for name in ("inserted", "updated", "deleted")}
    return WriteResult(spec.name, dt.version(), True, **counts)
