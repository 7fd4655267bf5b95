"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1: retries on 429/5xx/timeouts with
backoff, bounded concurrency, the API key sent but never shown, image content parts."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tasks.backoff import RetryBackoff
from tasks.summarize.backends import ChatPrompt
from tasks.summarize.backends.openai import BackendError, BackendUnavailable, OpenAIBackend, OpenAIConfig


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: Counter[str] = Counter()
        self.bodies: list[dict] = []
        self.auth: set[str] = set()
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _answer(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        with srv.lock:
            srv.bodies.append(body)
            srv.auth.add(self.headers.get("Authorization", ""))
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            self._route(body)
        finally:
            with srv.lock:
                srv.in_flight -= 1

    def _route(self, body: dict) -> None:
        content = body["messages"][-1]["content"]
        text = content if isinstance(content, str) else content[0]["text"]
        kind, _, arg = text.partition(":")
        with self.server.lock:
            self.server.hits[text] += 1
            hit = self.server.hits[text]
        if self.path != "/v1/chat/completions":
            return self._answer(404, {"error": "no route"})
        if kind == "429" and hit <= int(arg):
            return self._answer(429, {"error": "slow down"}, {"Retry-After": "0"})
        if kind == "503" and hit <= int(arg):
            return self._answer(503, {"error": "busy"})
        if kind == "hang" and hit <= int(arg):
            time.sleep(1.0)
        if kind == "400":
            return self._answer(400, {"error": "bad request"})
        if kind == "hold":
            time.sleep(0.1)
        finish = "length" if kind == "long" else "stop"
        self._answer(
            200,
            {
                "choices": [{"message": {"role": "assistant", "content": f" echo {text} "}, "finish_reason": finish}],
                "usage": {"completion_tokens": 3},
            },
        )


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _backend(srv: _Server, *, retries: int = 4, **options: object) -> OpenAIBackend:
    config = OpenAIConfig(
        base_url=f"http://127.0.0.1:{srv.server_address[1]}/v1",
        model="m",
        timeout_s=5.0,
        retry=RetryBackoff(retries=retries, backoff_base_s=0.01, backoff_max_s=0.05),
        **options,
    )  # type: ignore[arg-type]
    return OpenAIBackend(config)


def _ask(backend: OpenAIBackend, *texts: str, images: tuple[bytes, ...] = ()) -> list:
    return backend.generate([ChatPrompt("sys", t, images) for t in texts], max_new_tokens=8)


def test_answers_in_order_with_finish_reason(server: _Server) -> None:
    out = _ask(_backend(server), "ok:1", "long:2")
    assert [g.text for g in out] == ["echo ok:1", "echo long:2"]
    assert [g.finished for g in out] == [True, False] and out[0].new_tokens == 3
    assert server.bodies[0]["max_tokens"] == 8 and server.bodies[0]["model"] == "m"


def test_retries_429_and_5xx_then_succeeds(server: _Server) -> None:
    backend = _backend(server, retries=3)
    out = _ask(backend, "429:2", "503:1")
    assert [g.text for g in out] == ["echo 429:2", "echo 503:1"]
    assert server.hits["429:2"] == 3 and server.hits["503:1"] == 2 and backend.requests_sent == 5


def test_timeouts_are_retried(server: _Server) -> None:
    backend = _backend(server, retries=2)
    backend = OpenAIBackend(OpenAIConfig(**{**backend.config.__dict__, "timeout_s": 0.3}))
    assert _ask(backend, "hang:1")[0].text == "echo hang:1"
    assert server.hits["hang:1"] == 2


def test_gives_up_after_the_retries_and_refuses_bad_requests(server: _Server) -> None:
    with pytest.raises(BackendUnavailable, match="3 attempts"):
        _ask(_backend(server, retries=2), "503:99")
    assert server.hits["503:99"] == 3
    with pytest.raises(BackendError, match="HTTP 400"):
        _ask(_backend(server), "400")
    assert server.hits["400"] == 1  # a client error is not retried


def test_concurrency_is_bounded(server: _Server) -> None:
    _ask(_backend(server, max_concurrency=3), *(f"hold:{i}" for i in range(12)))
    assert 1 < server.max_in_flight <= 3


def test_api_key_from_the_environment_is_sent_but_never_shown(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCRS_TEST_KEY", "sk-very-secret")
    backend = _backend(server, api_key_env="MMCRS_TEST_KEY")
    _ask(backend, "ok:key")
    assert server.auth == {"Bearer sk-very-secret"}
    assert "sk-very-secret" not in repr(backend) and "sk-very-secret" not in str(vars(backend).get("config"))


def test_images_go_as_content_parts_only_to_a_multimodal_endpoint(server: _Server) -> None:
    png = b"\x89PNG\r\n\x1a\nrest"
    _ask(_backend(server), "ok:text-only", images=(png,))
    _ask(_backend(server, accepts_images=True), "ok:with-image", images=(png,))
    plain, multimodal = server.bodies[0]["messages"][1]["content"], server.bodies[1]["messages"][1]["content"]
    assert plain == "ok:text-only"
    assert multimodal[0] == {"type": "text", "text": "ok:with-image"}
    assert multimodal[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_a_conversation_is_sent_whole_and_cache_hints_stay_local(server: _Server) -> None:
    prompt = ChatPrompt(
        "sys",
        "ok:third",
        history=(("first", "answer one"), ("second", "answer two")),
        cache_from="d1|a",
        cache_as="d1|b",
    )
    [answer] = _backend(server).generate([prompt], max_new_tokens=8)
    assert answer.finished
    [body] = server.bodies
    assert body["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer one"},
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": "answer two"},
        {"role": "user", "content": "ok:third"},
    ]
    assert "d1|a" not in json.dumps(body) and "d1|b" not in json.dumps(body)
