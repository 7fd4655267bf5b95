"""An object-store lake against a real S3 endpoint: moto's standalone S3 server on 127.0.0.1.

ingest (catalog + dialogues) -> graphs (co_mention, transition) -> train, through the nightly runner under a
Prefect test server, on ``s3://mmcrs-test/lake``; then ``training.load`` from the lake URI alone, a
recommendation, ``features.read(as_of=...)``, concurrent Delta commits (conditional put), and no S3 secret in
any lake file, log line or flow-run parameter.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from pyarrow import fs as pafs

import features
import training
from bench.s3 import create_bucket, moto_s3
from features import CommitInfo
from features.blobs import filesystem
from training.registry import resolve

from ..flows.test_train_cli import TINY

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]

BUCKET = "mmcrs-test"
LAKE = f"s3://{BUCKET}/lake"
ACCESS_KEY = "AKIAMMCRSTESTKEY0001"
SECRET_KEY = "mmcrs-s3-secret-do-not-leak-7f3a9c"
N_ITEMS, N_DIALOGUES = 24, 60


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server on a free 127.0.0.1 port, stopped after the module."""
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def storage_options(s3_endpoint: str) -> dict[str, str]:
    """What a user puts in ``[lake.storage_options]`` (or ``MMCRS_STORAGE_OPTIONS``) for an S3 lake."""
    options = {
        "aws_endpoint_url": s3_endpoint,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "aws_region": "us-east-1",
        "aws_allow_http": "true",  # the local endpoint speaks plain HTTP
        "aws_conditional_put": "etag",  # commits are put-if-absent: concurrent writers cannot overwrite a version
    }
    create_bucket(BUCKET, storage_options=options)
    return options


def _inputs(folder: Path) -> dict[str, str]:
    """A catalog CSV and ReDial JSONL dialogues in clusters (items of one cluster are mentioned together)."""
    folder.mkdir(parents=True, exist_ok=True)
    catalog = folder / "catalog.csv"
    rows = [f"ml:{i},Movie {i},2000,a film of kind {i % 4}" for i in range(N_ITEMS)]
    catalog.write_text("item_id,title,year,text\n" + "\n".join(rows) + "\n")
    lines = []
    for conv in range(N_DIALOGUES):
        cluster = [i for i in range(N_ITEMS) if i % 4 == conv % 4]
        picks = [cluster[(conv + k) % len(cluster)] for k in range(3)]
        texts = [f"I loved @{picks[0]}", f"then try @{picks[1]}", f"or @{picks[2]}", "thanks"]
        lines.append(
            json.dumps(
                {
                    "conversationId": conv,
                    "initiatorWorkerId": 1,
                    "respondentWorkerId": 2,
                    "movieMentions": {str(i): f"Movie {i} (2000)" for i in picks},
                    "initiatorQuestions": {},
                    "respondentQuestions": [],
                    "messages": [
                        {"timeOffset": t, "text": text, "senderWorkerId": 1 + t % 2, "messageId": conv * 100 + t}
                        for t, text in enumerate(texts)
                    ],
                }
            )
        )
    dialogues = folder / "dialogues.jsonl"
    dialogues.write_text("\n".join(lines) + "\n")
    return {"catalog": str(catalog), "dialogues": str(dialogues)}


def _flow_run_parameters() -> list[str]:
    from prefect import get_client

    async def read() -> list[str]:
        async with get_client() as client:
            return [json.dumps(run.parameters, default=str) for run in await client.read_flow_runs()]

    return asyncio.run(read())


def _lake_bytes(options: dict[str, str]) -> Iterator[tuple[str, bytes]]:
    s3, base = filesystem(LAKE, options)
    for info in s3.get_file_info(pafs.FileSelector(base, recursive=True)):
        if info.type == pafs.FileType.File:
            with s3.open_input_stream(info.path) as stream:
                yield info.path, bytes(stream.read())


