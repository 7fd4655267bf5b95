"""Plot text extraction: plain text, visible HTML text, a JSON field (in memory and served)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tasks.crawl.config import CrawlConfig
from tasks.crawl.fetch import FetchResult
from tasks.crawl.text import TextResult, extract_text

FetchOne = Callable[..., FetchResult]


def _extract(body: bytes, content_type: str | None, field: str = "plot") -> TextResult:
    return extract_text(body, content_type=content_type, json_field=field)


def test_plain_text_by_charset() -> None:
    assert _extract("Amélie".encode("latin-1"), "text/plain; charset=ISO-8859-1") == TextResult("Amélie")
    assert _extract("Amélie".encode("cp1252"), 'text/plain; charset="windows-1252"') == TextResult("Amélie")


def test_plain_text_falls_back_to_utf8() -> None:
    assert _extract("\ufeff  Amélie \n".encode(), "text/plain") == TextResult("Amélie")  # BOM and spaces go
    assert _extract("Amélie".encode(), "text/plain; charset=no-such-charset") == TextResult("Amélie")
    assert _extract(b"caf\xff", "text/plain").text == "caf\ufffd"  # undecodable bytes never raise


def test_html_visible_text_only() -> None:
    html = (
        b"<!doctype html><html><head><title>T</title><style>p{}</style><script>x()</script></head>"
        b"<body><noscript>no js</noscript><h1>Heat</h1><p>A&nbsp;crew &amp; a <b>detect</b>ive.</p>"
        b"<script type='text/javascript'>if (a < b) {}</script><ul><li>one</li><li>two</li></ul></body></html>"
    )
    assert _extract(html, "text/html; charset=utf-8") == TextResult("Heat A crew & a detective. one two")


def test_html_without_closing_head_still_shows_the_body() -> None:
    assert _extract(b"<head><title>x</title><body><p>Plot here.</p>", "text/html") == TextResult("Plot here.")


def test_json_field() -> None:
    body = b'{"title": "Heat", "plot": "  A detective hunts a thief. "}'
    assert _extract(body, "application/json") == TextResult("A detective hunts a thief.")
    assert _extract(b'{"Plot": "x"}', "application/ld+json", field="Plot") == TextResult("x")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"title": "Heat"}', "JSON field 'plot' missing"),
        (b'{"plot": 42}', "JSON field 'plot' is not a string: int"),
        (b'{"plot": null}', "JSON field 'plot' is not a string: NoneType"),
        (b'["plot"]', "JSON is not an object: list"),
        (b'{"plot": "   "}', "empty text"),
    ],
)
def test_json_refusals(body: bytes, reason: str) -> None:
    assert _extract(body, "application/json") == TextResult(None, reason)


def test_invalid_json() -> None:
    result = _extract(b"{not json", "application/json")
    assert result.text is None and result.reason is not None and result.reason.startswith("invalid JSON: ")
    deep = _extract(b"[" * 100_000 + b"]" * 100_000, "application/json")
    assert deep.text is None and deep.reason is not None and deep.reason.startswith("invalid JSON: ")


@pytest.mark.parametrize(
    ("content_type", "reason"),
    [
        ("image/jpeg", "unsupported content type: image/jpeg"),
        ("application/octet-stream", "unsupported content type: application/octet-stream"),
        (None, "unsupported content type: (none)"),
    ],
)
def test_unsupported_content_types(content_type: str | None, reason: str) -> None:
    assert _extract(b"whatever", content_type) == TextResult(None, reason)


def test_empty_pages() -> None:
    assert _extract(b"   \n", "text/plain") == TextResult(None, "empty text")
    assert _extract(b"<html><head><title>only a title</title></head></html>", "text/html") == TextResult(
        None, "empty text"
    )


@pytest.mark.parametrize(
    ("target", "text"),
    [
        ("/plot.txt", "Neil McCauley plans one last heist."),
        ("/plot-latin1.txt", "Amélie changes lives."),
        ("/plot.html", "Heat A crew of professional thieves&a detective."),
        ("/plot.json", "A detective hunts a thief."),
    ],
)
def test_served_plot_pages(server: Any, fetch_one: FetchOne, config: CrawlConfig, target: str, text: str) -> None:
    result = fetch_one(server.url(target), max_bytes=config.max_text_bytes)
    assert result.ok and result.body is not None
    assert extract_text(result.body, content_type=result.content_type, json_field=config.plot_json_field) == (
        TextResult(text)
    )


def test_served_json_without_the_field(server: Any, fetch_one: FetchOne, config: CrawlConfig) -> None:
    result = fetch_one(server.url("/plot-nofield.json"))
    assert result.ok and result.body is not None
    extracted = extract_text(result.body, content_type=result.content_type, json_field=config.plot_json_field)
    assert extracted == TextResult(None, "JSON field 'plot' missing")
