"""Secrets never stored: a hostile OpenAI-compatible server on 127.0.0.1 echoes the request headers (the
``Authorization: Bearer <key>`` line) in a 401 body, a 500 body, a 200 HTML page and a 200 completion; the
summarize stage runs through the nightly runner against it, and the key must be in no log record, no exception,
no lake file and nothing the Prefect server stored (logs, flow / task run states, parameters, events, its
database file). A base URL with ``user:password@`` is refused before anything runs, the password shown nowhere.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import features
from flows.nightly import run_one
from tasks.stages import RetryPolicy
from tasks.summarize.backends import factory
from tasks.summarize.backends.openai import OpenAIBackend, OpenAIConfig

from .conftest import write_items

KEY_ENV = "MMCRS_TEST_HOSTILE_KEY"
PAD_TO_CUT = 200  # the backend quotes this much of a body: the key is placed across the cut


class _Hostile(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.mode = mode
        self.seen_auth: set[str] = set()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with its own headers, in the shape the server's mode says."""

    server: _Hostile

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, content_type: str, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        auth = self.headers.get("Authorization", "")
        self.server.seen_auth.add(auth)
        echoed = "".join(f"{k}: {v}\n" for k, v in self.headers.items())
        mode = self.server.mode
        if mode == "401":  # the key straddles the 200-character cut of the error message
            lead = "x" * (PAD_TO_CUT - len("HTTP 401: ") - len("Authorization: Bearer ") - 6)
            self._send(401, "text/plain", f"{lead}Authorization: {auth}\n{echoed}")
        elif mode == "500":
            self._send(500, "application/json", json.dumps({"error": "boom", "request_headers": echoed}))
        elif mode == "html200":
            self._send(200, "text/html", f"<html><body><pre>{echoed}</pre></body></html>")
        else:  # a completion that repeats the key: generated text is not trusted either
            content = f"This movie is fine. By the way, you sent {auth} and {echoed}"
            answer = {"choices": [{"message": {"content": content}, "finish_reason": "stop"}], "usage": {}}
            self._send(200, "application/json", json.dumps(answer))


@pytest.fixture
def hostile() -> Iterator[_Hostile]:
    srv = _Hostile("401")
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = f"sk-hostile-{secrets.token_hex(16)}"
    monkeypatch.setenv(KEY_ENV, key)
    factory.create_backend.cache_clear()  # a backend reads its key when built
    monkeypatch.setattr(RetryPolicy, "delays", lambda self: [0.0] * self.retries)  # stage retries: no waits
    monkeypatch.setattr("tasks.summarize.backends.openai.retry_delay", lambda *a, **k: 0.0)  # backend retries
    return key


@dataclass
class _Captured:
    """Every log record of this process, at any level, including the exceptions' tracebacks."""

    records: list[logging.LogRecord]

    def texts(self) -> list[str]:
        formatter = logging.Formatter()
        return [formatter.format(r) for r in self.records]


@pytest.fixture
def captured() -> Iterator[_Captured]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, targets = Keep(logging.DEBUG), [logging.getLogger(), logging.getLogger("prefect")]
    levels = [t.level for t in targets]
    for target in targets:
        target.addHandler(handler)
        target.setLevel(logging.DEBUG)
    yield _Captured(records)
    for target, level in zip(targets, levels, strict=True):
        target.removeHandler(handler)
        target.setLevel(level)


def _leaks(secret: str, text: str, *, piece: int = 10) -> list[str]:
    """The pieces (``piece`` characters or more) of ``secret`` found in ``text``: a cut key is a leak too."""
    return sorted({secret[i : i + piece] for i in range(len(secret) - piece + 1) if secret[i : i + piece] in text})


def _lake_texts(lake: str) -> dict[str, str]:
    """Every file under the lake (``_delta_log`` included) as text, plus every table's rows as text."""
    texts = {str(p): p.read_bytes().decode("latin-1") for p in Path(lake).rglob("*") if p.is_file()}
    for table in features.TABLES:
        frame = features.read(table, missing="empty", lake=lake).collect()
        texts[f"table {table}"] = str(frame.rows())
    return texts


