"""The crawl stage against a real HTTP server on 127.0.0.1: stored, quarantined, incremental, refresh."""

from __future__ import annotations

import functools
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

import features
from features import CommitInfo
from features.blobs import poster_store
from tasks.backoff import RetryBackoff
from tasks.crawl.config import CrawlConfig
from tasks.crawl.stage import crawl


class _Server:
    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        log = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                log.append(self.path)
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[_Server]:
    root = tmp_path / "www"
    root.mkdir()
    for name, fmt in (("a.png", "PNG"), ("b.jpg", "JPEG")):
        buffer = io.BytesIO()
        Image.new("RGB", (20, 30), (10, 200, 30) if fmt == "PNG" else (200, 10, 30)).save(buffer, format=fmt)
        (root / name).write_bytes(buffer.getvalue())
    (root / "shared.png").write_bytes((root / "a.png").read_bytes())  # same bytes under another URL
    (root / "page.html").write_text("<html><body>not an image</body></html>")
    (root / "plot.txt").write_text("A thief plans one last heist.")
    srv = _Server(root)
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _items(lake: Path, rows: dict[str, dict[str, str | None]]) -> None:
    now = datetime.now(UTC)
    frame = pl.DataFrame(
        [
            {
                "item_id": k,
                "source": "t",
                "content_hash": k,
                "ingested_at": now,
                "poster_url": v.get("poster"),
                "plot_url": v.get("plot"),
                "text": v.get("text"),
            }
            for k, v in rows.items()
        ],
        schema_overrides={"ingested_at": pl.Datetime("us", "UTC")},
    )
    features.upsert("items", frame, commit=CommitInfo(stage="test"), lake=lake)


def test_crawl_stores_quarantines_and_reruns_without_requests(server: _Server, tmp_path: Path) -> None:
    lake, base = tmp_path / "lake", server.base
    _items(
        lake,
        {
            "i1": {"poster": f"{base}/a.png"},
            "i2": {"poster": f"{base}/b.jpg"},
            "i3": {"poster": f"{base}/shared.png"},
            "i4": {"poster": f"{base}/a.png"},
            "i5": {"poster": f"{base}/missing.png"},
            "i6": {"poster": f"{base}/page.html"},
            "i7": {"plot": f"{base}/plot.txt"},
        },
    )
    config = CrawlConfig(allow_hosts=("127.0.0.1",), retry=RetryBackoff(retries=0))
    summary = crawl(lake=lake, config=config)
    assert (summary.urls, summary.requested, summary.stored, summary.failed) == (6, 6, 4, 2)
    assert len(server.requests) == 6  # a.png once for two items

    items = {r["item_id"]: r for r in features.read("items", lake=lake).collect().iter_rows(named=True)}
    assert items["i1"]["poster_sha256"] == items["i4"]["poster_sha256"] == items["i3"]["poster_sha256"]
    assert items["i2"]["poster_sha256"] not in (None, items["i1"]["poster_sha256"])
    assert items["i5"]["poster_sha256"] is None and items["i6"]["poster_sha256"] is None
    assert items["i7"]["plot_text"] == "A thief plans one last heist."
    blobs = features.read("poster_blobs", lake=lake).collect()
    assert blobs.height == 2 and set(blobs["format"]) == {"PNG", "JPEG"}
    store = poster_store(features.resolve_lake(lake))
    assert store.get(items["i1"]["poster_sha256"]) == (tmp_path / "www" / "a.png").read_bytes()
    quarantine = {r["record_key"]: r for r in features.read("quarantine", lake=lake).collect().iter_rows(named=True)}
    assert set(quarantine) == {"i5", "i6"}
    assert "404" in quarantine["i5"]["reason"] and "image" in quarantine["i6"]["reason"]

    versions = features.tables(lake=lake).select("table", "version")
    server.requests.clear()
    again = crawl(lake=lake, config=config)
    assert again.requested == 2 and sorted(server.requests) == ["/missing.png", "/page.html"]  # failures retried
    assert features.tables(lake=lake).select("table", "version").equals(versions)  # same outcome: nothing written

    (tmp_path / "www" / "missing.png").write_bytes((tmp_path / "www" / "b.jpg").read_bytes())
    fixed = crawl(lake=lake, config=config)
    assert fixed.stored == 1
    sha = features.read("items", lake=lake).filter(pl.col("item_id") == "i5").collect()["poster_sha256"].item()
    assert sha == items["i2"]["poster_sha256"]
    remaining = features.read("quarantine", lake=lake).collect()["record_key"].to_list()
    assert remaining == ["i6"]  # the fixed item leaves quarantine


