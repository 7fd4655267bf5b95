"""Idempotent writes against real Delta tables: upsert (merge on keys), append (app transactions), delete."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

import features
from features import CommitInfo, DuplicateKeyError, WriteResult


def _rows(table: str, lake: str) -> pl.DataFrame:
    return features.read(table, lake=lake).collect()


def _n_versions(table: str, lake: str) -> int:
    return features.history(table, lake=lake).height


# --- upsert -------------------------------------------------------------------------------------------------


def test_upsert_creates_table(lake: str, make_items, commit) -> None:
    result = features.upsert("items", make_items(["a", "b", "c"]), commit=commit, lake=lake)
    assert result == WriteResult("items", version=0, committed=True, inserted=3)
    out = _rows("items", lake).sort("item_id")
    assert out["item_id"].to_list() == ["a", "b", "c"]
    assert out["title"].to_list() == ["title a", "title b", "title c"]


def test_upsert_updates_changed_rows_only(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a", "b", "c"]), commit=commit, lake=lake)
    changed = pl.concat(
        [
            make_items(["a", "b"]),  # unchanged
            make_items(["c"], title="new"),  # changed
            make_items(["d"]),  # new
        ]
    )
    result = features.upsert("items", changed, commit=commit, lake=lake)
    assert result == WriteResult("items", version=1, committed=True, inserted=1, updated=1, unchanged=2)
    out = _rows("items", lake).sort("item_id")
    assert out["item_id"].to_list() == ["a", "b", "c", "d"]
    assert out["title"].to_list() == ["title a", "title b", "new c", "title d"]
    merge = features.history("items", lake=lake).row(0, named=True)
    assert merge["operation"] == "MERGE"
    assert '"num_target_rows_updated": 1' in merge["metrics"]
    assert '"num_target_rows_inserted": 1' in merge["metrics"]


def test_upsert_writes_exactly_the_changed_rows_at_scale(lake: str, commit, now: datetime) -> None:
    # regression: the changed-row mask was computed on a join without a kept row order, so a multi-threaded
    # join wrote the wrong rows (counts right, contents wrong) once tables had a few thousand rows
    n = 3000
    base = pl.DataFrame(
        {
            "item_id": [f"i{k:05d}" for k in range(n)],
            "source": ["demo"] * n,
            "title": ["old"] * n,
            "content_hash": ["c"] * n,
            "ingested_at": [now] * n,
        }
    )
    features.upsert("items", base, commit=commit, lake=lake)
    new_rows = base.head(n // 10).with_columns(pl.col("item_id").str.replace("i", "n"), title=pl.lit("added"))
    edited = base.with_columns(
        title=pl.when(pl.int_range(pl.len()) % 7 == 0).then(pl.lit("new")).otherwise(pl.col("title"))
    )
    incoming = pl.concat([edited, new_rows]).sample(fraction=1.0, shuffle=True, seed=1)
    result = features.upsert("items", incoming, commit=commit, lake=lake)
    assert (result.inserted, result.updated) == (n // 10, len(range(0, n, 7)))
    assert result.unchanged == n - len(range(0, n, 7))
    out = _rows("items", lake).sort("item_id")
    assert out.select("item_id", "title").equals(incoming.select("item_id", "title").sort("item_id"))


def test_upsert_keeps_rows_not_in_input(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a", "b"]), commit=commit, lake=lake)
    features.upsert("items", make_items(["b"], title="x"), commit=commit, lake=lake)
    out = _rows("items", lake).sort("item_id")
    assert out["title"].to_list() == ["title a", "x b"]


def test_upsert_unchanged_commits_nothing(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a", "b"]), commit=commit, lake=lake)
    result = features.upsert("items", make_items(["b", "a"]), commit=commit, lake=lake)
    assert result == WriteResult("items", version=0, committed=False, unchanged=2)
    assert features.table_version("items", lake=lake) == 0
    assert _n_versions("items", lake) == 1


def test_upsert_audit_only_difference_commits_nothing(lake: str, make_items, commit, now: datetime) -> None:
    features.upsert("items", make_items(["a", "b"]), commit=commit, lake=lake)
    later = make_items(["a", "b"], at=now + timedelta(days=3))
    result = features.upsert("items", later, commit=commit, lake=lake)
    assert not result.committed
    assert result.unchanged == 2 and result.updated == 0
    assert features.table_version("items", lake=lake) == 0
    assert set(_rows("items", lake)["ingested_at"].to_list()) == {now}  # first write time kept


def test_upsert_content_change_rewrites_audit_column(lake: str, make_items, commit, now: datetime) -> None:
    features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    later = now + timedelta(hours=1)
    features.upsert("items", make_items(["a"], title="new", at=later), commit=commit, lake=lake)
    assert _rows("items", lake)["ingested_at"].to_list() == [later]


def test_upsert_second_audit_column_ignored(lake: str, commit, now: datetime) -> None:
    # dialogues treat source_file as audit too: moving the same dialogue to another file is not a change
    row = {
        "dialogue_id": ["d1"],
        "source": ["redial"],
        "source_file": ["a.jsonl"],
        "n_turns": [3],
        "n_quarantined_turns": [0],
        "content_hash": ["h"],
        "ingested_at": [now],
    }
    features.upsert("dialogues", pl.DataFrame(row), commit=commit, lake=lake)
    moved = pl.DataFrame({**row, "source_file": ["b.jsonl"]})
    assert not features.upsert("dialogues", moved, commit=commit, lake=lake).committed
    changed = pl.DataFrame({**row, "n_turns": [4]})
    assert features.upsert("dialogues", changed, commit=commit, lake=lake).updated == 1


def test_upsert_null_to_value_is_a_change(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    result = features.upsert("items", make_items(["a"]).with_columns(year=pl.lit(1999)), commit=commit, lake=lake)
    assert result.updated == 1
    # a column the input lacks is left as it is for existing rows ...
    result = features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    assert result.updated == 0 and not result.committed
    assert _rows("items", lake)["year"].to_list() == [1999]
    # ... an explicit null is a change
    explicit = make_items(["a"]).with_columns(year=pl.lit(None, dtype=pl.Int32))
    result = features.upsert("items", explicit, commit=commit, lake=lake)
    assert result.updated == 1
    assert _rows("items", lake)["year"].to_list() == [None]


def test_upsert_keeps_columns_the_input_lacks_and_inserts_nulls(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    features.update_columns(
        "items", pl.DataFrame({"item_id": ["a"], "poster_sha256": ["s" * 64]}), commit=commit, lake=lake
    )
    result = features.upsert("items", make_items(["a", "b"], title="new"), commit=commit, lake=lake)
    assert (result.inserted, result.updated) == (1, 1)
    rows = _rows("items", lake).sort("item_id")
    assert rows["poster_sha256"].to_list() == ["s" * 64, None]
    assert rows["title"].to_list() == ["new a", "new b"]


def test_update_columns_sets_only_given_columns_of_existing_rows(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a", "b"]), commit=commit, lake=lake)
    before = features.table_version("items", lake=lake)
    update = pl.DataFrame({"item_id": ["a", "b", "zz"], "poster_sha256": ["x", None, "y"]})
    result = features.update_columns("items", update, commit=commit, lake=lake)
    assert (result.updated, result.unchanged, result.missing, result.inserted) == (1, 1, 1, 0)
    rows = _rows("items", lake).sort("item_id")
    assert rows["item_id"].to_list() == ["a", "b"] and rows["poster_sha256"].to_list() == ["x", None]
    assert rows["title"].null_count() == 0
    again = features.update_columns("items", update, commit=commit, lake=lake)
    assert not again.committed and features.table_version("items", lake=lake) == before + 1
    with pytest.raises(features.SchemaMismatchError, match="item_id"):
        features.update_columns("items", pl.DataFrame({"poster_sha256": ["x"]}), commit=commit, lake=lake)
    with pytest.raises(features.SchemaMismatchError, match="nope"):
        features.update_columns("items", pl.DataFrame({"item_id": ["a"], "nope": [1]}), commit=commit, lake=lake)


def test_upsert_composite_keys(lake: str, commit, now: datetime) -> None:
    def turns(texts: list[str]) -> pl.DataFrame:
        n = len(texts)
        return pl.DataFrame(
            {
                "dialogue_id": ["d1"] * n,
                "turn_idx": list(range(n)),
                "role": ["seeker"] * n,
                "text": texts,
                "mentioned_item_ids": [["i1"]] * n,
                "liked": [[True]] * n,
                "ingested_at": [now] * n,
            }
        )

    features.upsert("turns", turns(["hi", "hello"]), commit=commit, lake=lake)
    result = features.upsert("turns", turns(["hi", "hello!", "bye"]), commit=commit, lake=lake)
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    out = _rows("turns", lake).sort("turn_idx")
    assert out["text"].to_list() == ["hi", "hello!", "bye"]
    assert out.schema["turn_idx"] == pl.Int32
    assert out["mentioned_item_ids"].to_list() == [["i1"]] * 3


def test_upsert_list_column_change_detected(lake: str, commit, now: datetime) -> None:
    base = {
        "dialogue_id": ["d1"],
        "turn_idx": [0],
        "role": ["seeker"],
        "text": ["x"],
        "mentioned_item_ids": [["i1", "i2"]],
        "liked": [[True, None]],
        "ingested_at": [now],
    }
    features.upsert("turns", pl.DataFrame(base), commit=commit, lake=lake)
    assert not features.upsert("turns", pl.DataFrame(base), commit=commit, lake=lake).committed
    labelled = pl.DataFrame({**base, "liked": [[True, False]]})
    assert features.upsert("turns", labelled, commit=commit, lake=lake).updated == 1
    assert _rows("turns", lake)["liked"].to_list() == [[True, False]]


def test_upsert_duplicate_keys_rejected(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    data = pl.concat([make_items(["b", "c"]), make_items(["b"], title="other")])
    with pytest.raises(DuplicateKeyError) as info:
        features.upsert("items", data, commit=commit, lake=lake)
    assert "'items'" in str(info.value)
    assert "'b'" in str(info.value)
    assert info.value.table == "items"
    assert isinstance(info.value, features.LakeError)
    assert features.table_version("items", lake=lake) == 0
    assert _rows("items", lake).height == 1


def test_upsert_duplicate_composite_key_on_new_table(lake: str, commit) -> None:
    data = pl.DataFrame(
        {
            "graph": ["knn", "knn", "knn"],
            "src": ["a", "a", "b"],
            "dst": ["b", "b", "a"],
            "weight": [1.0, 2.0, 3.0],
        }
    )
    with pytest.raises(DuplicateKeyError, match="'item_graph_edges'"):
        features.upsert("item_graph_edges", data, commit=commit, lake=lake)
    assert features.table_version("item_graph_edges", lake=lake) is None


def test_upsert_same_key_in_different_partitions_is_not_a_duplicate(lake: str, make_embeddings, commit) -> None:
    data = pl.concat([make_embeddings(["a"], "image"), make_embeddings(["a"], "text")])
    assert features.upsert("item_embeddings", data, commit=commit, lake=lake).inserted == 2


def test_upsert_empty_input(lake: str, make_items, commit) -> None:
    empty = make_items([])
    assert features.upsert("items", empty, commit=commit, lake=lake) == WriteResult("items", None, False)
    assert not (Path(lake) / "items").exists()
    features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    assert features.upsert("items", empty, commit=commit, lake=lake) == WriteResult("items", 0, False)


def test_upsert_retry_is_idempotent(lake: str, make_items, commit) -> None:
    data = make_items(["a", "b", "c"])
    first = features.upsert("items", data, commit=commit, lake=lake)
    retry = features.upsert("items", data, commit=CommitInfo(stage="test_stage", flow_run_id="run-1-retry"), lake=lake)
    assert first.committed and not retry.committed
    assert retry.version == first.version
    assert _rows("items", lake).height == 3


# --- partitioned upsert with vectors -----------------------------------------------------------------------


def test_partitioned_upsert_across_two_partitions(lake: str, make_embeddings, commit) -> None:
    first = pl.concat([make_embeddings(["a", "b"], "image"), make_embeddings(["a", "b"], "text", offset=10)])
    assert features.upsert("item_embeddings", first, commit=commit, lake=lake).inserted == 4
    table_dir = Path(lake) / "item_embeddings"
    assert (table_dir / "modality=image").is_dir()
    assert (table_dir / "modality=text").is_dir()

    second = pl.concat(
        [
            make_embeddings(["a", "b"], "image"),  # unchanged
            make_embeddings(["a", "b", "c"], "text", offset=20),  # a, b changed; c new
        ]
    )
    result = features.upsert("item_embeddings", second, commit=commit, lake=lake)
    assert (result.inserted, result.updated, result.unchanged) == (1, 2, 2)
    assert result.version == 1

    out = _rows("item_embeddings", lake).sort("modality", "item_id")
    assert out.height == 5
    assert out.schema["vector"] == pl.List(pl.Float32)
    image = out.filter(pl.col("modality") == "image")
    text = out.filter(pl.col("modality") == "text")
    assert [v[0] for v in image["vector"].to_list()] == pytest.approx([0.0, 1.0])
    assert [v[0] for v in text["vector"].to_list()] == pytest.approx([20.0, 21.0, 22.0])

    fixed = out.with_columns(pl.col("vector").cast(pl.Array(pl.Float32, 4)))
    assert fixed.schema["vector"] == pl.Array(pl.Float32, 4)
    matrix = fixed.filter(pl.col("modality") == "image")["vector"].to_numpy()
    assert matrix.shape == (2, 4)
    assert matrix.dtype.name == "float32"
    assert matrix[1].tolist() == pytest.approx([1.0, 1.1, 1.2, 1.3])
    assert (out["dim"] == 4).all()

    again = features.upsert("item_embeddings", second, commit=commit, lake=lake)
    assert not again.committed and again.unchanged == 5


def test_partitioned_upsert_touches_only_its_partition(lake: str, make_embeddings, commit) -> None:
    features.upsert(
        "item_embeddings",
        pl.concat([make_embeddings(["a"], "image"), make_embeddings(["a"], "text")]),
        commit=commit,
        lake=lake,
    )
    dt = DeltaTable(f"{lake}/item_embeddings")
    text_files_before = {f for f in dt.file_uris() if "modality=text" in f}
    features.upsert("item_embeddings", make_embeddings(["a"], "image", offset=5), commit=commit, lake=lake)
    dt = DeltaTable(f"{lake}/item_embeddings")
    assert {f for f in dt.file_uris() if "modality=text" in f} == text_files_before
    out = _rows("item_embeddings", lake).sort("modality")
    assert [v[0] for v in out["vector"].to_list()] == pytest.approx([5.0, 0.0])


def test_partition_value_with_quote(lake: str, commit) -> None:
    edges = pl.DataFrame({"graph": ["it's", "knn"], "src": ["a", "a"], "dst": ["b", "c"], "weight": [1.0, 2.0]})
    features.upsert("item_graph_edges", edges, commit=commit, lake=lake)
    result = features.upsert("item_graph_edges", edges.with_columns(weight=pl.lit(3.0)), commit=commit, lake=lake)
    assert result.updated == 2
    assert _rows("item_graph_edges", lake)["weight"].to_list() == [3.0, 3.0]


# --- append with app transactions ---------------------------------------------------------------------------


def _runs(*ids: str) -> pl.DataFrame:
    return pl.DataFrame({"run_id": list(ids), "stage": ["embed"] * len(ids), "status": ["ok"] * len(ids)})


def test_append_same_app_version_commits_once(lake: str, commit) -> None:
    first = features.append("pipeline_runs", _runs("r1", "r2"), commit=commit, app_id="embed/run-1", lake=lake)
    assert first == WriteResult("pipeline_runs", 0, True, inserted=2)
    again = features.append("pipeline_runs", _runs("r1", "r2"), commit=commit, app_id="embed/run-1", lake=lake)
    assert again == WriteResult("pipeline_runs", 0, False, unchanged=2)
    assert features.table_version("pipeline_runs", lake=lake) == 0
    assert _rows("pipeline_runs", lake).height == 2
    assert DeltaTable(f"{lake}/pipeline_runs").transaction_version("embed/run-1") == 1


def test_append_higher_app_version_commits(lake: str, commit) -> None:
    features.append("pipeline_runs", _runs("r1"), commit=commit, app_id="w", app_version=1, lake=lake)
    result = features.append("pipeline_runs", _runs("r2"), commit=commit, app_id="w", app_version=2, lake=lake)
    assert result.committed and result.version == 1
    assert DeltaTable(f"{lake}/pipeline_runs").transaction_version("w") == 2
    stale = features.append("pipeline_runs", _runs("r3"), commit=commit, app_id="w", app_version=1, lake=lake)
    assert not stale.committed and stale.version == 1
    same = features.append("pipeline_runs", _runs("r3"), commit=commit, app_id="w", app_version=2, lake=lake)
    assert not same.committed
    assert sorted(_rows("pipeline_runs", lake)["run_id"].to_list()) == ["r1", "r2"]


def test_append_different_app_id_commits(lake: str, commit) -> None:
    features.append("pipeline_runs", _runs("r1"), commit=commit, app_id="shard-0", lake=lake)
    other = features.append("pipeline_runs", _runs("r2"), commit=commit, app_id="shard-1", lake=lake)
    assert other.committed and other.version == 1
    dt = DeltaTable(f"{lake}/pipeline_runs")
    assert dt.transaction_version("shard-0") == 1
    assert dt.transaction_version("shard-1") == 1
    assert dt.transaction_version("shard-2") is None
    assert _rows("pipeline_runs", lake).height == 2


def test_append_retry_after_commit_succeeded_but_caller_crashed(lake: str, commit) -> None:
    class Crash(RuntimeError):
        pass

    def stage(attempt: int) -> WriteResult:
        info = CommitInfo(stage="embed", flow_run_id="flow-7", extra={"attempt": str(attempt)})
        rows = _runs("r1", "r2", "r3")
        result = features.append("pipeline_runs", rows, commit=info, app_id="embed/flow-7", lake=lake)
        if attempt == 1:
            raise Crash("worker died after the Delta commit, before reporting success")
        return result

    with pytest.raises(Crash):
        stage(1)
    assert features.table_version("pipeline_runs", lake=lake) == 0  # the commit did land
    retried = stage(2)
    assert not retried.committed
    assert retried.version == 0
    assert _rows("pipeline_runs", lake).height == 3  # no duplicated rows
    history = features.history("pipeline_runs", lake=lake)
    assert history.height == 1
    assert '"attempt": "1"' in history["metadata"][0]


def test_append_retry_after_failure_before_commit(lake: str, commit) -> None:
    bad = _runs("r1").with_columns(status=pl.lit(None, dtype=pl.String))
    with pytest.raises(features.SchemaMismatchError):
        features.append("pipeline_runs", bad, commit=commit, app_id="job", lake=lake)
    assert features.table_version("pipeline_runs", lake=lake) is None
    result = features.append("pipeline_runs", _runs("r1"), commit=commit, app_id="job", lake=lake)
    assert result.committed and result.version == 0
    assert _rows("pipeline_runs", lake)["run_id"].to_list() == ["r1"]


def test_append_to_table_created_by_upsert(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a"]), commit=commit, lake=lake)
    result = features.append("items", make_items(["b"]), commit=commit, app_id="backfill", lake=lake)
    assert result.committed and result.version == 1
    assert sorted(_rows("items", lake)["item_id"].to_list()) == ["a", "b"]
    assert features.history("items", lake=lake)["operation"].to_list() == ["WRITE", "WRITE"]


def test_append_partitioned(lake: str, make_embeddings, commit) -> None:
    data = pl.concat([make_embeddings(["a"], "image"), make_embeddings(["a"], "text")])
    features.append("item_embeddings", data, commit=commit, app_id="embed", lake=lake)
    assert (Path(lake) / "item_embeddings" / "modality=text").is_dir()
    assert _rows("item_embeddings", lake).height == 2


# --- delete -------------------------------------------------------------------------------------------------


def test_delete_matching_rows(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a", "b", "c"]), commit=commit, lake=lake)
    result = features.delete("items", "item_id IN ('a', 'c')", commit=commit, lake=lake)
    assert result == WriteResult("items", 1, True, deleted=2)
    assert _rows("items", lake)["item_id"].to_list() == ["b"]
    latest = features.history("items", lake=lake).row(0, named=True)
    assert latest["operation"] == "DELETE"
    assert latest["stage"] == "test_stage"


def test_delete_without_match_commits_nothing(lake: str, make_items, commit) -> None:
    features.upsert("items", make_items(["a", "b"]), commit=commit, lake=lake)
    result = features.delete("items", "item_id = 'zzz'", commit=commit, lake=lake)
    assert result == WriteResult("items", 0, False, deleted=0)
    assert features.table_version("items", lake=lake) == 0
    assert _rows("items", lake).height == 2


def test_delete_on_missing_table(lake: str, commit) -> None:
    assert features.delete("items", "item_id = 'a'", commit=commit, lake=lake) == WriteResult("items", None, False)


def test_delete_in_partition(lake: str, make_embeddings, commit) -> None:
    data = pl.concat([make_embeddings(["a", "b"], "image"), make_embeddings(["a"], "text")])
    features.upsert("item_embeddings", data, commit=commit, lake=lake)
    result = features.delete("item_embeddings", "modality = 'image' AND item_id = 'a'", commit=commit, lake=lake)
    assert result.deleted == 1 and result.committed
    out = _rows("item_embeddings", lake).sort("modality", "item_id")
    assert out.select("item_id", "modality").rows() == [("b", "image"), ("a", "text")]


def test_replace_partition_swaps_one_partition_in_one_commit(lake: str, commit: CommitInfo) -> None:
    def edges(graph: str, pairs: list[tuple[str, str]]) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "graph": graph,
                "src": [a for a, _ in pairs],
                "dst": [b for _, b in pairs],
                "weight": [1.0] * len(pairs),
                "rank": list(range(1, len(pairs) + 1)),
            },
            schema_overrides={"weight": pl.Float32, "rank": pl.Int32},
        )

    features.replace_partition(
        "item_graph_edges", edges("a", [("x", "y"), ("y", "x")]), partition={"graph": "a"}, commit=commit, lake=lake
    )
    features.replace_partition(
        "item_graph_edges", edges("b", [("x", "z")]), partition={"graph": "b"}, commit=commit, lake=lake
    )
    result = features.replace_partition(
        "item_graph_edges", edges("a", [("z", "x")]), partition={"graph": "a"}, commit=commit, lake=lake
    )
    assert result.committed and result.version == 2
    rows = features.read("item_graph_edges", lake=lake).sort("graph").collect()
    assert rows.select("graph", "src", "dst").rows() == [("a", "z", "x"), ("b", "x", "z")]
    assert features.read("item_graph_edges", version=1, lake=lake).collect().height == 3  # time travel intact
    with pytest.raises(ValueError, match="outside the partition"):
        features.replace_partition(
            "item_graph_edges", edges("b", [("x", "y")]), partition={"graph": "a"}, commit=commit, lake=lake
        )


def _edges(*rows: tuple[str, str, float]) -> pl.DataFrame:
    return pl.DataFrame(
        {"graph": ["g"] * len(rows), "src": [r[0] for r in rows], "dst": [r[1] for r in rows]}
    ).with_columns(pl.Series("weight", [r[2] for r in rows], pl.Float32), pl.lit(1, pl.Int32).alias("rank"))


def test_merge_changes_upserts_and_deletes_in_one_commit(lake: str, commit) -> None:
    from features.write import merge_changes

    features.upsert(
        "item_graph_edges", _edges(("a", "b", 1.0), ("a", "c", 2.0), ("b", "c", 3.0)), commit=commit, lake=lake
    )
    before = _n_versions("item_graph_edges", lake)
    gone = pl.DataFrame({"graph": ["g", "g"], "src": ["b", "a"], "dst": ["c", "b"]})  # ("a", "b") is also upserted
    result = merge_changes("item_graph_edges", _edges(("a", "b", 5.0), ("c", "a", 1.5)), gone, commit=commit, lake=lake)
    assert _n_versions("item_graph_edges", lake) == before + 1 and result.committed
    got = _rows("item_graph_edges", lake).sort("src", "dst")
    assert got.select("src", "dst", "weight").rows() == [("a", "b", 5.0), ("a", "c", 2.0), ("c", "a", 1.5)]
