"""The demo flow end to end (small): packaged catalog + synthetic dialogues into a fresh lake, twice."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import features

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_demo_flow_builds_lake_and_rerun_writes_nothing(tmp_path: Path) -> None:
    from flows.demo import demo_flow

    lake, workdir = str(tmp_path / "lake"), str(tmp_path / "demo")
    result = demo_flow(lake=lake, workdir=workdir, items=60, synthetic_dialogues=12, use_redial=False)
    assert result["inputs"]["dialogue_source"] == "synthetic"

    items = features.read("items", lake=lake).collect()
    catalog = items.filter(pl.col("source") == "movielens")
    assert catalog.height == 60
    assert catalog.filter(pl.col("item_id") == "ml:1")["title"].item() == "Toy Story"
    assert catalog["poster_url"].str.starts_with("file://").all()
    assert all(Path(u.removeprefix("file://")).is_file() for u in catalog["poster_url"])

    dialogues = features.read("dialogues", lake=lake).collect()
    assert dialogues.height == 12 and set(dialogues["source"]) == {"synthetic"}
    mentioned = features.read("turns", lake=lake).explode("mentioned_item_ids").collect()["mentioned_item_ids"]
    assert mentioned.drop_nulls().str.starts_with("ml:").any()  # synthetic mentions link to catalog items
    assert items.filter(pl.col("source") == "mention:synthetic").height > 0  # the rest: items of their own

    before = features.tables(lake).select("table", "version")
    again = demo_flow(lake=lake, workdir=workdir, items=60, synthetic_dialogues=12, use_redial=False)
    assert again["ingest"]["dialogues"]["written"] == 0
    assert features.tables(lake).select("table", "version").equals(before)
