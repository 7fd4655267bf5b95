"""The run report: stage runs, quarantine, item-embedding maps, graph degrees and Recall@k, as markdown,
self-contained HTML and PNGs (``build_report``); ``tasks.report.task`` is its Prefect face."""

from tasks.report.build import build_report

__all__ = ["build_report"]
