"""Catalog ingest with hostile input: a bad record is one quarantine row; a file unusable as a whole is one error."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import features
from tasks.ingest.catalog import CatalogInputError, ingest_catalog

HEADER = b"item_id,title,year\n"
GOOD_BEFORE, GOOD_AFTER = b"m1,Heat,1995\n", b'm3,"Usual Suspects, The",1995\n'


def _reasons(lake: Path) -> dict[str, str]:
    rows = features.read("quarantine", lake=lake).collect().iter_rows(named=True)
    return {r["record_key"].split("#")[-1]: r["reason"] for r in rows}


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        (b"m2,Alien,1979,extra\n", "ragged row"),
        (b"m2,Alien\n", "ragged row"),
        (b'm2,"Alien,1979\n', "unterminated quoted field"),
        (b'm2,"Ali"en,1979\n', "bad CSV quoting"),
        (b"m2,\xff\xfeAlien,1979\n", "invalid UTF-8"),
        (b"m2,Alien," + b"9" * 5000 + b"\n", "unparseable year"),
        (b"," + b"x" * 10 + b",1979\n", "missing item_id"),
        (b"x" * 201 + b",Alien,1979\n", "invalid item_id"),
    ],
)
def test_one_bad_csv_row_is_one_quarantine_row_and_the_rest_lands(tmp_path: Path, bad_row: bytes, reason: str) -> None:
    path, lake = tmp_path / "items.csv", tmp_path / "lake"
    path.write_bytes(HEADER + GOOD_BEFORE + bad_row + GOOD_AFTER)
    summary = ingest_catalog(path, lake=lake)
    assert (summary.read, summary.written, summary.quarantined) == (3, 2, 1)
    items = features.read("items", lake=lake).collect().sort("item_id")
    assert items.select("item_id", "title").rows() == [("m1", "Heat"), ("m3", "Usual Suspects, The")]
    assert list(_reasons(lake)) == ["L3"] and _reasons(lake)["L3"].startswith(reason)


def test_a_quoted_field_may_span_lines(tmp_path: Path) -> None:
    path, lake = tmp_path / "items.csv", tmp_path / "lake"
    path.write_bytes(b'item_id,title,text\nm1,Heat,"a heist,\nin two lines"\nm2,Alien,x\n')
    assert ingest_catalog(path, lake=lake).written == 2
    texts = dict(features.read("items", columns=["item_id", "text"], lake=lake).collect().iter_rows())
    assert texts == {"m1": "a heist,\nin two lines", "m2": "x"}


@pytest.mark.parametrize("content", [b"", b"item_id,title\n"], ids=["empty", "header-only"])
def test_a_csv_without_rows_says_so(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes(content)
    summary = ingest_catalog(path, lake=tmp_path / "lake")
    assert (summary.read, summary.written) == (0, 0) and summary.notes == [
        "catalog items.csv has no rows: nothing to ingest"
    ]
    assert features.table_version("items", lake=tmp_path / "lake") is None


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"item_id": ["a"], "title": "x"}, "invalid item_id: item_id is list"),
        ({"item_id": {"a": 1}, "title": "x"}, "invalid item_id: item_id is dict"),
        ({"item_id": True, "title": "x"}, "invalid item_id: item_id is bool"),
        ({"item_id": 1.5, "title": "x"}, "invalid item_id: item_id is float"),
        ({"item_id": "j2", "title": ["x"]}, "invalid title: list"),
        ({"item_id": "j2", "title": {"en": "x"}}, "invalid title: dict"),
        ({"item_id": "j2", "title": False}, "invalid title: bool"),
        ({"item_id": "j2", "poster_url": 7}, "invalid poster_url: int"),
        ({"item_id": "j2", "year": True}, "unparseable year"),
    ],
)
def test_jsonl_ids_and_titles_are_type_checked_never_stringified(
    tmp_path: Path, record: dict[str, object], reason: str
) -> None:
    path, lake = tmp_path / "items.jsonl", tmp_path / "lake"
    rows = [{"item_id": "j1", "title": "Heat"}, record, {"item_id": 3, "title": "Up"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "[" * 100_000 + "\n")
    summary = ingest_catalog(path, lake=lake)
    assert (summary.read, summary.written, summary.quarantined) == (4, 2, 2)
    assert sorted(features.read("items", lake=lake).collect()["item_id"]) == ["3", "j1"]
    reasons = _reasons(lake)
    assert reasons["L2"].startswith(reason) and reasons["L4"] == "invalid JSON: nested too deeply"


def test_parquet_struct_and_list_values_are_quarantined(tmp_path: Path) -> None:
    path, lake = tmp_path / "items.parquet", tmp_path / "lake"
    frame = pl.DataFrame({"item_id": ["p1", "p2"], "title": [{"en": "P"}, None], "year": [1990.0, float("nan")]})
    frame.write_parquet(path)
    summary = ingest_catalog(path, lake=lake)
    assert (summary.written, summary.quarantined) == (1, 1)
    assert _reasons(lake) == {"row1": "invalid title: dict, not text"}
    assert features.read("items", lake=lake).collect().row(0, named=True)["year"] is None


def test_files_unusable_as_a_whole_are_one_clear_error(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    corrupt = tmp_path / "items.parquet"
    pl.DataFrame({"item_id": ["p1"]}).write_parquet(corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:-20] + b"\0" * 20)
    with pytest.raises(CatalogInputError, match=r"items\.parquet: not a readable Parquet file"):
        ingest_catalog(corrupt, lake=lake)
    duplicate = tmp_path / "dup.csv"
    duplicate.write_text("item_id,title,title\nm1,A,B\n")
    with pytest.raises(CatalogInputError, match="duplicate column 'title'"):
        ingest_catalog(duplicate, lake=lake)
    counts = tmp_path / "counts.csv"
    counts.write_text("movieId,nbMentions,title\n1,5,A\n")
    with pytest.raises(CatalogInputError, match="movieId, nbMentions would all become 'item_id'"):
        ingest_catalog(counts, lake=lake, columns={"movieId": "item_id", "nbMentions": "item_id"})
    with pytest.raises(CatalogInputError, match="would all become 'title'"):
        ingest_catalog(counts, lake=lake, columns={"movieId": "item_id", "nbMentions": "title"})
    assert features.table_version("items", lake=lake) is None


def test_a_url_with_credentials_is_refused_and_the_password_stored_nowhere(tmp_path: Path) -> None:
    lake, path = tmp_path / "lake", tmp_path / "items.csv"
    path.write_text(
        "item_id,title,poster_url\n"
        "m1,Heat,https://posters.example/heat.jpg\n"
        "m2,Alien,https://bob:hunter2-secret@posters.example/alien.jpg\n"
    )
    summary = ingest_catalog(path, lake=lake)
    assert (summary.written, summary.quarantined) == (1, 1)
    assert _reasons(lake)["L3"].startswith("invalid poster_url: it carries credentials")
    stored = b"".join(p.read_bytes() for p in lake.rglob("*") if p.is_file())
    assert b"hunter2-secret" not in stored  # not in items, not in the quarantine excerpt, not in _delta_log