def test_refresh_uses_conditional_requests(server: _Server, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    _items(lake, {"i1": {"poster": f"{server.base}/a.png"}})
    config = CrawlConfig(allow_hosts=("127.0.0.1",))
    crawl(lake=lake, config=config)
    fetch = features.read("poster_fetches", lake=lake).collect().row(0, named=True)
    assert fetch["status"] == "ok" and fetch["last_modified"]
    assert crawl(lake=lake, config=config).requested == 0
    refreshed = crawl(lake=lake, config=config, refresh=True)
    assert (refreshed.requested, refreshed.not_modified, refreshed.stored) == (1, 1, 0)


def test_default_policy_refuses_loopback(server: _Server, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    _items(lake, {"i1": {"poster": f"{server.base}/a.png"}})
    summary = crawl(lake=lake, config=CrawlConfig())
    assert summary.failed == 1 and server.requests == []
    reason = features.read("quarantine", lake=lake).collect()["reason"].item()
    assert "loopback" in reason
    fetches = features.read("poster_fetches", lake=lake).collect()
    assert json.loads(json.dumps(fetches["status"].to_list())) == ["failed"]


def test_plot_pages_are_capped_at_max_text_bytes(server: _Server, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    _items(lake, {"i1": {"plot": f"{server.base}/plot.txt"}, "i2": {"poster": f"{server.base}/a.png"}})
    config = CrawlConfig(allow_hosts=("127.0.0.1",), max_text_bytes=10)  # the poster cap stays at 10 MiB
    summary = crawl(lake=lake, config=config)
    assert (summary.stored, summary.failed) == (1, 1)
    reason = features.read("quarantine", lake=lake).collect().row(0, named=True)
    assert reason["record_key"] == "i1" and reason["reason"].startswith("too large")


def test_a_crawl_killed_half_way_keeps_its_chunks_and_the_rerun_fetches_only_the_rest(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.crawl.stage as stage

    lake, base = tmp_path / "lake", server.base
    _items(
        lake,
        {"i1": {"poster": f"{base}/a.png"}, "i2": {"poster": f"{base}/b.jpg"}, "i3": {"poster": f"{base}/shared.png"}},
    )
    config = CrawlConfig(allow_hosts=("127.0.0.1",))
    real_write, calls = stage._Writer.write, []

    def dies_on_the_second_chunk(self: stage._Writer, *args: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process is stopped while chunk 2 is being stored
        real_write(self, *args)

    monkeypatch.setattr(stage._Writer, "write", dies_on_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        crawl(lake=lake, config=config, chunk_size=1)
    assert features.read("poster_fetches", lake=lake).collect()["url"].to_list() == [f"{base}/a.png"]

    monkeypatch.setattr(stage._Writer, "write", real_write)
    server.requests.clear()
    rerun = crawl(lake=lake, config=config, chunk_size=1)
    assert (rerun.already_stored, rerun.requested, rerun.stored) == (1, 2, 2)
    assert sorted(server.requests) == ["/b.jpg", "/shared.png"]
    fetches = features.read("poster_fetches", lake=lake).collect()
    assert fetches.height == 3 and fetches["url"].n_unique() == 3  # nothing duplicated
    assert features.read("items", lake=lake).collect()["poster_sha256"].is_not_null().all()


def test_urls_with_credentials_are_refused_and_stored_without_them(server: _Server, tmp_path: Path) -> None:
    lake, port = tmp_path / "lake", server.base.rsplit(":", 1)[1]
    password = "pw-crawl-5e3b9f0c7d21"
    _items(
        lake,
        {
            "i1": {"poster": f"http://alice:{password}@127.0.0.1:{port}/a.png"},
            "i2": {"poster": f"http://bob:{password}2@127.0.0.1:{port}/a.png"},  # the same URL once redacted
            "i3": {"plot": f"http://{password}@127.0.0.1:{port}/plot.txt"},
        },
    )
    summary = crawl(lake=lake, config=CrawlConfig(allow_hosts=("127.0.0.1",), retry=RetryBackoff(retries=0)))
    assert (summary.stored, summary.failed) == (0, 3) and server.requests == []  # nothing sent
    fetches = features.read("poster_fetches", lake=lake).collect()
    assert sorted(fetches["url"]) == [f"http://***@127.0.0.1:{port}/a.png", f"http://***@127.0.0.1:{port}/plot.txt"]
    quarantine = features.read("quarantine", lake=lake).collect()
    assert quarantine.height == 3 and all(r.startswith("credentials in URL") for r in quarantine["reason"])
    assert all(e.startswith("http://***@127.0.0.1") for e in quarantine["excerpt"])
    for table in ("poster_fetches", "quarantine", "pipeline_runs"):
        assert password not in str(features.read(table, missing="empty", lake=lake).collect().rows())
    for path in (lake / "poster_fetches").rglob("*"):
        assert not path.is_file() or password.encode() not in path.read_bytes()
    for path in (lake / "quarantine").rglob("*"):
        assert not path.is_file() or password.encode() not in path.read_bytes()
