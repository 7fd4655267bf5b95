"""Plot text from a fetched plot page: plain text, the visible text of HTML, or one field of a JSON object.

The content type decides the parser; nothing is guessed from the bytes, so a page served with a type
we do not read becomes a precise reason instead of garbage text in the ``items`` table.
"""

from __future__ import annotations

import codecs
import contextlib
import json
from dataclasses import dataclass
from html.parser import HTMLParser

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_JSON_TYPES = frozenset({"application/json", "text/json"})
_HIDDEN_TAGS = frozenset({"script", "style", "noscript", "head", "template", "svg"})
# Tags that separate words visually: "<p>a</p><p>b</p>" reads "a b", not "ab".
_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    }
)


@dataclass(frozen=True)
class TextResult:
    """Extracted text, or the reason there is none (exactly one of the two is set)."""

    text: str | None
    reason: str | None = None


class _VisibleText(HTMLParser):
    """Collects the text a browser would show: no scripts, styles, ``<head>`` or ``<noscript>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden: list[str] = []  # open hidden elements, innermost last

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and "head" in self._hidden:  # an unclosed <head> ends where <body> starts
            self._hidden = [t for t in self._hidden if t != "head"]
        if tag in _HIDDEN_TAGS:
            self._hidden.append(tag)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._hidden:
            while self._hidden and self._hidden.pop() != tag:
                pass
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def _parse_content_type(content_type: str | None) -> tuple[str, str | None]:
    """(media type in lower case, charset or None) of a ``Content-Type`` header."""
    if not content_type:
        return "", None
    media, *params = content_type.split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media.strip().lower(), charset


def _decode(body: bytes, charset: str | None) -> str:
    """Bytes to text by the declared charset; UTF-8 (BOM tolerated) when absent or unknown."""
    encoding = "utf-8-sig"
    if charset:
        with contextlib.suppress(LookupError):  # an unknown charset falls back to UTF-8
            encoding = codecs.lookup(charset).name
    if encoding == "utf-8":
        encoding = "utf-8-sig"
    return body.decode(encoding, errors="replace")


def _html_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    return " ".join("".join(parser.parts).split())


def _json_field(body: bytes, field: str) -> TextResult:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return TextResult(None, f"invalid JSON: {exc}")
    if not isinstance(document, dict):
        return TextResult(None, f"JSON is not an object: {type(document).__name__}")
    if field not in document:
        return TextResult(None, f"JSON field {field!r} missing")
    value = document[field]
    if not isinstance(value, str):
        return TextResult(None, f"JSON field {field!r} is not a string: {type(value).__name__}")
    return TextResult(value.strip())


def extract_text(body: bytes, *, content_type: str | None, json_field: str) -> TextResult:
    """The plot text of a fetched page.

    Args:
        body: the page's bytes.
        content_type: its ``Content-Type`` header (charset honoured for text and HTML).
        json_field: the field of a JSON object that holds the text (``CrawlConfig.plot_json_field``).

    Returns:
        ``TextResult(text)`` or ``TextResult(None, reason)``, e.g. ``"unsupported content type: image/png"``,
        ``"JSON field 'plot' missing"``, ``"empty text"``.

    Example:
        >>> extract_text(b"<p>A <b>heist</b></p><script>x()</script>", content_type="text/html", json_field="plot")
        TextResult(text='A heist', reason=None)
    """
    media, charset = _parse_content_type(content_type)
    if media == "text/plain":
        result = TextResult(_decode(body, charset).strip())
    elif media in _HTML_TYPES:
        result = TextResult(_html_text(_decode(body, charset)))
    elif media in _JSON_TYPES or media.endswith("+json"):
        result = _json_field(body, json_field)
    else:
        return TextResult(None, f"unsupported content type: {media or '(none)'}")
    if result.text == "":
        return TextResult(None, "empty text")
    return result
