"""The markdown a nightly run publishes: its stages, what was quarantined, the model against production."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

import polars as pl

import features
from features import Lake
from tasks.stages import StageRecord

METRICS = (
    ("valid", "standard", "recall@10"),
    ("test", "standard", "recall@10"),
    ("test", "standard", "recall@50"),
    ("test", "no_repeats", "recall@10"),
    ("test", "no_repeats", "recall@50"),
)


def stages_markdown(records: Sequence[StageRecord]) -> str:
    """One row per stage: status, duration, rows in/out, quarantined, versions written, reason."""
    lines = [
        "| stage | status | duration (s) | rows in | rows out | quarantined | versions after | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        versions = ", ".join(f"{t} v{v}" for t, v in sorted(r.output_versions.items())) or "—"
        quarantined = sum((r.quarantined or {}).values())
        lines.append(
            f"| {r.name} | {r.status} | {r.duration_s:.1f} | {r.rows_in} | {r.rows_out} | {quarantined} "
            f"| {versions} | {r.reason.replace('|', '/')} |"
        )
    return "\n".join(lines)


def quarantine_markdown(records: Sequence[StageRecord]) -> str:
    """Quarantined records of this run by stage and reason (or a line saying there were none)."""
    counts = Counter({(r.name, reason): n for r in records for reason, n in (r.quarantined or {}).items()})
    if not counts:
        return "Nothing was quarantined in this run."
    lines = ["| stage | reason | records |", "|---|---|---|"]
    lines += [f"| {stage} | {reason} | {n} |" for (stage, reason), n in sorted(counts.items())]
    return "\n".join(lines)


def metric_value(metrics: dict, key: tuple[str, str, str]) -> float | None:
    """``metrics[split][protocol][name]`` of a registry ``metrics`` JSON, or None when absent."""
    split, protocol, name = key
    value = metrics.get(split, {}).get(protocol, {}).get(name)
    return None if value is None else float(value)


def _metric(metrics: dict, key: tuple[str, str, str]) -> str:
    value = metric_value(metrics, key)
    return "—" if value is None else f"{value:.4f}"


def model_markdown(*, lake: Lake, model_name: str | None = None) -> str:
    """The newest registered model against the production one (or a line saying there is none)."""
    rows = features.read(
        "model_registry", missing="empty", lake=lake
    ).collect()  # plain read: no torch import for a report
    if model_name is not None:
        rows = rows.filter(pl.col("model_name") == model_name)
    if rows.is_empty():
        return "No model is registered yet."
    newest = rows.sort("registered_at", descending=True).row(0, named=True)
    same_model = rows.filter(pl.col("model_name") == newest["model_name"])
    production = same_model.filter(pl.col("alias") == "production")
    shown = [("newest", newest)] + ([("production", production.row(0, named=True))] if production.height else [])
    header = "| model | version | alias | " + " | ".join("/".join(k) for k in METRICS) + " | artifacts |"
    lines = [header, "|" + "---|" * (len(METRICS) + 4)]
    for label, row in shown:
        metrics = json.loads(row["metrics"] or "{}")
        lines.append(
            f"| {label}: {row['model_name']} | {row['version']} | {row['alias'] or '—'} | "
            + " | ".join(_metric(metrics, k) for k in METRICS)
            + f" | `{row['artifact_uri']}` |"
        )
    if not production.height:
        lines.append("\nNo production model yet.")
    return "\n".join(lines)


def run_markdown(records: Sequence[StageRecord], *, lake: Lake, artifacts_root: str | None = None) -> str:
    """The whole run summary: stages, quarantine by reason, model against production."""
    reports = [getattr(r.summary, "report", None) for r in records if r.status == "ok"]
    s = next((report for report in reports if isinstance(report, dict) and "version" in report), None)
    promotion = ""
    if s is not None:  # a model was trained and registered
        promotion = (
            f"\n\nTrained v{s['version']}: promoted {s.get('promoted')} ({s.get('promotion_reason')}); "
            f"artifacts `{s.get('artifact_dir')}`."
        )
    return (
        f"# mmcrs nightly run\n\nLake: `{lake.root}`\n\n## Stages\n\n{stages_markdown(records)}\n\n"
        f"## Quarantined\n\n{quarantine_markdown(records)}\n\n## Model\n\n{model_markdown(lake=lake)}"
        f"{promotion}\n"
    )
