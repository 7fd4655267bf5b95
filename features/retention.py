"""Retention: delete table files that no version worth keeping still needs.

Delta keeps the files of old versions until a vacuum deletes the ones removed longer ago than the retention
window (and files no commit ever named, e.g. left by a writer killed mid-commit). A registered model's
manifest pins the versions it was trained on, so those versions must stay readable however old they are:
their files are passed to Delta as ``keep_versions`` and never deleted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from features.catalog import TABLES
from features.lake import Lake, resolve_lake
from features.store import open_table


@dataclass(frozen=True)
class VacuumResult:
    """One table's vacuum: files past retention, those kept because a protected version needs them, deleted."""

    candidates: int
    kept: int
    deleted: int
    files: tuple[str, ...] = ()


def vacuum_lake(
    lake: Lake | str | None = None,
    *,
    retain_hours: float = 168.0,
    protect: Mapping[str, Collection[int]] | None = None,
    dry_run: bool = False,
    tables: Collection[str] | None = None,
) -> dict[str, VacuumResult]:
    """Vacuum every table (or ``tables``) of the lake, keeping the files of the ``protect`` versions.

    Args:
        lake: lake root.
        retain_hours: files removed from the table more recently than this stay (time travel window).
        protect: table -> versions that must stay readable (e.g. from model manifests).
        dry_run: count and list only.
        tables: a subset of tables (default: all that exist).

    Returns:
        Per table, what was (or would be) deleted and what protection kept.

    Raises:
        ValueError: a negative ``retain_hours``.
    """
    if not retain_hours >= 0:  # also refuses NaN
        raise ValueError(f"retain_hours must be 0 or more, not {retain_hours}")
    resolved = resolve_lake(lake)
    protect = protect or {}
    out: dict[str, VacuumResult] = {}
    for name in sorted(tables or TABLES):
        dt = open_table(name, resolved)
        if dt is None:
            continue
        latest = dt.version()
        keep = sorted(v for v in protect.get(name, ()) if 0 <= v <= latest)
        hours = max(int(retain_hours), 0)
        everything = dt.vacuum(retention_hours=hours, dry_run=True, enforce_retention_duration=False, full=True)
        allowed = dt.vacuum(
            retention_hours=hours, dry_run=True, enforce_retention_duration=False, full=True, keep_versions=keep or None
        )
        deleted = (
            allowed
            if dry_run
            else dt.vacuum(
                retention_hours=hours,
                dry_run=False,
                enforce_retention_duration=False,
                full=True,
                keep_versions=keep or None,
            )
        )
        out[name] = VacuumResult(
            candidates=len(everything),
            kept=len(everything) - len(allowed),
            deleted=0 if dry_run else len(deleted),
            files=tuple(sorted(allowed)),
        )
    return out
