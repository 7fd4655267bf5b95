"""The table catalog: keys, partitions and audit columns are consistent with each schema."""

from __future__ import annotations

import pyarrow as pa
import pytest

import features
from features import TABLES, LakeError, TableSpec, UnknownTableError, spec_for

DESIGN_TABLES = {
    "items",
    "poster_blobs",
    "dialogues",
    "turns",
    "quarantine",
    "item_embeddings",
    "item_graph_edges",
    "item_summaries",
    "preference_summaries",
    "model_registry",
    "pipeline_runs",
}

SPECS = list(TABLES.values())


# tables the implementation adds beside DESIGN.md's list
EXTRA_TABLES = {"poster_fetches"}


def test_catalog_has_the_design_tables() -> None:
    assert set(TABLES) == DESIGN_TABLES | EXTRA_TABLES


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_name_matches_catalog_key(spec: TableSpec) -> None:
    assert TABLES[spec.name] is spec
    assert spec_for(spec.name) is spec


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_keys_are_in_schema_and_non_nullable(spec: TableSpec) -> None:
    assert spec.keys, f"{spec.name} has no keys"
    assert len(set(spec.keys)) == len(spec.keys)
    for key in spec.keys:
        assert spec.schema.get_field_index(key) >= 0, f"{spec.name}: key {key} not in schema"
        assert not spec.schema.field(key).nullable, f"{spec.name}: key {key} is nullable"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_partition_columns_are_in_schema(spec: TableSpec) -> None:
    for column in spec.partition_by:
        assert spec.schema.get_field_index(column) >= 0, f"{spec.name}: partition {column} not in schema"
        assert not spec.schema.field(column).nullable
        assert column in spec.keys  # a row never moves between partitions on update


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_audit_columns_are_in_schema_and_not_keys(spec: TableSpec) -> None:
    for column in spec.audit:
        assert spec.schema.get_field_index(column) >= 0, f"{spec.name}: audit {column} not in schema"
        assert column not in spec.keys


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_content_columns_exclude_keys_and_audit(spec: TableSpec) -> None:
    content = spec.content_columns
    assert not set(content) & (set(spec.keys) | set(spec.audit))
    assert set(content) | set(spec.keys) | set(spec.audit) == set(spec.schema.names)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_no_fixed_size_lists_and_unique_names(spec: TableSpec) -> None:
    assert len(set(spec.schema.names)) == len(spec.schema.names)
    for field in spec.schema:
        assert not pa.types.is_fixed_size_list(field.type), f"{spec.name}.{field.name}"
    assert spec.description


def test_embeddings_are_list_float32_with_dim() -> None:
    spec = spec_for("item_embeddings")
    assert spec.schema.field("vector").type == pa.list_(pa.float32())
    assert spec.schema.field("dim").type == pa.int32()
    assert spec.keys == ("item_id", "modality", "model_id")
    assert spec.partition_by == ("modality",)


def test_unknown_table_error_names_known_tables() -> None:
    with pytest.raises(UnknownTableError) as info:
        spec_for("itemz")
    message = str(info.value)
    assert "'itemz'" in message
    for name in TABLES:
        assert name in message
    assert info.value.table == "itemz"
    assert isinstance(info.value, LakeError)
    assert isinstance(info.value, KeyError)
    assert not message.startswith('"')  # not KeyError's quoted repr


def test_public_api_rejects_unknown_tables(lake: str, commit) -> None:
    with pytest.raises(UnknownTableError, match=r"known tables: .*items"):
        features.read("nope", lake=lake)
    with pytest.raises(UnknownTableError):
        features.history("nope", lake=lake)
    with pytest.raises(UnknownTableError):
        features.upsert("nope", pa.table({"a": [1]}), commit=commit, lake=lake)
    with pytest.raises(UnknownTableError):
        features.append("nope", pa.table({"a": [1]}), commit=commit, app_id="x", lake=lake)
    with pytest.raises(UnknownTableError):
        features.delete("nope", "a = 1", commit=commit, lake=lake)
