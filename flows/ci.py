"""CI's retraining job: ingest new dialogues, run the DAG after them, and judge the candidate against production.

Retraining needs new data: when the dialogues file lands no new usable dialogue (all of it garbage, empty, or
already in the lake), ``NoNewDialoguesError`` stops the job before any later stage runs (the CLI exits 2).
The verdict uses the registry's promotion rule (validation Recall@10 by default, higher is better): a
candidate at least as good as production (or the first model) passes. With ``promote`` it then becomes
production; without, CI only reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from prefect import flow

import features
from flows.nightly import PipelineResult, nightly_flow
from tasks.ingest.stage import IngestStageSummary
from tasks.report.stage import METRICS, metric_value
from tasks.stages import stage_names
from tasks.train.task import TrainSummary
from training.artifacts import locate, read_manifest
from training.pipeline import DEFAULT_MODEL_NAME
from training.registry import PromotionRule, models, promote, resolve


@dataclass(frozen=True)
class Verdict:
    """A candidate judged against production."""

    candidate: int
    production: int | None
    passed: bool
    reason: str
    rows: list[tuple[str, float | None, float | None]]  # metric, candidate, production
    promoted: bool = False

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable copy."""
        return {
            "candidate": self.candidate,
            "production": self.production,
            "passed": self.passed,
            "reason": self.reason,
            "promoted": self.promoted,
            "metrics": [{"metric": m, "candidate": c, "production": p} for m, c, p in self.rows],
        }


def judge(
    model_name: str, candidate: int, *, rule: PromotionRule | None = None, lake: features.Lake | str | None = None
) -> Verdict:
    """Compare a registered version with the production one under ``rule`` (pure read; changes nothing)."""
    rule = rule or PromotionRule()
    cand = json.loads(resolve(model_name, candidate, lake=lake)["metrics"])
    try:
        prod_row = resolve(model_name, "production", lake=lake)
    except LookupError:
        prod_row = None
    prod = json.loads(prod_row["metrics"]) if prod_row else {}
    keys = list(dict.fromkeys([rule.metric, *METRICS]))
    rows = [("/".join(k), metric_value(cand, k), metric_value(prod, k) if prod_row else None) for k in keys]
    score, prod_score = metric_value(cand, rule.metric), metric_value(prod, rule.metric)
    metric = "/".join(rule.metric)
    if prod_row is None or prod_score is None:
        return Verdict(candidate, None, True, "no production model yet", rows)
    production = int(prod_row["version"])
    if production == candidate:
        return Verdict(candidate, production, True, "the candidate is production already (nothing new)", rows)
    if score is not None and score >= prod_score + rule.min_delta:
        return Verdict(
            candidate, production, True, f"{metric} {score:.4f} >= production v{production} {prod_score:.4f}", rows
        )
    margin = f" + {rule.min_delta}" if rule.min_delta else ""
    return Verdict(
        candidate, production, False, f"{metric} {score:.4f} < production v{production} {prod_score:.4f}{margin}", rows
    )


def candidate_facts(model_name: str, version: int, *, lake: features.Lake | str | None = None) -> dict[str, object]:
    """What CI keeps about a candidate: its artifact URI and input table versions (registry row), and its
    dialogue and sample counts per split (the artifact's ``manifest.json``, when it is readable here)."""
    row = resolve(model_name, version, lake=lake)
    facts: dict[str, object] = {
        "artifact_uri": row["artifact_uri"],
        "input_versions": json.loads(row["input_versions"] or "{}"),
    }
    resolved = features.resolve_lake(lake)
    try:
        location = locate(str(row["artifact_uri"] or ""), lake=resolved)
        split = read_manifest(location, lake=resolved).get("split", {})
    except (OSError, ValueError):
        return facts
    return facts | {"samples": split.get("samples"), "dialogues": split.get("dialogues")}


