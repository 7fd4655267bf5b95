"""Catalog ingest in small batches lands exactly what one batch does: repeats and conflicts across batches."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import features
from tasks.ingest.catalog import ingest_catalog

# m4 conflicts across batches (rows 2 and 7), m5 repeats exactly across batches, m9 repeats then conflicts.
CSV = """item_id,title,year,text,genre
m1,Heat,1995,A heist,crime
m4,Dup,2001,first,
m2,Alien,1979,In space,horror
m5,Same Twice,2002,same,
,No Id,2000,x,
m9,Nine,1999,a,
m9,Nine,1999,a,
m5,Same Twice,2002,same,
m4,Dup,2001,second,
m9,Nine,1999,b,
"""


def _ingest(tmp_path: Path, fmt: str, batch_rows: int) -> tuple[tuple[int, ...], pl.DataFrame, list[tuple[str, str]]]:
    path = tmp_path / f"items.{fmt}"
    frame = pl.read_csv(CSV.encode(), schema_overrides={"year": pl.Int64})
    frame.write_csv(path) if fmt == "csv" else frame.write_parquet(path)
    lake = tmp_path / f"lake-{fmt}-{batch_rows}"
    s = ingest_catalog(path, lake=lake, batch_rows=batch_rows)
    items = features.read("items", columns=["item_id", "text", "attributes"], lake=lake).sort("item_id").collect()
    q = features.read("quarantine", columns=["record_key", "reason"], lake=lake).collect()
    reasons = sorted((k.split("#")[-1], r) for k, r in q.iter_rows())
    return (s.read, s.written, s.quarantined), items, reasons


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_batches_of_two_give_the_same_lake_as_one_batch(tmp_path: Path, fmt: str) -> None:
    counts, items, reasons = _ingest(tmp_path, fmt, 2)
    assert (counts, items.to_dicts(), reasons) == (
        (c := _ingest(tmp_path, fmt, 1000))[0],
        c[1].to_dicts(),
        c[2],
    )
    assert counts == (10, 3, 6) and items["item_id"].to_list() == ["m1", "m2", "m5"]
    assert sum("duplicate item_id 'm9'" in r for _, r in reasons) == 3
