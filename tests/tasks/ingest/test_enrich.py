"""Item enrichment from a local metadata table: match rules, text and attributes, the match report."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import polars as pl
import pytest

import features
from tasks.ingest.config import IngestSettings
from tasks.ingest.enrich import Enricher, describe
from tasks.ingest.metadata import MetadataSourceError, load_metadata
from tasks.ingest.stage import ingest

METADATA = """Title,Year,imdbID,Genre,Director,Writer,Actors,Country,Language
Heat,1995,tt0113277,"Action, Crime",Michael Mann,Michael Mann,"Al Pacino, Robert De Niro",USA,English
Alien,1979,tt0078748,Horror,Ridley Scott,Dan O'Bannon,Sigourney Weaver,UK,English
Okja,2017,tt3967856,Adventure,Bong Joon Ho,,,South Korea,Korean
The Mummy,1999,tt0120616,Adventure,Stephen Sommers,,,USA,N/A
The Mummy,2017,tt2345759,Action,Alex Kurtzman,,,USA,English
"Usual Suspects, The",1995,tt0114814,Crime,Bryan Singer,,,USA,English
"""

CATALOG = [
    {"item_id": "c1", "title": "Heat", "year": 1995},
    {"item_id": "c2", "title": "Some Alien Film", "year": 1980, "attributes": {"imdb_id": "tt0078748"}},
    {"item_id": "c3", "title": "Okja"},
    {"item_id": "c4", "title": "The Mummy"},
    {"item_id": "c5", "title": "Nowhere To Be Found", "year": 2001},
    {"item_id": "c6", "title": "The Usual Suspects", "year": 1995, "text": "Five crooks meet in a line-up."},
]


@pytest.fixture()
def metadata(tmp_path: Path) -> Path:
    path = tmp_path / "meta.csv"
    path.write_text(METADATA)
    return path


@pytest.fixture()
def catalog(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in CATALOG) + "\n")
    return path


def _items(lake: Path) -> dict[str, dict]:
    return {r["item_id"]: r for r in features.read("items", lake=lake).collect().iter_rows(named=True)}


def test_local_metadata_is_read_with_our_column_names(metadata: Path) -> None:
    movies = load_metadata(str(metadata))
    assert {"title", "year", "imdb_id", "genre", "cast", "key_title", "key_year"} <= set(movies.columns)
    assert movies.filter(pl.col("title") == "The Mummy")["language"].to_list() == [None, "English"]


def test_catalog_items_are_matched_by_rule_and_described(metadata: Path, catalog: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    summary = ingest(IngestSettings(catalog=str(catalog), enrich_with=str(metadata)), lake=lake)
    report = summary.enrichment
    assert report is not None
    assert (report["items"], report["matched"]) == (6, 4)
    assert report["by_rule"] == {"imdb_id": 1, "title+year": 2, "title": 1}
    assert report["unmatched_examples"] == ["The Mummy", "Nowhere To Be Found (2001)"]
    assert any(note.startswith("enriched from") and "66.7 %" in note for note in summary.notes())
    items = _items(lake)
    heat = items["c1"]
    assert heat["text"] == (
        "Heat (1995). Genres: Action, Crime. Directed by Michael Mann. Written by Michael Mann. "
        "Starring Al Pacino, Robert De Niro. Country: USA. Language: English."
    )
    attributes = json.loads(heat["attributes"])
    assert attributes["cast"] == ["Al Pacino", "Robert De Niro"] and attributes["imdb_id"] == "tt0113277"
    assert (attributes["metadata_source"], attributes["metadata_match"]) == (str(metadata), "title+year")
    assert json.loads(items["c2"]["attributes"])["director"] == "Ridley Scott"
    assert items["c3"]["year"] == 2017 and "Bong Joon Ho" in items["c3"]["text"]
    assert items["c4"]["attributes"] is None and items["c5"]["text"] is None
    assert items["c6"]["text"].endswith(
        "Directed by Bryan Singer. Country: USA. Language: English. Five crooks meet in a line-up."
    )


def test_re_ingest_with_the_same_metadata_writes_nothing(metadata: Path, catalog: Path, tmp_path: Path) -> None:
    lake, settings = tmp_path / "lake", IngestSettings(catalog=str(catalog), enrich_with=str(metadata))
    ingest(settings, lake=lake)
    version = features.table_version("items", lake=lake)
    assert ingest(settings, lake=lake).inputs["catalog"]["unchanged"] == 6
    assert features.table_version("items", lake=lake) == version


def test_items_created_from_mentions_are_enriched(metadata: Path, tmp_path: Path) -> None:
    dialogue = {
        "conversationId": 1,
        "initiatorWorkerId": 1,
        "respondentWorkerId": 2,
        "movieMentions": {"9": "Heat (1995)", "8": "Unknown Film (2003)"},
        "messages": [{"text": "loved @9, and @8?", "senderWorkerId": 1, "messageId": 1}],
    }
    path, lake = tmp_path / "d.jsonl", tmp_path / "lake"
    path.write_text(json.dumps(dialogue) + "\n")
    summary = ingest(IngestSettings(dialogues=str(path), enrich_with=str(metadata)), lake=lake)
    assert summary.enrichment is not None and summary.enrichment["matched"] == 1
    heat = _items(lake)["redial:9"]
    assert heat["text"].startswith("Heat (1995). Genres: Action, Crime.")
    assert json.loads(heat["attributes"])["created_from"] == "redial dialogue mention"


def test_sqlite_and_parquet_sources(metadata: Path, tmp_path: Path) -> None:
    frame = pl.read_csv(metadata, infer_schema=False)
    frame.write_parquet(tmp_path / "meta.parquet")
    db = tmp_path / "meta.db"
    with closing(sqlite3.connect(db)) as connection:
        connection.execute("CREATE TABLE movies (Title TEXT, Year INTEGER, imdbID TEXT, Genre TEXT)")
        connection.execute("CREATE TABLE other (x TEXT)")
        rows = frame.select("Title", "Year", "imdbID", "Genre").rows()
        connection.executemany("INSERT INTO movies VALUES (?, ?, ?, ?)", rows)
        connection.commit()
    rows = [{"item_id": "a", "title": "Alien", "year": 1979}]
    for source in (str(tmp_path / "meta.parquet"), f"{db}::movies"):
        enricher = Enricher.load(source)
        assert json.loads(enricher.enrich(rows)[0]["attributes"])["genres"] == ["Horror"]
    with pytest.raises(MetadataSourceError, match="name one"):
        load_metadata(str(db))
    (tmp_path / "bad.csv").write_text("name,when\nHeat,1995\n")
    with pytest.raises(MetadataSourceError, match="no title or year column"):
        load_metadata(str(tmp_path / "bad.csv"))


def test_describe_leaves_out_what_is_unknown() -> None:
    assert describe("Okja", None, {"cast": []}) == "Okja."
    many = describe("X", 2000, {"cast": "A, B, C, D, E, F, G"})
    assert many == "X (2000). Starring A, B, C, D, E and 2 others."


def test_bokeh_movies_enriches_a_known_movie() -> None:
    enricher = Enricher.load("bokeh-movies")
    row = enricher.enrich([{"item_id": "r", "title": "Toy Story", "year": 1995}])[0]
    assert json.loads(row["attributes"])["imdb_id"] == "tt0114709"
    assert enricher.report.matched == 1
