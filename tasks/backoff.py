"""How often a client retries and how long it waits in between (the crawler, the LLM endpoint client):
exponential backoff with full jitter, or the server's word.

Full jitter (a uniform wait in ``[0, min(cap, base * 2**attempt)]``) spreads the retries of many
concurrent fetches that failed together, instead of sending them back in lockstep. A ``Retry-After``
header (seconds or an HTTP date) replaces the backoff, capped so a server cannot park the crawl.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryBackoff:
    """How a client retries transient failures (timeouts, connection errors, HTTP 429 and 5xx).

    Attributes:
        retries: extra attempts after a transient failure.
        backoff_base_s: first backoff step; attempt ``n`` waits a random time in
            ``[0, min(backoff_max_s, backoff_base_s * 2**n)]`` ("full jitter").
        backoff_max_s: upper bound of one backoff wait.
        retry_after_max_s: a server's ``Retry-After`` is honoured up to this many seconds.
    """

    retries: int = 3
    backoff_base_s: float = 0.5
    backoff_max_s: float = 10.0
    retry_after_max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must not be negative")


def backoff_delay(attempt: int, *, policy: RetryBackoff, rng: random.Random | None = None) -> float:
    """The wait after failed attempt number ``attempt`` (0 = the first attempt).

    Args:
        attempt: how many attempts failed before this one, minus one.
        policy: ``backoff_base_s`` and ``backoff_max_s``.
        rng: random source (tests pass a seeded one).

    Returns:
        Seconds, uniform in ``[0, min(backoff_max_s, backoff_base_s * 2**attempt)]``.
    """
    ceiling = min(policy.backoff_max_s, policy.backoff_base_s * 2 ** min(attempt, 62))
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


def retry_delay(attempt: int, *, retry_after: str | None, policy: RetryBackoff) -> float:
    """The wait before the next attempt: ``Retry-After`` capped at ``retry_after_max_s``, else backoff.

    Args:
        attempt: how many attempts failed before this one, minus one.
        retry_after: the failed response's ``Retry-After`` header, if any.
        policy: backoff and cap settings.

    Returns:
        Seconds to sleep.
    """
    asked = parse_retry_after(retry_after)
    if asked is not None:
        return min(asked, policy.retry_after_max_s)
    return backoff_delay(attempt, policy=policy)
