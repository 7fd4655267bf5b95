"""The model registry (``model_registry`` table): one row per version, aliases ``candidate`` / ``production``.

A new version becomes the ``candidate``. Promotion moves ``production`` to it only when it beats the current
production version on the validation metric (by ``min_delta``), unless forced; the rule is configurable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

import features
from features import CommitInfo, Lake

STAGE = "train"


@dataclass(frozen=True)
class PromotionRule:
    """When a candidate may replace production: ``metric`` = (split, protocol, name), higher is better."""

    metric: tuple[str, str, str] = ("valid", "standard", "recall@10")
    min_delta: float = 0.0


@dataclass(frozen=True)
class Promotion:
    """The outcome of a promotion attempt."""

    promoted: bool
    version: int
    previous: int | None
    candidate_score: float
    production_score: float | None
    reason: str


def models(*, lake: Lake | str | None = None, model_name: str | None = None) -> pl.DataFrame:
    """Registry rows (newest version first), optionally of one model; empty when nothing is registered."""
    frame = features.read("model_registry", missing="empty", lake=lake).collect()
    if model_name is not None:
        frame = frame.filter(pl.col("model_name") == model_name)
    return frame.sort("model_name", "version", descending=[False, True])


def next_version(model_name: str, *, lake: Lake | str | None = None) -> int:
    """1 + the highest registered version of ``model_name`` (1 for a new model)."""
    rows = models(lake=lake, model_name=model_name)
    return 1 if rows.is_empty() else int(rows["version"].max()) + 1  # type: ignore[arg-type]


def _set_alias(
    model_name: str, version: int, alias: str | None, *, lake: Lake | str | None, commit: CommitInfo
) -> None:
    """Give ``alias`` to ``version`` and take it from any other version of the model."""
    rows = models(lake=lake, model_name=model_name)
    holders = rows.filter(pl.col("alias") == alias)["version"].to_list() if alias else []
    updates = [{"model_name": model_name, "version": v, "alias": None} for v in holders if v != version]
    updates.append({"model_name": model_name, "version": version, "alias": alias})
    frame = pl.DataFrame(updates, schema={"model_name": pl.Utf8, "version": pl.Int32, "alias": pl.Utf8})
    features.update_columns("model_registry", frame, commit=commit, lake=lake)


def register(
    model_name: str,
    version: int,
    *,
    metrics: dict,
    config: dict,
    input_versions: dict[str, int],
    artifact_uri: str,
    lake: Lake | str | None = None,
    commit: CommitInfo | None = None,
) -> None:
    """Add a version's row with alias ``candidate`` (the previous candidate, if not production, loses it)."""
    commit = commit or CommitInfo(stage=STAGE, input_versions=input_versions)
    row = {
        "model_name": model_name,
        "version": version,
        "metrics": json.dumps(metrics, sort_keys=True),
        "config": json.dumps(config, sort_keys=True),
        "input_versions": json.dumps(input_versions, sort_keys=True),
        "git_sha": features.code_version(),
        "artifact_uri": artifact_uri,
        "alias": None,
        "registered_at": datetime.now(UTC),
    }
    features.upsert(
        "model_registry", pl.DataFrame([row], schema_overrides={"version": pl.Int32}), commit=commit, lake=lake
    )
    _set_alias(model_name, version, "candidate", lake=lake, commit=commit)


def resolve(model_name: str, version_or_alias: str | int, *, lake: Lake | str | None = None) -> dict:
    """The registry row of a version number or an alias; raises ``LookupError`` when there is none."""
    rows = models(lake=lake, model_name=model_name)
    ref = str(version_or_alias)
    hit = rows.filter(pl.col("version") == int(ref)) if ref.isdigit() else rows.filter(pl.col("alias") == ref)
    if hit.is_empty():
        raise LookupError(f"no model {model_name!r} with version or alias {ref!r}")
    return hit.row(0, named=True)


def _score(row: dict, rule: PromotionRule) -> float:
    split, protocol, name = rule.metric
    return float(json.loads(row["metrics"])[split][protocol][name])


def promote(
    model_name: str,
    version: int,
    *,
    rule: PromotionRule | None = None,
    force: bool = False,
    lake: Lake | str | None = None,
    commit: CommitInfo | None = None,
) -> Promotion:
    """Make ``version`` production if it beats the current production on ``rule.metric`` (or ``force``)."""
    rule, commit = rule or PromotionRule(), commit or CommitInfo(stage=STAGE)
    candidate = resolve(model_name, version, lake=lake)
    score = _score(candidate, rule)
    try:
        current = resolve(model_name, "production", lake=lake)
    except LookupError:
        current = None
    prod_score = None if current is None else _score(current, rule)
    previous = None if current is None else int(current["version"])
    if previous == version:
        return Promotion(False, version, previous, score, prod_score, "already production")
    if not force and prod_score is not None and score < prod_score + rule.min_delta:
        reason = f"{'/'.join(rule.metric)} {score:.4f} does not beat production v{previous} ({prod_score:.4f})"
        return Promotion(False, version, previous, score, prod_score, reason)
    _set_alias(model_name, version, "production", lake=lake, commit=commit)
    why = "forced" if force else ("no production yet" if current is None else f"beats v{previous}")
    return Promotion(True, version, previous, score, prod_score, why)


def protected_versions(*, lake: Lake | str | None = None, artifacts_root: str | None = None) -> dict[str, set[int]]:
    """Table versions some registered model was trained on: a vacuum must keep them readable.

    Read from every ``model_registry`` row's ``input_versions``, from every ``manifest.json`` under the lake's
    ``_artifacts`` (even when the lake was copied elsewhere) and, when ``artifacts_root`` is given, from the
    manifests under it whose lake is this lake.
    """
    from training.artifacts import lake_artifacts_root, manifests

    resolved = features.resolve_lake(lake)
    needed: dict[str, set[int]] = {}

    def add(versions: dict) -> None:
        for table, version in versions.items():
            needed.setdefault(str(table), set()).add(int(version))

    for row in models(lake=resolved).iter_rows(named=True):
        add(json.loads(row["input_versions"] or "{}"))
    for manifest in manifests(lake_artifacts_root(resolved), lake=resolved):  # this lake's, even if it moved
        add(manifest.get("inputs", {}).get("tables", {}))
    for manifest in manifests(artifacts_root, lake=resolved) if artifacts_root else []:
        inputs = manifest.get("inputs", {})
        if features.resolve_lake(inputs.get("lake")).root == resolved.root:
            add(inputs.get("tables", {}))
    return needed
