"""The crawl flow: fetch the posters and plots the catalog points to, safely and incrementally."""

from __future__ import annotations

from prefect import flow

from tasks.crawl.stage import crawl_task


@flow(name="crawl", log_prints=True)
def crawl_flow(
    lake: str | None = None,
    refresh_posters: bool = False,
    allow_hosts: list[str] | None = None,
    file_root: str | None = None,
) -> dict[str, object]:
    """Crawl posters (and plot texts) not yet stored; ``allow_hosts`` lifts the private-address refusal."""
    return crawl_task(lake, refresh_posters, allow_hosts, file_root)