def _events(client: Any, *, wait_s: float = 30.0) -> list[Any]:
    """Every event the server stored, once the final state event of each finished flow run is among them (the
    server persists events in batches, a moment after the client sent them)."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=10, at_exit=False)
    finished = {
        (f"prefect.flow-run.{run.id}", f"prefect.flow-run.{run.state.name}")
        for run in client.read_flow_runs(limit=200)
        if run.state is not None and run.state.is_final()
    }
    deadline = time.monotonic() + wait_s
    while True:
        page, events = client.read_events(limit=50), []
        while page is not None:
            events += page.events
            page = client.read_events_page(page.next_page) if page.next_page else None
        if finished <= {(e.resource.id, e.event) for e in events} or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def _prefect_texts() -> dict[str, str]:
    """What the harness's Prefect server stored: logs, flow / task runs (parameters, every state's message and
    data), artifacts, events, and the raw bytes of its SQLite database (and write-ahead log)."""
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    APILogWorker.drain_all(timeout=10, at_exit=False)  # the logs still queued reach the server
    texts: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        logs, offset = [], 0
        while page := client.read_logs(limit=200, offset=offset):
            logs += page
            offset += len(page)
        texts["logs"] = "\n".join(f"{log.name} {log.message}" for log in logs)
        for run in client.read_flow_runs(limit=200):
            states = client.read_flow_run_states(run.id)
            texts[f"flow run {run.name}"] = run.model_dump_json() + "".join(s.model_dump_json() for s in states)
        for task_run in client.read_task_runs(limit=200):
            states = client.read_task_run_states(task_run.id)
            texts[f"task run {task_run.name}"] = task_run.model_dump_json() + "".join(
                s.model_dump_json() for s in states
            )
        texts["artifacts"] = "".join(a.model_dump_json() for a in client.read_artifacts(limit=200))
        events = _events(client)
        texts["events"] = "".join(e.model_dump_json() for e in events)
        assert logs and events and any(k.startswith("flow run") for k in texts)  # the checks read something
    database = Path(PREFECT_SERVER_DATABASE_CONNECTION_URL.value().split("///", 1)[1])
    for path in database.parent.glob(database.name + "*"):  # the .db and its -wal / -shm files
        texts[str(path)] = path.read_bytes().decode("latin-1")
    return texts


def _assert_nowhere(secret: str, *, lake: str, captured: _Captured, extra: list[str]) -> None:
    places = {"captured log": "\n".join(captured.texts()), **{f"text {i}": t for i, t in enumerate(extra)}}
    places |= _lake_texts(lake) | _prefect_texts()
    found = {where: _leaks(secret, text) for where, text in places.items()}
    assert {where: pieces for where, pieces in found.items() if pieces} == {}


def _settings(base: str, **extra: object) -> dict[str, object]:
    return {
        "what": "items",
        "backend": "openai",
        "base_url": f"{base}/v1",
        "model": "hostile",
        "api_key_env": KEY_ENV,
        **extra,
    }


@dataclass
class _Scene:
    """A lake with two items, the hostile server, the key in the environment, and everything printed or logged."""

    hostile: _Hostile
    key: str
    lake: str
    captured: _Captured
    capfd: pytest.CaptureFixture[str]

    def assert_nowhere(self, secret: str, *extra: str) -> None:
        """``secret`` (or a 10-character piece of it) is in no log, output, lake file or Prefect record."""
        out, err = self.capfd.readouterr()
        _assert_nowhere(secret, lake=self.lake, captured=self.captured, extra=[*extra, out, err])


@pytest.fixture
def scene(
    hostile: _Hostile,
    api_key: str,
    captured: _Captured,
    tmp_path: Path,
    prefect_harness: None,
    capfd: pytest.CaptureFixture[str],
) -> _Scene:
    lake = str(tmp_path / "lake")
    write_items(lake, ["1", "2"])
    return _Scene(hostile, api_key, lake, captured, capfd)


@pytest.mark.parametrize("mode", ["401", "500", "html200"])
def test_a_server_echoing_the_key_in_its_errors_stores_it_nowhere(mode: str, scene: _Scene) -> None:
    scene.hostile.mode = mode
    with pytest.raises(Exception) as failure:
        run_one("summarize", _settings(scene.hostile.base), lake=scene.lake)
    assert scene.hostile.seen_auth == {f"Bearer {scene.key}"}  # the key was sent, and echoed
    message = str(failure.value)
    assert (f"HTTP {mode}" if mode != "html200" else "unreadable completion") in message
    assert "***" in message if mode in ("401", "html200") else "gave up" in message
    failed = features.read("pipeline_runs", lake=scene.lake).collect().row(-1, named=True)
    assert failed["status"] == "failed"
    chain = [message, repr(failure.value), str(failure.value.__cause__), str(failure.value.__context__)]
    scene.assert_nowhere(scene.key, *chain, str(failure.getrepr()))


def test_a_completion_repeating_the_key_is_stored_redacted(scene: _Scene) -> None:
    scene.hostile.mode = "completion"
    record = run_one("summarize", _settings(scene.hostile.base), lake=scene.lake)
    assert record.status == "ok"
    summaries = features.read("item_summaries", lake=scene.lake).collect()
    assert summaries.height == 2 and all("Bearer ***" in s for s in summaries["summary"])
    scene.assert_nowhere(scene.key)


def test_a_base_url_with_a_password_is_refused_and_the_password_shown_nowhere(scene: _Scene) -> None:
    scene.hostile.mode = "completion"
    password = f"pw-{secrets.token_hex(16)}"
    base = scene.hostile.base.replace("http://", f"http://alice:{password}@")
    with pytest.raises(ValueError, match="credentials") as refused:
        run_one("summarize", _settings(base), lake=scene.lake)
    assert "http://***@127.0.0.1" in str(refused.value)
    assert scene.hostile.seen_auth == set()  # refused before any request
    with pytest.raises(ValueError, match="api_key_env") as direct:
        OpenAIConfig(base_url=f"{base}/v1")
    scene.assert_nowhere(password, str(refused.value), str(direct.value), str(refused.getrepr()))


def test_model_id_never_carries_userinfo() -> None:
    config = OpenAIConfig(base_url="http://127.0.0.1:9/v1", model="m")
    object.__setattr__(config, "base_url", "http://bob:hunter2-secret@127.0.0.1:9/v1")  # past the check
    backend = OpenAIBackend(config)
    assert backend.model_id == "openai:m@127.0.0.1:9"
    assert "hunter2" not in repr(backend)
