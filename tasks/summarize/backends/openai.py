"""Server backend: any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp server, hosted), via httpx.

Requests run concurrently up to a bound; each is retried with exponential backoff (full jitter) on HTTP 429,
5xx, timeouts and connection errors, honouring a ``Retry-After`` header up to a cap. The API key comes from an
environment variable or a Prefect Secret block; it is held privately and never logged or put in a repr.

Nothing the server says is trusted to be free of secrets: a server may echo the request's ``Authorization``
header in an error body, an HTML page or even a completion. Every message, exception and generated text this
backend produces passes through ``features.redact.redact`` with the key (redacted first, then cut). A base URL
with credentials (``http://user:password@host/v1``) is refused with a clear error: settings are stored (flow
parameters, ``pipeline_runs``, ``model_id`` in the summary tables), so the key must come from ``api_key_env`` or
``api_key_block`` instead.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from features.redact import has_userinfo, redact, redact_urls, strip_userinfo
from tasks.backoff import RetryBackoff, retry_delay
from tasks.summarize.backends import ChatPrompt, Generation

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
BODY_CHARS = 200  # how much of a server's answer an error message quotes (after redaction)


class BackendError(RuntimeError):
    """The endpoint refused a request for good (a 4xx other than 408/409/425/429, or an unreadable answer)."""


class BackendUnavailable(ConnectionError):
    """The endpoint kept failing transiently (429/5xx/timeouts) after every retry."""


@dataclass(frozen=True)
class OpenAIConfig:
    """Where the endpoint is and how hard to push it.

    Attributes:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended).
        model: the model name the server knows.
        api_key_env: environment variable holding the API key (optional for local servers).
        api_key_block: name of a Prefect ``Secret`` block holding the key, used when the variable is unset.
        accepts_images: the endpoint is multimodal: item posters go as image content parts.
        max_concurrency: requests in flight at once.
        timeout_s: deadline of one request attempt.
        retry: retries after a transient failure (HTTP 429, 5xx, a timeout) and the waits between them.
    """

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "default"
    api_key_env: str = "OPENAI_API_KEY"
    api_key_block: str | None = None
    accepts_images: bool = False
    max_concurrency: int = 8
    timeout_s: float = 120.0
    retry: RetryBackoff = field(default_factory=lambda: RetryBackoff(retries=4, backoff_max_s=20.0))

    def __post_init__(self) -> None:
        check_base_url(self.base_url)


def check_base_url(base_url: str) -> None:
    """Refuse a base URL that carries credentials; the message shows it with the credentials masked.

    Raises:
        ValueError: ``base_url`` has a user name or password.
    """
    if has_userinfo(base_url):
        raise ValueError(
            f"base_url {redact_urls(base_url)!r} carries credentials (user:password@), which would be stored with "
            "the settings and the summaries' model_id; remove them and put the API key in the environment "
            "variable named by api_key_env (default OPENAI_API_KEY) or a Prefect Secret block (api_key_block)"
        )


_SECRET_LOADER: list[Callable[[str], str]] = []


def use_secret_loader(loader: Callable[[str], str]) -> None:
    """Where ``api_key_block`` names are looked up (the stage's Prefect face plugs in Prefect Secret blocks)."""
    _SECRET_LOADER[:] = [loader]


def _api_key(config: OpenAIConfig) -> str | None:
    key = os.environ.get(config.api_key_env)
    if key or not config.api_key_block:
        return key or None
    if not _SECRET_LOADER:
        raise ValueError(f"api_key_block {config.api_key_block!r} given, but no secret store is configured")
    return _SECRET_LOADER[0](config.api_key_block)


def _image_part(data: bytes) -> dict[str, Any]:
    mime = "image/png" if data.startswith(b"\x89PNG") else "image/webp" if data[8:12] == b"WEBP" else "image/jpeg"
    url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    return {"type": "image_url", "image_url": {"url": url}}


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible endpoint (see ``OpenAIConfig``)."""

    def __init__(self, config: OpenAIConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.accepts_images = config.accepts_images
        self.model_id = f"openai:{config.model}@{urlsplit(strip_userinfo(config.base_url)).netloc}"
        self.__key = _api_key(config)  # name-mangled: never in repr, logs or artifacts
        self._transport = transport
        self.requests_sent = 0  # attempts, retries included (for logs and tests)

    def __repr__(self) -> str:
        return f"OpenAIBackend(model_id={self.model_id!r})"

    def _redact(self, text: str, limit: int | None = None) -> str:
        """``text`` without the key or any URL credentials, then cut to ``limit`` characters."""
        return redact(text, [self.__key])[:limit]

    def _body(self, prompt: ChatPrompt, *, max_new_tokens: int, temperature: float, seed: int | None) -> dict:
        messages: list[dict[str, Any]] = list(prompt.messages())  # the whole conversation: servers cache prefixes
        if prompt.images and self.accepts_images:
            messages[-1] = {
                "role": "user",
                "content": [{"type": "text", "text": prompt.user}, *(_image_part(i) for i in prompt.images)],
            }
        body: dict[str, Any] = {
            "model": self.config.model,
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "messages": messages,
        }
        if seed is not None:
            body["seed"] = seed
        return body

    async def _post(self, client: httpx.AsyncClient, body: dict, slots: asyncio.Semaphore) -> Generation:
        retry, last = self.config.retry, "no attempt"
        for attempt in range(retry.retries + 1):
            retry_after = None
            async with slots:
                self.requests_sent += 1
                try:
                    response = await client.post("/chat/completions", json=body)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    last = f"{type(exc).__name__}"
                else:
                    if response.status_code == 200:
                        return self._parse(response)
                    if response.status_code not in RETRY_STATUS:
                        body_text = self._redact(response.text, BODY_CHARS)
                        raise BackendError(f"HTTP {response.status_code}: {body_text}")
                    last, retry_after = f"HTTP {response.status_code}", response.headers.get("retry-after")
            if attempt < retry.retries:  # sleep outside the slot, so others may proceed
                await asyncio.sleep(retry_delay(attempt, retry_after=retry_after, policy=retry))
        raise BackendUnavailable(self._redact(f"{self.model_id}: gave up after {retry.retries + 1} attempts ({last})"))

    def _parse(self, response: httpx.Response) -> Generation:
        """The completion in a 200 answer (its text redacted too: a server may echo the key in it)."""
        try:
            payload = response.json()
            choice = payload["choices"][0]
            text = choice["message"].get("content") or ""
            if not isinstance(text, str):
                raise TypeError("content is not a string")
            tokens = int((payload.get("usage") or {}).get("completion_tokens") or 0)
            finished = choice.get("finish_reason") != "length"
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            # from None: the cause's text (e.g. int()'s "invalid literal ...") may quote the answer
            body_text = self._redact(response.text, BODY_CHARS)
            raise BackendError(f"unreadable completion ({type(exc).__name__}): {body_text}") from None
        return Generation(text=self._redact(text).strip(), new_tokens=tokens, finished=finished)

    async def _generate_all(self, bodies: list[dict]) -> list[Generation]:
        headers = {"Authorization": f"Bearer {self.__key}"} if self.__key else {}
        slots = asyncio.Semaphore(self.config.max_concurrency)
        async with httpx.AsyncClient(
            base_url=self.config.base_url.rstrip("/"),
            headers=headers,
            timeout=self.config.timeout_s,
            transport=self._transport,
        ) as client:
            return list(await asyncio.gather(*(self._post(client, b, slots) for b in bodies)))

    def generate(
        self, prompts: list[ChatPrompt], *, max_new_tokens: int, temperature: float = 0.0, seed: int | None = None
    ) -> list[Generation]:
        """Send every prompt (concurrently, bounded); results in the input order."""
        bodies = [self._body(p, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed) for p in prompts]

        def run() -> list[Generation]:
            return asyncio.run(self._generate_all(bodies))

        try:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return run()
            with ThreadPoolExecutor(max_workers=1) as pool:  # called from inside an event loop
                return pool.submit(run).result()
        except (BackendError, BackendUnavailable):
            raise
        except Exception as exc:  # e.g. httpx refusing a header value: its text may quote the key
            raise BackendError(self._redact(f"{type(exc).__name__}: {exc}")) from None
