"""Catalog ingest: formats, content hashes, quarantine of bad rows, idempotent re-run."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import features
from tasks.ingest.catalog import CatalogInputError, ingest_catalog

CSV = """item_id,title,year,text,poster_url,genre
m1,Heat,1995,A heist,http://x/1.jpg,crime
m2,Alien,1979,In space,,horror
,No Id,2000,x,,
m3,Bad Year,nineteen,x,,
m4,Dup,2001,first,,
m4,Dup,2001,second,,
m5,Same Twice,2002,same,,
m5,Same Twice,2002,same,,
"""


def test_csv_lands_good_rows_and_quarantines_bad(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text(CSV)
    summary = ingest_catalog(path, lake=tmp_path / "lake", source="test")
    assert (summary.read, summary.written, summary.quarantined) == (8, 3, 4)
    items = features.read("items", lake=tmp_path / "lake").sort("item_id").collect()
    assert items["item_id"].to_list() == ["m1", "m2", "m5"]
    heat = items.row(0, named=True)
    assert heat["year"] == 1995 and json.loads(heat["attributes"]) == {"genre": "crime"}
    assert heat["source"] == "test" and len(heat["content_hash"]) == 64
    reasons = features.read("quarantine", lake=tmp_path / "lake").collect()["reason"].to_list()
    assert "missing item_id" in reasons
    assert any(r.startswith("unparseable year") for r in reasons)
    assert sum("duplicate item_id 'm4'" in r for r in reasons) == 2


def test_rerun_is_noop_and_change_updates_one_row(tmp_path: Path) -> None:
    path, lake = tmp_path / "items.jsonl", tmp_path / "lake"
    rows = [{"item_id": "a", "title": "A", "year": 2000, "text": "t"}, {"item_id": "b", "title": "B"}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    ingest_catalog(path, lake=lake)
    version = features.table_version("items", lake=lake)
    again = ingest_catalog(path, lake=lake)
    assert (again.written, again.updated, again.unchanged) == (0, 0, 2)
    assert features.table_version("items", lake=lake) == version
    rows[1]["text"] = "now with a plot"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    changed = ingest_catalog(path, lake=lake)
    assert (changed.written, changed.updated, changed.unchanged) == (0, 1, 1)
    columns = ["item_id", "content_hash"]
    hashes = dict(features.read("items", columns=columns, lake=lake).collect().iter_rows())
    old = dict(features.read("items", version=version, columns=columns, lake=lake).collect().iter_rows())
    assert hashes["a"] == old["a"] and hashes["b"] != old["b"]


def test_parquet_and_unusable_inputs(tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    pl.DataFrame({"item_id": ["p1"], "title": ["P"], "year": [1990]}).write_parquet(path)
    assert ingest_catalog(path, lake=tmp_path / "lake").written == 1
    with pytest.raises(CatalogInputError, match="not found"):
        ingest_catalog(tmp_path / "missing.csv", lake=tmp_path / "lake")
    (tmp_path / "x.xml").write_text("<a/>")
    with pytest.raises(CatalogInputError, match="format"):
        ingest_catalog(tmp_path / "x.xml", lake=tmp_path / "lake")
    (tmp_path / "noid.csv").write_text("title\nX\n")
    with pytest.raises(CatalogInputError, match="no item_id column"):
        ingest_catalog(tmp_path / "noid.csv", lake=tmp_path / "lake")


def test_jsonl_non_text_plot_is_quarantined_and_columns_can_be_mapped(tmp_path: Path) -> None:
    path, lake = tmp_path / "items.jsonl", tmp_path / "lake"
    rows = [
        {"movie_id": "j1", "name": "Heat", "plot": "A heist.", "poster": "http://x/1.jpg"},
        {"movie_id": "j2", "name": "Alien", "plot": {"en": "In space."}},
        {"movie_id": "j3", "name": "Up", "plot": "A house flies.", "studio": "Pixar"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    mapping = {"movie_id": "item_id", "name": "title", "plot": "text", "poster": "poster_url"}
    summary = ingest_catalog(path, lake=lake, columns=mapping)
    assert (summary.read, summary.written, summary.quarantined) == (4, 2, 2)
    items = {r["item_id"]: r for r in features.read("items", lake=lake).collect().iter_rows(named=True)}
    assert items["j1"]["title"] == "Heat" and items["j1"]["poster_url"] == "http://x/1.jpg"
    assert json.loads(items["j3"]["attributes"]) == {"studio": "Pixar"}  # unmapped columns kept as attributes
    quarantined = features.read("quarantine", lake=lake).collect().iter_rows(named=True)
    bad = {r["record_key"].split("#")[-1]: r["reason"] for r in quarantined}  # key: items.jsonl@<sha256>#L<line>
    assert "not text" in bad["L2"] and bad["L4"].startswith("invalid JSON")
