"""Conform incoming data to a table's schema, or say exactly which column cannot be written.

Allowed without asking: the same type, wider/narrower numbers of one kind (checked casts), int -> float,
string/list flavours (``large_string`` -> ``string``, fixed-size -> variable lists such as ``pl.Array``
vectors), all-null columns, and missing nullable columns (filled with nulls). Allowed only with
``schema_mode="add_columns"``: new nullable columns. Everything else raises ``SchemaMismatchError``
naming the table and the column.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from features.errors import SchemaMismatchError

SchemaMode = Literal["strict", "add_columns"]


def _kind(dtype: pa.DataType) -> str:
    checks = (
        (pa.types.is_null, "null"),
        (pa.types.is_boolean, "bool"),
        (pa.types.is_integer, "int"),
        (pa.types.is_floating, "float"),
        (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t), "str"),
        (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t), "bin"),
        (pa.types.is_timestamp, "ts"),
        (pa.types.is_date, "date"),
        (lambda t: pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t), "list"),
        (pa.types.is_fixed_size_list, "list"),  # e.g. pl.Array vectors; stored as list<float32>
        (pa.types.is_struct, "struct"),
    )
    for check, name in checks:
        if check(dtype):
            return name
    return str(dtype)


def compatible(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether values of type ``src`` may be written to a column of type ``dst``."""
    s, d = _kind(src), _kind(dst)
    if s == "null" or src == dst:
        return True
    if s == "list" and d == "list":
        return compatible(src.value_type, dst.value_type)
    if s == "struct" and d == "struct":
        return src.equals(dst)
    return s == d or (s == "int" and d == "float")


def _cast_column(table: str, name: str, column: pa.ChunkedArray, field: pa.Field) -> pa.ChunkedArray:
    if not compatible(column.type, field.type):
        raise SchemaMismatchError(table, name, f"has type {column.type}, the table stores {field.type}")
    if not field.nullable and column.null_count:
        raise SchemaMismatchError(table, name, f"{column.null_count} null value(s) in a non-nullable column")
    try:
        return pc.cast(column, field.type, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaMismatchError(table, name, f"cannot cast {column.type} to {field.type}: {exc}") from exc


def conform(
    data: pa.Table, target: pa.Schema, *, table: str, schema_mode: SchemaMode = "strict"
) -> tuple[pa.Table, pa.Schema]:
    """Cast ``data`` to ``target``; return the conformed data and the (possibly widened) schema.

    Args:
        data: rows to write.
        target: the table's current schema (or the catalog schema for a new table).
        table: table name, for error messages.
        schema_mode: ``"add_columns"`` lets unknown columns through as new nullable columns.

    Raises:
        SchemaMismatchError: a column is unknown (strict mode), missing while required, or of an
            incompatible type.
    """
    fields = list(target)
    for name in data.column_names:
        if target.get_field_index(name) >= 0:
            continue
        if schema_mode != "add_columns":
            raise SchemaMismatchError(
                table, name, "is not in the table's schema (pass schema_mode='add_columns' to add it)"
            )
        dtype = data.schema.field(name).type
        fields.append(pa.field(name, pa.string() if _kind(dtype) == "str" else dtype, nullable=True))
    schema = pa.schema(fields)
    columns = []
    for field in schema:
        if field.name in data.column_names:
            columns.append(_cast_column(table, field.name, data.column(field.name), field))
        elif field.nullable:
            columns.append(pa.chunked_array([pa.nulls(data.num_rows, field.type)], type=field.type))
        else:
            raise SchemaMismatchError(table, field.name, "is required (non-nullable) but missing")
    return pa.Table.from_arrays(columns, schema=schema), schema
