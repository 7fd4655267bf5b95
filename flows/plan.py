"""What a run would do, without Prefect: the stage settings a lake runs with, and the plan of a run.

Prefect-free on purpose: ``mmcrs run`` answers "nothing to do" (and ``--plan``) without starting Prefect's
server or importing a stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import features
from features.lake_settings import merge, read_stage_settings
from tasks.settings import StageContext, StageSettings
from tasks.stages import estimate, parse_settings, skip_reason, stage_fingerprint, stage_names, stage_spec, why_it_runs


def stage_settings(
    settings: Mapping[str, Mapping[str, Any]] | None,
    ingest: Mapping[str, Any] | None = None,
    *,
    lake: features.Lake | None = None,
) -> dict[str, StageSettings]:
    """Every stage's validated settings: the lake's stored settings (``features.lake_settings``), then
    ``settings`` on top, then the ingest files given as flow arguments (``ingest``); raises ``ValueError`` (an
    unknown stage, key or type) or ``LakeError`` (an unreadable settings file) before anything runs."""
    for name, values in (settings or {}).items():
        if not isinstance(values, Mapping):
            raise ValueError(f"settings of stage {name} must be a table of parameters, got {values!r}")
    given = merge(read_stage_settings(lake) if lake is not None else {}, settings or {})
    files = {k: v for k, v in (ingest or {}).items() if v is not None}
    if files:
        given["ingest"] = {**given.get("ingest", {}), **files}
    return parse_settings(given)


def plan(
    *,
    lake: str | None = None,
    stages: list[str] | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    force: bool = False,
    **ingest: str | None,
) -> list[tuple[str, str]]:
    """What a run would do, without doing it: ``(stage, "run: <why>; <estimate>" | "skip: <why>")`` in DAG order.

    A stage after one that would run may still be reported as a skip: it runs only if that stage changes one
    of its tables, which is known only once it has run.
    """
    chosen = list(stages or stage_names())
    for name in chosen:
        stage_spec(name)
    context = StageContext(features.resolve_lake(lake))
    parsed = stage_settings(settings, ingest, lake=context.lake)
    out = []
    for spec in (stage_spec(n) for n in stage_names() if n in chosen):
        fingerprint = stage_fingerprint(spec, parsed[spec.name])
        reason = skip_reason(spec, parsed[spec.name], context, force=force, fingerprint=fingerprint)
        if reason is not None:
            out.append((spec.name, f"skip: {reason}"))
            continue
        why = "forced" if force else why_it_runs(spec, fingerprint, lake=context.lake)
        rows, seconds = estimate(spec, lake=context.lake)
        rate = "" if seconds is None else f", ~{seconds:.0f} s at its last run's rate"
        out.append((spec.name, f"run: {why}; {rows} rows in its input tables{rate}"))
    return out
