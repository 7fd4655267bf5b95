"""The ReDial movie list as catalog items: ids that dialogue mentions link to, whichever is ingested first."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

import features
from tasks.ingest.catalog import ingest_catalog
from tasks.ingest.config import IngestSettings
from tasks.ingest.redial_movies import redial_movie_row
from tasks.ingest.stage import ingest

# the shared ReDial data next to the repository (MMCRS_REDIAL_DIR overrides where it is)
REAL = Path(os.environ.get("MMCRS_REDIAL_DIR") or Path(__file__).resolve().parents[4] / "shared" / "data" / "redial")

MOVIES = """movieId,movieName,nbMentions
111,Heat  (1995),12
222,Triangle (2009),3
223,Triangle (2009),1
333,Okja,4
444,Strange Days (0000),1
x9,Not A Number (2000),1
555,,1
666,Ragged (2001),1,extra
"""


def _dialogue(conversation: int, mentions: dict[str, str]) -> dict:
    ids = list(mentions)
    return {
        "conversationId": conversation,
        "initiatorWorkerId": 1,
        "respondentWorkerId": 2,
        "movieMentions": mentions,
        "initiatorQuestions": {},
        "respondentQuestions": {},
        "messages": [
            {"text": f"I loved @{ids[0]}", "senderWorkerId": 1, "messageId": 1},
            {"text": " ".join(f"try @{i}" for i in ids[1:]) or "ok", "senderWorkerId": 2, "messageId": 2},
        ],
    }


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    movies = tmp_path / "movies_with_mentions.csv"
    movies.write_text(MOVIES)
    dialogues = tmp_path / "d.jsonl"
    records = [
        _dialogue(1, {"111": "Heat  (1995)", "223": "Triangle (2009)"}),
        _dialogue(2, {"222": "Triangle (2009)", "333": "Okja", "777": "Not In The List (2010)"}),
    ]
    dialogues.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return movies, dialogues


def test_names_are_split_into_title_and_year() -> None:
    assert redial_movie_row({"movieId": "1", "movieName": "Heat  (1995)"}) == {
        "item_id": "redial:1",
        "title": "Heat",
        "year": 1995,
        "text": "Heat (1995)",
    }
    assert redial_movie_row({"movieId": "2", "movieName": "Okja "})["year"] is None
    odd = redial_movie_row({"movieId": "3", "movieName": "Strange Days (0000)"})
    assert (odd["title"], odd["year"]) == ("Strange Days (0000)", None)
    with pytest.raises(ValueError, match="not a number"):
        redial_movie_row({"movieId": "x9", "movieName": "A (2000)"})


def test_movie_list_lands_as_items_and_bad_rows_are_quarantined(files: tuple[Path, Path], tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    summary = ingest_catalog(files[0], fmt="redial-movies", lake=lake)
    assert (summary.read, summary.written, summary.quarantined) == (8, 5, 3)
    items = features.read("items", lake=lake).sort("item_id").collect()
    assert items["item_id"].to_list() == ["redial:111", "redial:222", "redial:223", "redial:333", "redial:444"]
    assert set(items["source"]) == {"redial"}
    heat = items.row(0, named=True)
    assert (heat["title"], heat["year"], heat["text"]) == ("Heat", 1995, "Heat (1995)")
    reasons = features.read("quarantine", lake=lake).collect()["reason"].to_list()
    assert any("not a number" in r for r in reasons) and any("no movieName" in r for r in reasons)
    assert any(r.startswith("ragged row") for r in reasons)
    assert ingest_catalog(files[0], fmt="redial-movies", lake=lake).unchanged == 5


def _state(lake: Path) -> tuple[list[str], dict[tuple[str, int], list[str]]]:
    items = sorted(features.read("items", lake=lake).collect()["item_id"].to_list())
    turns = features.read("turns", lake=lake).collect()
    mentions = {(d, i): m for d, i, m in turns.select("dialogue_id", "turn_idx", "mentioned_item_ids").iter_rows()}
    return items, mentions


def test_catalog_before_or_after_dialogues_gives_the_same_items(files: tuple[Path, Path], tmp_path: Path) -> None:
    movies, dialogues = files
    catalog = IngestSettings(catalog=str(movies), catalog_format="redial-movies")
    talk = IngestSettings(dialogues=str(dialogues))
    ingest(catalog, lake=tmp_path / "first")
    ingest(talk, lake=tmp_path / "first")
    ingest(talk, lake=tmp_path / "after")
    ingest(catalog, lake=tmp_path / "after")
    first, after = _state(tmp_path / "first"), _state(tmp_path / "after")
    assert first == after
    items, mentions = first
    assert len(items) == len(set(items)) == 6  # five catalog movies and the one the list lacks
    assert mentions[("redial:1", 1)] == ["redial:223"] and mentions[("redial:2", 1)][0] == "redial:333"
    assert set(features.read("items", lake=tmp_path / "after").collect()["source"]) == {"redial", "mention:redial"}


def test_the_cli_takes_the_catalog_format_as_format(files: tuple[Path, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import flows.nightly  # noqa: F401  (import prefect first: its log handlers bind the real stderr)
    from flows.cli import app

    lake = str(tmp_path / "lake")
    result = CliRunner().invoke(
        app, ["ingest", "--catalog", str(files[0]), "--format", "redial-movies", "--lake", lake]
    )
    assert result.exit_code == 0, result.output
    assert features.read("items", lake=lake).collect().height == 5


@pytest.mark.skipif(not (REAL / "movies_with_mentions.csv").is_file(), reason="no shared ReDial data here")
def test_the_real_redial_movie_list_covers_every_mention(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    settings = IngestSettings(
        catalog=str(REAL / "movies_with_mentions.csv"),
        catalog_format="redial-movies",
        dialogues=str(REAL / "redial_test.jsonl"),
        enrich_with="bokeh-movies",
    )
    summary = ingest(settings, lake=lake)
    items = features.read("items", columns=["item_id", "attributes"], lake=lake).collect()
    assert items.height == 6924 and summary.inputs["catalog"]["quarantined"] == 0
    assert summary.inputs["dialogues"]["items_created"] == 0
    mentioned = features.read("turns", lake=lake).select(pl.col("mentioned_item_ids").explode()).collect()
    assert set(mentioned.to_series().drop_nulls()) <= set(items["item_id"])
    assert summary.enrichment is not None and summary.enrichment["rate"] > 0.55
