"""The one writer of the ``quarantine`` table: every input a stage rejects, with its reason and an excerpt.

Rows are keyed on ``(source, record_key)`` and upserted. A ``record_key`` names the record by content, so no
two rejected records share one: the ingest readers use ``<file name>@<sha256 prefix>#L<line>``, so two files
of the same name never overwrite each other's rows, and a record repeated in one file is one row per line.
A record rejected again for the same reason commits nothing (``quarantined_at`` and ``flow_run_id`` are audit
columns), and a record rejected for a new reason is updated in place. ``stage`` and ``flow_run_id`` come from
the commit; excerpts are cut to ``EXCERPT_CHARS`` characters.

Example:
    >>> import features
    >>> commit = features.CommitInfo(stage="crawl", flow_run_id="run-1")
    >>> features.quarantine(
    ...     [features.QuarantineRecord("crawl:poster", "tt0113277", "http 404", "https://example.org/heat.jpg")],
    ...     commit=commit,
    ...     lake="/tmp/lake",
    ... )  # doctest: +SKIP
    WriteResult(table='quarantine', version=0, committed=True, inserted=1, updated=0, unchanged=0, deleted=0)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from features.catalog import spec_for
from features.commits import CommitInfo
from features.lake import Lake
from features.redact import redact_urls
from features.write import WriteResult, upsert

TABLE = "quarantine"
EXCERPT_CHARS = 200


@dataclass(frozen=True)
class QuarantineRecord:
    """One rejected input.

    Attributes:
        source: where the record came from, namespaced by stage (``"catalog:imdb"``, ``"crawl:poster"``).
        record_key: the record's id within ``source`` (a row number, an item id, a summary key).
        reason: why it was rejected; the text before the first ``:`` is its category in reports.
        excerpt: what the record looked like (cut to ``EXCERPT_CHARS``), None when there is nothing to show.
    """

    source: str
    record_key: str
    reason: str
    excerpt: str | None = None


def _frame(records: list[QuarantineRecord], commit: CommitInfo, at: datetime) -> pl.DataFrame:
    rows = [
        {
            "source": r.source,
            "record_key": r.record_key,
            "stage": commit.stage,
            "reason": redact_urls(r.reason),  # a user:password@ in a rejected record is never stored
            "excerpt": None if r.excerpt is None else redact_urls(r.excerpt)[:EXCERPT_CHARS],
            "flow_run_id": commit.flow_run_id,
            "quarantined_at": at,
        }
        for r in records
    ]
    schema = pl.DataFrame(spec_for(TABLE).schema.empty_table()).schema
    return pl.DataFrame(rows, schema=schema)


def quarantine(
    records: Iterable[QuarantineRecord],
    *,
    commit: CommitInfo,
    lake: Lake | str | None = None,
    at: datetime | None = None,
) -> WriteResult | None:
    """Upsert rejected records into ``quarantine`` in one commit.

    Args:
        records: the rejected inputs; when a ``(source, record_key)`` repeats, the last one wins.
        commit: the writing stage's commit metadata; its ``stage`` and ``flow_run_id`` fill those columns.
        lake: lake root (see ``features.resolve_lake``).
        at: ``quarantined_at`` of every row (default: now, UTC).

    Returns:
        The ``WriteResult`` (``committed`` False when every row was already there), or None when ``records``
        is empty (nothing is written).
    """
    rejected = list(records)
    if not rejected:
        return None
    frame = _frame(rejected, commit, at or datetime.now(UTC))
    unique = frame.unique(list(spec_for(TABLE).keys), keep="last", maintain_order=True)
    return upsert(TABLE, unique, commit=commit, lake=lake)
