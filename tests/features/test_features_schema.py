"""Conforming data to table schemas: checked casts, clear errors, nullable fill, added columns."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

import features
from features import SchemaMismatchError, spec_for
from features.schema import compatible, conform
from features.store import disk_schema

ITEMS = spec_for("items").schema


@pytest.mark.parametrize(
    ("src", "dst", "ok"),
    [
        (pa.int32(), pa.int32(), True),
        (pa.int64(), pa.int32(), True),  # checked narrowing cast
        (pa.int8(), pa.int64(), True),
        (pa.int64(), pa.float32(), True),
        (pa.float64(), pa.float32(), True),
        (pa.large_string(), pa.string(), True),
        (pa.string_view(), pa.string(), True),
        (pa.null(), pa.int32(), True),
        (pa.large_list(pa.float64()), pa.list_(pa.float32()), True),
        (pa.list_(pa.float32(), 4), pa.list_(pa.float32()), True),  # fixed-size -> variable list
        (pa.timestamp("us"), pa.timestamp("us", tz="UTC"), True),
        (pa.string(), pa.int32(), False),
        (pa.float64(), pa.int32(), False),
        (pa.bool_(), pa.int32(), False),
        (pa.int64(), pa.string(), False),
        (pa.string(), pa.timestamp("us", tz="UTC"), False),
        (pa.list_(pa.string()), pa.list_(pa.float32()), False),
        (pa.list_(pa.float32()), pa.float32(), False),
    ],
)
def test_compatible(src: pa.DataType, dst: pa.DataType, ok: bool) -> None:
    assert compatible(src, dst) is ok


def test_conform_fills_missing_nullable_columns_and_orders_like_schema() -> None:
    data = pa.table(
        {
            "content_hash": ["c"],
            "item_id": ["a"],
            "source": ["demo"],
            "ingested_at": pa.array([0], pa.timestamp("us", tz="UTC")),
        }
    )
    rows, schema = conform(data, ITEMS, table="items")
    assert schema == ITEMS
    assert rows.schema == ITEMS
    assert rows.column_names == ITEMS.names
    for name in ("title", "year", "text", "attributes", "poster_url", "poster_sha256"):
        assert rows.column(name).null_count == 1
    assert rows.column("item_id").to_pylist() == ["a"]


def test_conform_missing_required_column() -> None:
    data = pa.table({"item_id": ["a"], "source": ["demo"], "content_hash": ["c"]})
    with pytest.raises(SchemaMismatchError, match=r"'items'.*'ingested_at'.*required") as info:
        conform(data, ITEMS, table="items")
    assert info.value.column == "ingested_at"


def test_unknown_column_strict_names_table_and_column(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    with pytest.raises(SchemaMismatchError) as info:
        features.upsert("items", make_items(["b"]).with_columns(genre=pl.lit("drama")), commit=commit, lake=lake)
    assert "'items'" in str(info.value)
    assert "'genre'" in str(info.value)
    assert "add_columns" in str(info.value)  # says how to allow it
    assert (info.value.table, info.value.column) == ("items", "genre")
    assert features.table_version("items", lake=lake) == 0  # nothing committed
    assert features.read("items", lake=lake).collect()["item_id"].to_list() == ["a"]


def test_unknown_column_on_new_table_creates_nothing(lake: str, make_items, commit) -> None:
    with pytest.raises(SchemaMismatchError, match="'genre'"):
        features.upsert("items", make_items(["a"]).with_columns(genre=pl.lit("x")), commit=commit, lake=lake)
    assert features.table_version("items", lake=lake) is None


@pytest.mark.parametrize(
    ("column", "value"),
    [("year", "1999"), ("year", 1999.5), ("year", True), ("title", 12), ("ingested_at", "2026-01-01")],
)
def test_incompatible_type_names_table_and_column(lake: str, make_items, commit, column: str, value) -> None:
    features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    bad = make_items(["b"]).with_columns(pl.lit(value).alias(column))
    with pytest.raises(SchemaMismatchError) as info:
        features.upsert("items", bad, commit=commit, lake=lake)
    assert f"table 'items', column '{column}'" in str(info.value)
    assert info.value.column == column
    assert features.table_version("items", lake=lake) == 0


def test_string_into_int32_on_new_table(lake: str, make_items, commit) -> None:
    with pytest.raises(SchemaMismatchError, match=r"table 'items', column 'year'.*int32"):
        features.upsert("items", make_items(["a"]).with_columns(year=pl.lit("1999")), commit=commit, lake=lake)


def test_null_in_non_nullable_column(lake: str, make_items, commit) -> None:
    bad = make_items(["a", "b"]).with_columns(source=pl.Series([None, "demo"], dtype=pl.String))
    with pytest.raises(SchemaMismatchError, match=r"'items', column 'source'.*1 null value"):
        features.upsert("items", bad, commit=commit, lake=lake)
    assert features.table_version("items", lake=lake) is None


def test_all_null_untyped_column_into_non_nullable(lake: str, make_items, commit) -> None:
    bad = make_items(["a"]).with_columns(source=pl.lit(None))
    with pytest.raises(SchemaMismatchError, match="column 'source'"):
        features.upsert("items", bad, commit=commit, lake=lake)


def test_all_null_untyped_column_into_nullable(lake: str, make_items, commit) -> None:
    data = make_items(["a"]).with_columns(year=pl.lit(None), text=pl.lit(None))
    assert data.schema["year"] == pl.Null
    features.upsert("items", data, commit=commit, lake=lake)
    out = features.read("items", lake=lake).collect()
    assert out.schema["year"] == pl.Int32
    assert out["year"].to_list() == [None]


def test_missing_nullable_columns_read_back_null(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    out = features.read("items", lake=lake).collect()
    assert out.columns == ITEMS.names
    assert out.row(0, named=True)["year"] is None
    assert out.row(0, named=True)["poster_url"] is None
    assert out.row(0, named=True)["title"] == "title a"


def test_add_columns_adds_nullable_column(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a", "b"]), commit=commit, lake=lake)
    new = make_items(["c"]).with_columns(genre=pl.lit("drama"))
    result = features.upsert("items", new, commit=commit, lake=lake, schema_mode="add_columns")
    assert result.committed and result.inserted == 1
    out = features.read("items", lake=lake).collect().sort("item_id")
    assert out.columns[-1] == "genre"
    assert out.schema["genre"] == pl.String
    assert out["genre"].to_list() == [None, None, "drama"]  # old rows read back null
    stored = disk_schema(DeltaTable(f"{lake}/items"))
    assert stored.field("genre").nullable
    assert not stored.field("item_id").nullable  # existing fields keep their nullability
    # once added, the column is part of the schema: strict writes may use it
    later = features.upsert("items", make_items(["a"]).with_columns(genre=pl.lit("comedy")), commit=commit, lake=lake)
    assert later.updated == 1
    # and writes without it fill nulls
    features.upsert("items", make_items(["d"]), commit=commit, lake=lake)
    assert features.read("items", lake=lake).filter(pl.col("item_id") == "d").collect()["genre"].to_list() == [None]


def test_add_columns_all_null_column_is_kept_and_rerun_is_a_no_op(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    data = make_items(["a"]).with_columns(genre=pl.lit(None, dtype=pl.String))
    first = features.upsert("items", data, commit=commit, lake=lake, schema_mode="add_columns")
    assert first.committed and first.unchanged == 1  # a schema change only
    assert "genre" in features.read("items", lake=lake).collect_schema().names()
    again = features.upsert("items", data, commit=commit, lake=lake, schema_mode="add_columns")
    assert not again.committed and again.version == first.version


def test_add_columns_on_new_table(lake: str, make_items, commit) -> None:
    data = make_items(["a"]).with_columns(score=pl.lit(0.5))
    result = features.upsert("items", data, commit=commit, lake=lake, schema_mode="add_columns")
    assert result.committed
    out = features.read("items", lake=lake).collect()
    assert out["score"].to_list() == [0.5]
    assert out.columns[: len(ITEMS.names)] == ITEMS.names


def test_add_columns_with_append(lake: str, commit) -> None:
    runs = pl.DataFrame({"run_id": ["r1"], "stage": ["s"], "status": ["ok"]})
    features.append("pipeline_runs", runs, commit=commit, app_id="a", lake=lake)
    more = pl.DataFrame({"run_id": ["r2"], "stage": ["s"], "status": ["ok"], "host": ["n1"]})
    with pytest.raises(SchemaMismatchError, match="'pipeline_runs', column 'host'"):
        features.append("pipeline_runs", more, commit=commit, app_id="b", lake=lake)
    features.append("pipeline_runs", more, commit=commit, app_id="b", lake=lake, schema_mode="add_columns")
    out = features.read("pipeline_runs", lake=lake).collect().sort("run_id")
    assert out["host"].to_list() == [None, "n1"]


def test_int64_into_int32_when_values_fit(lake: str, make_items, commit) -> None:
    data = make_items(["a", "b"]).with_columns(year=pl.Series([1999, -5], dtype=pl.Int64))
    features.upsert("items", data, commit=commit, lake=lake)
    out = features.read("items", lake=lake).collect().sort("item_id")
    assert out.schema["year"] == pl.Int32
    assert out["year"].to_list() == [1999, -5]


def test_int64_overflow_into_int32_fails_clearly(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    data = make_items(["b"]).with_columns(year=pl.Series([2**31], dtype=pl.Int64))
    with pytest.raises(SchemaMismatchError) as info:
        features.upsert("items", data, commit=commit, lake=lake)
    message = str(info.value)
    assert "table 'items', column 'year'" in message
    assert "int64" in message and "int32" in message
    assert features.table_version("items", lake=lake) == 0


def test_int_into_float_column(lake: str, commit) -> None:
    edges = pl.DataFrame({"graph": ["knn"], "src": ["a"], "dst": ["b"], "weight": [2], "rank": [1]})
    features.upsert("item_graph_edges", edges, commit=commit, lake=lake)
    out = features.read("item_graph_edges", lake=lake).collect()
    assert out.schema["weight"] == pl.Float32
    assert out.schema["rank"] == pl.Int32
    assert out["weight"].to_list() == [2.0]


def test_naive_timestamps_are_stored_as_utc(lake: str, make_items, commit) -> None:
    from datetime import UTC, datetime

    data = make_items(["a"]).with_columns(ingested_at=pl.lit(datetime(2020, 1, 2, 3, 4)))
    features.upsert("items", data, commit=commit, lake=lake)
    stored = features.read("items", lake=lake).collect()["ingested_at"].to_list()
    assert stored == [datetime(2020, 1, 2, 3, 4, tzinfo=UTC)]


@pytest.mark.parametrize(
    "vectors",
    [
        pl.Series([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=pl.List(pl.Float64)),
        pl.Series([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=pl.Array(pl.Float32, 3)),
        pl.Series([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=pl.Array(pl.Float64, 3)),
    ],
    ids=["list-f64", "array-f32", "array-f64"],
)
def test_vector_flavours_are_stored_as_list_float32(lake: str, make_embeddings, commit, vectors: pl.Series) -> None:
    data = make_embeddings(["a", "b"], "image", dim=3).with_columns(vector=vectors)
    result = features.upsert("item_embeddings", data, commit=commit, lake=lake)
    assert result.inserted == 2
    out = features.read("item_embeddings", lake=lake).collect().sort("item_id")
    assert out.schema["vector"] == pl.List(pl.Float32)
    assert out["vector"].to_list() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    again = features.upsert("item_embeddings", data, commit=commit, lake=lake)
    assert not again.committed and again.unchanged == 2


def test_arrow_table_input(lake: str, commit) -> None:
    data = pa.table(
        {
            "item_id": pa.array(["a"], pa.large_string()),
            "source": ["demo"],
            "content_hash": ["c"],
            "year": pa.array([2001], pa.int16()),
            "ingested_at": pa.array([0], pa.timestamp("ms", tz="UTC")),
        }
    )
    result = features.upsert("items", data, commit=commit, lake=lake)
    assert result.inserted == 1
    assert features.read("items", lake=lake).collect()["year"].to_list() == [2001]