def verdict_document(
    status: str, message: str, *, min_delta: float, verdict: Verdict | None = None, facts: dict | None = None
) -> dict[str, object]:
    """``verdict.json``: ``status`` (pass | worse | error), the message, ``min_delta``, then what is known of
    the verdict (metrics, versions) and of the candidate (``candidate_facts``)."""
    return (
        {"status": status, "message": message, "min_delta": min_delta}
        | (verdict.to_dict() if verdict else {})
        | (facts or {})
    )


class NoNewDialoguesError(ValueError):
    """The dialogues file landed no new usable dialogue, so there is nothing new to retrain on."""


def _check_landed(run: PipelineResult, dialogues: str) -> None:
    """Raise ``NoNewDialoguesError`` unless the ingest of ``run`` wrote or updated some dialogue."""
    ingest = run.results.get("ingest")
    if isinstance(ingest, IngestStageSummary) and ingest.new_dialogues() > 0:
        return
    counts = (ingest.inputs.get("dialogues") or {}) if isinstance(ingest, IngestStageSummary) else {}
    said = ", ".join(f"{k} {counts[k]}" for k in ("read", "unchanged", "quarantined") if k in counts)
    status = f" ({said})" if said else f" (ingest {run.status('ingest') or 'did not run'})"
    raise NoNewDialoguesError(f"no new usable dialogues landed from {dialogues}{status}: nothing to retrain on")


@dataclass(frozen=True)
class RetrainResult:
    """The pipeline run, the candidate's verdict and what CI keeps about the candidate."""

    run: PipelineResult
    verdict: Verdict
    candidate: dict[str, object] = field(default_factory=dict)


@flow(name="ci-retrain", log_prints=True)
def ci_retrain_flow(
    dialogues: str,
    lake: str | None = None,
    dialogue_format: str | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
    model_name: str = DEFAULT_MODEL_NAME,
    min_delta: float = 0.0,
    promote_if_better: bool = False,
    artifacts_root: str | None = None,
    stages: list[str] | None = None,
) -> RetrainResult:
    """Ingest ``dialogues``, run every stage after ingest (or ``stages``; train without auto-promotion), then
    judge the newest model against production.

    Returns:
        The run and the verdict.

    Raises:
        NoNewDialoguesError: the file landed no new usable dialogue (nothing after ingest runs).
    """
    given = {k: dict(v) for k, v in (settings or {}).items()}
    given["train"] = given.get("train", {}) | {"auto_promote": False, "model_name": model_name}
    chosen = ["ingest", *[s for s in (stages or stage_names()) if s != "ingest"]]
    if "train" not in chosen:
        raise ValueError("ci retrain needs the train stage")
    ingested = nightly_flow(
        lake=lake,
        dialogues=dialogues,
        dialogue_format=dialogue_format,
        settings=given,
        artifacts_root=artifacts_root,
        stages=["ingest"],
        report=False,
        announce=False,  # the stages after ingest run right here: no event, no second retrain
    )
    _check_landed(ingested, dialogues)
    rest = nightly_flow(lake=lake, settings=given, artifacts_root=artifacts_root, stages=chosen[1:])
    run = PipelineResult([*ingested.records, *rest.records], rest.versions, rest.report)
    trained = run.results.get("train")
    if isinstance(trained, TrainSummary):
        candidate = trained.version
    else:  # nothing new since the last training: judge the newest version again
        versions = models(lake=lake, model_name=model_name)
        if versions.is_empty():
            raise RuntimeError(f"no version of {model_name!r} was trained or registered")
        candidate = int(versions["version"].max())  # type: ignore[arg-type]
    rule = PromotionRule(min_delta=min_delta)
    verdict = judge(model_name, candidate, rule=rule, lake=lake)
    if promote_if_better and verdict.passed and verdict.production != verdict.candidate:
        outcome = promote(model_name, verdict.candidate, rule=rule, lake=lake)
        verdict = Verdict(**{**verdict.__dict__, "promoted": outcome.promoted})
    return RetrainResult(run, verdict, candidate_facts(model_name, candidate, lake=lake))