def test_the_whole_path_on_an_s3_lake(
    storage_options: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from flows.nightly import nightly_flow, run_one

    monkeypatch.setenv("MMCRS_STORAGE_OPTIONS", json.dumps(storage_options))
    monkeypatch.delenv("MMCRS_ARTIFACTS", raising=False)
    monkeypatch.chdir(tmp_path)  # nothing may land in a local ./artifacts or ./lake
    caplog.set_level(logging.DEBUG)
    files = _inputs(tmp_path / "inputs")

    run = nightly_flow(
        lake=LAKE,
        **files,
        catalog_source="test",
        stages=["ingest", "graphs", "train"],
        settings={"graphs": {"graphs": ["co_mention", "transition"]}, "train": {"config": TINY}},
    )
    assert {r.name: r.status for r in run.records} == {"ingest": "ok", "graphs": "ok", "train": "ok"}, run.records
    assert features.read("items", lake=LAKE).collect().height == N_ITEMS
    assert features.read("turns", lake=LAKE).collect().height == 4 * N_DIALOGUES
    graphs = set(features.read("item_graph_edges", lake=LAKE).collect()["graph"].unique())
    assert graphs == {"co_mention", "transition"}
    ingested_at = datetime.now(UTC)

    row = resolve("mmcrs-graph-prompt", "production", lake=LAKE)
    assert row["artifact_uri"] == "_artifacts/mmcrs-graph-prompt/1"
    s3, base = filesystem(f"{LAKE}/_artifacts/mmcrs-graph-prompt/1", storage_options)
    assert s3.get_file_info(f"{base}/model.safetensors").type == pafs.FileType.File
    assert not (tmp_path / "artifacts").exists() and not (tmp_path / "lake").exists()

    rec = training.load("mmcrs-graph-prompt", "production", lake=LAKE, cache_dir=tmp_path / "cache")
    ranked = rec.recommend([{"role": "seeker", "text": "I loved @ml:0"}], k=5)
    assert rec.version == 1 and len(ranked) == 5 and "ml:0" not in {item for item, _ in ranked}

    again = run_one("graphs", {"graphs": ["co_mention", "transition"]}, lake=LAKE)
    assert again.status == "skipped"  # recorded in pipeline_runs on S3; nothing changed
    extra = {"item_id": ["late:1"], "source": ["test"], "title": ["Late"], "content_hash": ["late"]}
    extra_items = pl.DataFrame({**extra, "ingested_at": [datetime.now(UTC)]})
    time.sleep(0.01)
    features.upsert("items", extra_items, commit=CommitInfo(stage="ingest_catalog"), lake=LAKE)
    assert features.read("items", lake=LAKE).collect().height == N_ITEMS + 1
    assert features.read("items", as_of=ingested_at, lake=LAKE).collect().height == N_ITEMS  # time travel on S3

    secret = SECRET_KEY.encode()
    leaked = [path for path, data in _lake_bytes(storage_options) if secret in data or ACCESS_KEY.encode() in data]
    assert not leaked, leaked
    assert not any(SECRET_KEY in p or ACCESS_KEY in p for p in _flow_run_parameters())
    assert SECRET_KEY not in repr(features.resolve_lake(LAKE))  # a logged Lake or StageContext
    assert not any(SECRET_KEY in r.getMessage() or ACCESS_KEY in r.getMessage() for r in caplog.records)


def test_concurrent_commits_on_s3_do_not_overwrite_each_other(storage_options: dict[str, str]) -> None:
    """Two writers that loaded the same version both commit: the conditional put makes the second one retry
    at the next version instead of overwriting the first one's commit."""
    from deltalake import DeltaTable, write_deltalake

    uri = f"s3://{BUCKET}/concurrency"
    rows = pa.table({"x": [1, 2]})
    write_deltalake(uri, rows, storage_options=storage_options)
    first, second = (DeltaTable(uri, storage_options=storage_options) for _ in range(2))
    write_deltalake(first, rows, mode="append")
    write_deltalake(second, rows, mode="append")  # stale: it loaded version 0
    table = DeltaTable(uri, storage_options=storage_options)
    assert table.version() == 2 and table.to_pyarrow_table().num_rows == 6
