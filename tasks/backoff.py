"""How long a client waits before retrying (the crawler, the LLM endpoint client): exponential backoff with
full jitter, or the server's word.

Full jitter (a uniform wait in ``[0, min(cap, base * 2**attempt)]``) spreads the retries of many
concurrent fetches that failed together, instead of sending them back in lockstep. A ``Retry-After``
header (seconds or an HTTP date) replaces the backoff, capped so a server cannot park the crawl.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol


class BackoffConfig(Protocol):
    """The settings a retrying client needs (``CrawlConfig`` and ``OpenAIConfig`` have them)."""

    @property
    def backoff_base_s(self) -> float: ...

    @property
    def backoff_max_s(self) -> float: ...

    @property
    def retry_after_max_s(self) -> float: ...


def backoff_delay(attempt: int, *, config: BackoffConfig, rng: random.Random | None = None) -> float:
    """The wait after failed attempt number ``attempt`` (0 = the first attempt).

    Args:
        attempt: how many attempts failed before this one, minus one.
        config: ``backoff_base_s`` and ``backoff_max_s``.
        rng: random source (tests pass a seeded one).

    Returns:
        Seconds, uniform in ``[0, min(backoff_max_s, backoff_base_s * 2**attempt)]``.
    """
    ceiling = min(config.backoff_max_s, config.backoff_base_s * 2 ** min(attempt, 62))
    return (rng or random).uniform(0.0, max(ceiling, 0.0))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait, or None when absent or unreadable.

    Args:
        value: the header value: delta-seconds (``"120"``) or an HTTP date.
        now: the current time (tests pin it); defaults to the clock.

    Returns:
        A non-negative number of seconds, or None.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_delay(attempt: int, *, retry_after: str | None, config: BackoffConfig) -> float:
    """The wait before the next attempt: ``Retry-After`` capped at ``retry_after_max_s``, else backoff.

    Args:
        attempt: how many attempts failed before this one, minus one.
        retry_after: the failed response's ``Retry-After`` header, if any.
        config: backoff and cap settings.

    Returns:
        Seconds to sleep.
    """
    asked = parse_retry_after(retry_after)
    if asked is not None:
        return min(asked, config.retry_after_max_s)
    return backoff_delay(attempt, config=config)
