"""Retry waits: full-jitter backoff stays in bounds, Retry-After is read and capped."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from tasks.backoff import RetryBackoff, backoff_delay, parse_retry_after, retry_delay


def test_full_jitter_backoff_is_bounded() -> None:
    policy = RetryBackoff(backoff_base_s=0.5, backoff_max_s=10.0)
    rng = random.Random(7)
    for attempt in range(70):
        ceiling = min(10.0, 0.5 * 2**attempt)
        delays = [backoff_delay(attempt, policy=policy, rng=rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.5 * ceiling  # jitter spreads over the whole range, not a fixed step


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1", 1.0),
        (" 120 ", 120.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: retry now
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == seconds


def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    policy = RetryBackoff(backoff_base_s=100.0, backoff_max_s=100.0, retry_after_max_s=30.0)
    assert retry_delay(0, retry_after="2", policy=policy) == 2.0
    assert retry_delay(0, retry_after="3600", policy=policy) == 30.0
    assert 0.0 <= retry_delay(3, retry_after=None, policy=policy) <= 100.0
