"""The table catalog: every lake table's name, Arrow schema, key columns and partitioning, in one place.

The tables are declared as data in ``tables.toml`` beside this module (one section per table, one
``name type [not null]`` line per column) and loaded into ``TableSpec``s at import.

Conventions:
- keys are non-null and unique within a table; writes merge on them;
- ``audit`` columns (e.g. ``ingested_at``) record when a row was written and never count as a change,
  so re-writing identical content commits nothing;
- embedding vectors are ``list<float32>`` plus a ``dim`` column (Delta has no fixed-size list).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from features.errors import UnknownTableError

TS = pa.timestamp("us", tz="UTC")
STR_LIST = pa.list_(pa.string())
VECTOR = pa.list_(pa.float32())
DECLARATIONS = Path(__file__).with_name("tables.toml")

# The column types ``tables.toml`` may name.
COLUMN_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "timestamp": TS,
    "list<string>": STR_LIST,
    "list<bool>": pa.list_(pa.bool_()),
    "list<float32>": VECTOR,
}


@dataclass(frozen=True)
class TableSpec:
    """One lake table.

    Attributes:
        name: table name (also its folder under the lake root).
        schema: the Arrow schema new tables are created with (more nullable columns may be added).
        keys: columns that identify a row; writes merge on them.
        partition_by: partition columns (empty for none).
        audit: columns that record write time and are ignored when deciding whether a row changed.
        description: one line for ``features.tables()``.
    """

    name: str
    schema: pa.Schema
    keys: tuple[str, ...]
    partition_by: tuple[str, ...] = ()
    audit: tuple[str, ...] = ()
    description: str = ""

    @property
    def content_columns(self) -> list[str]:
        """Non-key, non-audit columns: the ones whose change makes a row 'updated'."""
        skip = set(self.keys) | set(self.audit)
        return [f.name for f in self.schema if f.name not in skip]


def _column(declaration: str) -> pa.Field:
    """One ``name type [not null]`` column declaration as an Arrow field (nullable unless ``not null``)."""
    name, kind, *rest = declaration.split()
    if kind not in COLUMN_TYPES or rest not in ([], ["not", "null"]):
        raise ValueError(f"bad column declaration in {DECLARATIONS.name}: {declaration!r}")
    return pa.field(name, COLUMN_TYPES[kind], nullable=not rest)


def _load(path: Path) -> tuple[TableSpec, ...]:
    """Every table ``path`` declares, in file order."""
    declared = tomllib.loads(path.read_text(encoding="utf-8"))
    return tuple(
        TableSpec(
            name=name,
            schema=pa.schema([_column(c) for c in table["columns"]]),
            keys=tuple(table["keys"]),
            partition_by=tuple(table.get("partition_by", ())),
            audit=tuple(table.get("audit", ())),
            description=table["description"],
        )
        for name, table in declared.items()
    )


TABLES: dict[str, TableSpec] = {spec.name: spec for spec in _load(DECLARATIONS)}


def spec_for(table: str) -> TableSpec:
    """The spec of a catalog table; raises ``UnknownTableError`` naming the known tables."""
    try:
        return TABLES[table]
    except KeyError:
        raise UnknownTableError(table, sorted(TABLES)) from None
