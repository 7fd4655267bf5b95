"""The server backend against a real OpenAI-compatible server: llama.cpp's, serving the SmolLM2 GGUF on
127.0.0.1 (``make test-llm-server`` installs ``llama-cpp-python[server]`` and runs these)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

import features
from tasks.summarize.backends import ChatPrompt
from tasks.summarize.backends.factory import SMOLLM2
from tasks.summarize.backends.openai import OpenAIBackend, OpenAIConfig
from tasks.summarize.preferences import summarize_preferences
from tasks.summarize.stage import SummarizeConfig

pytestmark = pytest.mark.llm_server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(SMOLLM2.path()),
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--verbose",
        "false",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            pytest.fail("llama.cpp server did not come up in 120 s")
        yield base_url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_chat_completions_from_llama_cpp(llama_server: str) -> None:
    backend = OpenAIBackend(OpenAIConfig(base_url=llama_server, model="smollm2", max_concurrency=2))
    out = backend.generate(
        [
            ChatPrompt("You are a helpful assistant.", "Describe the movie Toy Story in one sentence."),
            ChatPrompt("You are a helpful assistant.", "Name a funny movie."),
        ],
        max_new_tokens=40,
    )
    assert len(out) == 2 and all(g.text and g.new_tokens > 0 for g in out)
    short = backend.generate([ChatPrompt("You are a helpful assistant.", "Tell me a long story.")], max_new_tokens=5)
    assert short[0].finished is False  # finish_reason "length"


def test_preference_summaries_through_the_server(
    llama_server: str, lake: str, dialogue_writer: Callable[..., None]
) -> None:
    dialogue_writer(
        "d1",
        [
            ("seeker", "Hi! I love funny movies like @a and @b.", ["a", "b"]),
            ("recommender", "Have you seen @c? It is a great comedy.", ["c"]),
        ],
        {"a": True, "b": True},
    )
    backend = OpenAIBackend(OpenAIConfig(base_url=llama_server, model="smollm2"))
    summary = summarize_preferences(backend=backend, lake=lake, config=SummarizeConfig(max_new_tokens=64))
    assert summary.candidates == 1 and summary.written + summary.quarantined == 1
    again = summarize_preferences(backend=backend, lake=lake, config=SummarizeConfig(max_new_tokens=64))
    assert again.generated == 0
    if summary.written:
        assert features.read("preference_summaries", lake=lake).collect()["model_id"].item() == backend.model_id
