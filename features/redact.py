"""Secrets out of text: one rule for every message, exception, log line and stored field.

Two kinds of secret reach the pipeline's text: values it knows (an API key it sends) and credentials written into
a URL (``http://user:password@host/``). ``redact`` masks both; ``strip_userinfo`` removes a URL's credentials
before the URL becomes an id or a stored field. Redact before truncating: a cut can split a secret so that its
prefix no longer matches.

Example:
    >>> redact("401: echoed 'Bearer sk-123' from http://me:pw@h/v1", ["sk-123"])
    "401: echoed 'Bearer ***' from http://***@h/v1"
    >>> strip_userinfo("http://me:pw@h:8000/v1")
    'http://h:8000/v1'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, urlsplit, urlunsplit

MASK = "***"
# scheme://userinfo@ — the userinfo runs to the last '@' before the path, query, fragment or a blank.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s@]*(?:@[^/?#\s@]*)*)@")


def _forms(secret: str) -> set[str]:
    """The ways a secret shows up in text: as is, percent-encoded, JSON-escaped."""
    return {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]} - {""}


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every known secret (as is, percent-encoded or JSON-escaped) and every URL's userinfo
    replaced by ``***``.

    Args:
        text: a message, an exception's text, a server's answer.
        secrets: values that must never be shown (None and empty values are ignored).
    """
    forms = sorted({f for s in secrets if s for f in _forms(s)}, key=len, reverse=True)  # longest first
    for form in forms:
        text = text.replace(form, MASK)
    return redact_urls(text)


def redact_urls(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***`` (``http://***@host/``)."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)


def has_userinfo(url: str) -> bool:
    """True when ``url`` carries a user name or password (``scheme://user:password@host``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return bool(_USERINFO.search(url))
    return "@" in parts.netloc or bool(_USERINFO.search(url))


def strip_userinfo(url: str) -> str:
    """``url`` without its user name and password (a URL that cannot be parsed comes back redacted)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_urls(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def urls_with_userinfo(value: object) -> list[str]:
    """Every string inside ``value`` (nested mappings and lists included) that is an HTTP(S) URL with userinfo,
    redacted (object-store URIs such as ``abfss://container@account/`` are not credentials)."""
    if isinstance(value, str):
        web = value.strip().lower().startswith(("http://", "https://"))
        return [redact_urls(value)] if web and has_userinfo(value) else []
    if isinstance(value, Mapping):
        return [u for v in value.values() for u in urls_with_userinfo(v)]
    if isinstance(value, list | tuple | set | frozenset):
        return [u for v in value for u in urls_with_userinfo(v)]
    return []


def refuse_url_credentials(value: object, *, where: str) -> None:
    """Raise ``ValueError`` when ``value`` holds a URL with credentials (the message shows it redacted).

    Settings are stored (flow parameters, ``pipeline_runs``, config files), so they must never carry a secret:
    an API key belongs in an environment variable or a secret store, named by the settings.
    """
    found = urls_with_userinfo(value)
    if found:
        raise ValueError(
            f"{where}: a URL with credentials (user:password@) is not allowed: {', '.join(found)}; "
            "give the credentials through an environment variable or a secret block instead"
        )


__all__ = [
    "MASK",
    "has_userinfo",
    "redact",
    "redact_urls",
    "refuse_url_credentials",
    "strip_userinfo",
    "urls_with_userinfo",
]
