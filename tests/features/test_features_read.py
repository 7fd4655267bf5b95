"""The researchers' read API: versioned lazy reads, time travel, history metadata, the table listing."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

import features
from features import CommitInfo, LakeError, TableNotFoundError, resolve_lake


def _commit(run: str, **inputs: int) -> CommitInfo:
    return CommitInfo(stage="ingest_catalog", flow_run_id=run, config_hash=f"cfg-{run}", input_versions=inputs)


@pytest.fixture
def three_versions(lake: str, make_items) -> dict[int, datetime]:
    """items v0: a; v1: a, b; v2: a renamed, b. Returns each version's commit time (from history)."""
    features.upsert("items", make_items(["a"]), commit=_commit("r0", dialogues=1), lake=lake)
    time.sleep(0.02)  # distinct millisecond commit timestamps
    features.upsert("items", make_items(["a", "b"]), commit=_commit("r1", dialogues=2), lake=lake)
    time.sleep(0.02)
    features.upsert("items", make_items(["a"], title="renamed"), commit=_commit("r2", dialogues=2), lake=lake)
    history = features.history("items", lake=lake)
    return dict(zip(history["version"].to_list(), history["timestamp"].to_list(), strict=True))


@pytest.fixture
def tokyo_local_time() -> Iterator[None]:
    """Make the process' local time zone UTC+9, so naive-as-local bugs would show."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if previous is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = previous
    time.tzset()


def _titles(frame: pl.LazyFrame) -> dict[str, str]:
    out = frame.collect()
    return dict(zip(out["item_id"].to_list(), out["title"].to_list(), strict=True))


# --- read ---------------------------------------------------------------------------------------------------


def test_read_latest_is_lazy(lake: str, three_versions) -> None:
    frame = features.read("items", lake=lake)
    assert isinstance(frame, pl.LazyFrame)
    assert _titles(frame) == {"a": "renamed a", "b": "title b"}


def test_read_by_version(lake: str, three_versions) -> None:
    assert _titles(features.read("items", version=0, lake=lake)) == {"a": "title a"}
    assert _titles(features.read("items", version=1, lake=lake)) == {"a": "title a", "b": "title b"}
    assert _titles(features.read("items", version=2, lake=lake)) == {"a": "renamed a", "b": "title b"}


def test_pinned_read_is_unaffected_by_later_writes(lake: str, make_items, three_versions) -> None:
    frame = features.read("items", version=1, lake=lake)
    features.upsert("items", make_items(["z"]), commit=_commit("r3"), lake=lake)
    assert sorted(_titles(frame)) == ["a", "b"]
    assert sorted(_titles(features.read("items", lake=lake))) == ["a", "b", "z"]


@pytest.mark.parametrize("version", [-1, 3, 100])
def test_read_version_out_of_range(lake: str, three_versions, version: int) -> None:
    with pytest.raises(LakeError, match=rf"'items' has versions 0\.\.2; version {version} does not exist"):
        features.read("items", version=version, lake=lake)


def test_read_version_and_as_of_together(lake: str, three_versions) -> None:
    with pytest.raises(LakeError, match="either version= or as_of="):
        features.read("items", version=0, as_of=three_versions[0], lake=lake)


def test_read_as_of_between_commits(lake: str, three_versions) -> None:
    t = three_versions
    assert _titles(features.read("items", as_of=t[0] + (t[1] - t[0]) / 2, lake=lake)) == {"a": "title a"}
    assert sorted(_titles(features.read("items", as_of=t[1] + (t[2] - t[1]) / 2, lake=lake))) == ["a", "b"]


def test_read_as_of_history_timestamps(lake: str, three_versions) -> None:
    for version, when in three_versions.items():
        pinned = features.read("items", as_of=when, lake=lake).collect()
        expected = features.read("items", version=version, lake=lake).collect()
        assert pinned.sort("item_id").equals(expected.sort("item_id")), f"as_of history time of v{version}"


def test_read_as_of_after_last_commit_is_latest(lake: str, three_versions) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    assert _titles(features.read("items", as_of=later, lake=lake))["a"] == "renamed a"


@pytest.mark.parametrize("before", [timedelta(milliseconds=1), timedelta(seconds=1), timedelta(days=365)])
def test_read_as_of_before_table_existed(lake: str, three_versions, before: timedelta) -> None:
    with pytest.raises(LakeError, match="'items' did not exist yet"):
        features.read("items", as_of=three_versions[0] - before, lake=lake)


def test_read_as_of_naive_is_utc(lake: str, three_versions, tokyo_local_time) -> None:
    t = three_versions
    naive_mid = (t[0] + (t[1] - t[0]) / 2).replace(tzinfo=None)  # a UTC wall-clock time without tzinfo
    assert _titles(features.read("items", as_of=naive_mid, lake=lake)) == {"a": "title a"}
    with pytest.raises(LakeError, match="did not exist yet"):
        features.read("items", as_of=(t[0] - timedelta(seconds=1)).replace(tzinfo=None), lake=lake)


def test_read_as_of_other_time_zone(lake: str, three_versions) -> None:
    t = three_versions
    mid = (t[0] + (t[1] - t[0]) / 2).astimezone(timezone(timedelta(hours=-7)))
    assert _titles(features.read("items", as_of=mid, lake=lake)) == {"a": "title a"}


def test_read_as_of_in_a_copied_lake(lake: str, tmp_path: Path, three_versions) -> None:
    # a copy (cp -r, object-store sync, backup restore) resets the log files' modification times; time
    # travel must still follow the commit timestamps that history() shows
    copy = tmp_path / "copied-lake"
    shutil.copytree(lake, copy, copy_function=shutil.copy)  # no metadata: fresh mtimes
    t = three_versions
    assert _titles(features.read("items", as_of=t[0] + (t[1] - t[0]) / 2, lake=str(copy))) == {"a": "title a"}
    assert sorted(_titles(features.read("items", as_of=t[1], lake=str(copy)))) == ["a", "b"]
    assert _titles(features.read("items", as_of=t[2], lake=str(copy)))["a"] == "renamed a"


def test_read_columns(lake: str, three_versions) -> None:
    out = features.read("items", columns=["title", "item_id"], lake=lake).collect()
    assert out.columns == ["title", "item_id"]
    assert out.height == 2
    old = features.read("items", version=0, columns=("item_id",), lake=lake).collect()
    assert old.columns == ["item_id"]
    assert old["item_id"].to_list() == ["a"]


def test_read_with_lake_object_and_env(lake: str, three_versions, monkeypatch: pytest.MonkeyPatch) -> None:
    assert features.read("items", lake=resolve_lake(lake)).collect().height == 2
    monkeypatch.setenv("MMCRS_LAKE", lake)
    assert features.read("items", version=0).collect().height == 1


def test_read_missing_table(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    with pytest.raises(TableNotFoundError) as info:
        features.read("turns", lake=lake)
    assert "'turns'" in str(info.value)
    assert info.value.table == "turns"
    assert isinstance(info.value, LakeError)
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(TableNotFoundError):
        features.history("turns", lake=lake)


def test_read_vectors_cast_to_array(lake: str, make_embeddings, commit) -> None:
    features.upsert("item_embeddings", make_embeddings(["a", "b", "c"], "text", dim=8), commit=commit, lake=lake)
    frame = features.read("item_embeddings", columns=["item_id", "dim", "vector"], lake=lake)
    out = frame.with_columns(pl.col("vector").cast(pl.Array(pl.Float32, 8))).sort("item_id").collect()
    assert out.schema["vector"] == pl.Array(pl.Float32, 8)
    matrix = out["vector"].to_numpy()
    assert matrix.shape == (3, 8)
    assert matrix[2, 3] == pytest.approx(2.3)


# --- history ------------------------------------------------------------------------------------------------


def test_history_newest_first_with_metadata(lake: str, three_versions) -> None:
    history = features.history("items", lake=lake)
    assert history["version"].to_list() == [2, 1, 0]
    assert history["operation"].to_list() == ["MERGE", "MERGE", "WRITE"]
    assert history.schema["timestamp"] == pl.Datetime("ms", "UTC")
    times = history["timestamp"].to_list()
    assert times == sorted(times, reverse=True)
    for row in history.iter_rows(named=True):
        run = f"r{row['version']}"
        assert row["stage"] == "ingest_catalog"
        assert row["flow_run_id"] == run
        assert row["config_hash"] == f"cfg-{run}"
        assert row["code_version"] == features.code_version()
        assert json.loads(row["input_versions"]) == {"dialogues": 1 if row["version"] == 0 else 2}
        meta = json.loads(row["metadata"])
        assert meta["stage"] == "ingest_catalog"
        assert meta["flow_run_id"] == run
        assert isinstance(json.loads(row["metrics"]), dict)


def test_history_of_all_write_kinds(lake: str, make_items) -> None:
    info = CommitInfo(stage="s", flow_run_id=None, extra={"source_file": "cat.csv"})
    features.upsert("items", make_items(["a", "b"]), commit=info, lake=lake)
    features.upsert("items", make_items(["a"], title="x"), commit=info, lake=lake)
    features.append("items", make_items(["c"]), commit=info, app_id="app", lake=lake)
    features.delete("items", "item_id = 'b'", commit=info, lake=lake)
    history = features.history("items", lake=lake)
    assert history["operation"].to_list() == ["DELETE", "WRITE", "MERGE", "WRITE"]
    assert history["stage"].to_list() == ["s"] * 4
    assert history["flow_run_id"].to_list() == [None] * 4  # empty run id reads back as null
    assert history["config_hash"].to_list() == [None] * 4
    assert all(json.loads(m)["source_file"] == "cat.csv" for m in history["metadata"])
    assert all(json.loads(v) == {} for v in history["input_versions"])


def test_history_skips_no_op_writes(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    features.delete("items", "item_id = 'nope'", commit=commit, lake=lake)
    assert features.history("items", lake=lake)["version"].to_list() == [0]


# --- tables -------------------------------------------------------------------------------------------------


def test_tables_lists_catalog_on_empty_lake(lake: str) -> None:
    listing = features.tables(lake=lake)
    assert listing["table"].to_list() == list(features.TABLES)
    assert not listing["exists"].any()
    assert listing["version"].null_count() == listing.height
    assert listing["rows"].null_count() == listing.height
    row = listing.filter(pl.col("table") == "item_embeddings").row(0, named=True)
    assert row["keys"] == "item_id, modality, model_id"
    assert row["partition_by"] == "modality"
    assert row["uri"] == f"{resolve_lake(lake).root}/item_embeddings"
    assert row["description"]
    assert not Path(lake).exists()  # listing creates nothing


def test_tables_after_writes(lake: str, make_items, make_embeddings, commit) -> None:
    features.upsert("items", make_items(["a", "b", "c"]), commit=commit, lake=lake)
    features.upsert("items", make_items(["d"]), commit=commit, lake=lake)
    features.delete("items", "item_id = 'a'", commit=commit, lake=lake)
    data = pl.concat([make_embeddings(["a", "b"], "image"), make_embeddings(["a"], "text")])
    features.upsert("item_embeddings", data, commit=commit, lake=lake)
    listing = {row["table"]: row for row in features.tables(lake=lake).iter_rows(named=True)}
    assert (listing["items"]["exists"], listing["items"]["version"], listing["items"]["rows"]) == (True, 2, 3)
    assert (listing["item_embeddings"]["version"], listing["item_embeddings"]["rows"]) == (0, 3)
    assert not listing["turns"]["exists"]
    assert listing["turns"]["version"] is None
    assert features.table_versions(["items", "turns", "item_embeddings"], lake=lake) == {
        "items": 2,
        "item_embeddings": 0,
    }


def test_tables_uses_env_lake(isolated: Path, make_items, commit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCRS_LAKE", str(isolated / "env-lake"))
    features.upsert("items", make_items(["a"]), commit=commit)
    row = features.tables().filter(pl.col("table") == "items").row(0, named=True)
    assert row["exists"] and row["rows"] == 1
    assert row["uri"] == str(isolated / "env-lake" / "items")


def test_missing_table_reads_empty_with_the_catalog_schema(lake: str) -> None:
    frame = features.read("turns", missing="empty", lake=lake).collect()
    assert frame.height == 0
    assert frame.schema == pl.DataFrame(features.spec_for("turns").schema.empty_table()).schema
    some = features.read("items", columns=["item_id", "year", "ingested_at"], missing="empty", lake=lake).collect()
    assert some.schema == pl.Schema({"item_id": pl.String, "year": pl.Int32, "ingested_at": pl.Datetime("us", "UTC")})
    with pytest.raises(TableNotFoundError):
        features.read("turns", lake=lake)  # missing="raise" is the default


def test_missing_empty_reads_an_existing_table_as_usual(lake: str, three_versions: dict[int, datetime]) -> None:
    frame = features.read("items", version=1, columns=["item_id"], missing="empty", lake=lake).collect()
    assert sorted(frame["item_id"]) == ["a", "b"]


def test_missing_empty_still_checks_table_and_columns(lake: str) -> None:
    with pytest.raises(features.UnknownTableError):
        features.read("nope", missing="empty", lake=lake)
    with pytest.raises(LakeError, match="no column"):
        features.read("items", columns=["item_id", "colour"], missing="empty", lake=lake)
    with pytest.raises(ValueError, match="missing"):
        features.read("items", missing="ignore", lake=lake)  # type: ignore[arg-type]


def test_lake_is_keyword_only(lake: str) -> None:
    for call in (
        lambda: features.table_version("items", lake),  # type: ignore[misc]
        lambda: features.table_versions(["items"], lake),  # type: ignore[misc]
        lambda: features.history("items", lake),  # type: ignore[misc]
        lambda: features.tables(lake),  # type: ignore[misc]
    ):
        with pytest.raises(TypeError):
            call()
