"""The retrain job's summary: ``verdict.json`` (``mmcrs ci retrain --json``) as a markdown table.

Standard library only, so it runs even when the install step failed. When ``verdict.json`` is missing (the
job stopped before ``mmcrs ci retrain`` wrote it), it writes one with ``status: error`` first, so the
artifact upload always has a verdict.

Usage (GitHub Actions):
    python3 ci/verdict_summary.py verdict.json --outcome "$RETRAIN_OUTCOME" >> "$GITHUB_STEP_SUMMARY"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load_or_write_error(path: Path, *, outcome: str) -> dict:
    """The verdict at ``path``; a ``status: error`` verdict written there when there is none or it is unreadable."""
    try:
        verdict = json.loads(path.read_text())
        if isinstance(verdict, dict):
            return verdict
    except (OSError, ValueError):
        pass
    verdict = {"status": "error", "message": f"the job stopped before a verdict was written (step {outcome})"}
    path.write_text(json.dumps(verdict, indent=2))
    return verdict


def _number(value: object) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.4f}"


def to_markdown(verdict: dict) -> str:
    """The verdict as the job summary: a headline, the metric table, and what the candidate was trained on."""
    status = str(verdict.get("status", "error"))
    icon = {"pass": "PASS", "worse": "WORSE"}.get(status, "ERROR")
    lines = [f"## Retrain: {icon}", "", str(verdict.get("message", "")), ""]
    if "candidate" in verdict:
        production = verdict.get("production")
        lines += [
            f"Candidate v{verdict['candidate']} against production {'v' + str(production) if production else '(none)'}"
            f", min_delta {verdict.get('min_delta', 0.0)}, promoted: {verdict.get('promoted', False)}",
            "",
            "| metric | candidate | production | delta |",
            "| --- | ---: | ---: | ---: |",
        ]
        for row in verdict.get("metrics", []):
            cand, prod = row.get("candidate"), row.get("production")
            delta = f"{cand - prod:+.4f}" if isinstance(cand, int | float) and isinstance(prod, int | float) else ""
            lines.append(f"| {row.get('metric')} | {_number(cand)} | {_number(prod)} | {delta} |")
        lines.append("")
    for key in ("artifact_uri", "input_versions", "samples", "dialogues"):
        if verdict.get(key) is not None:
            lines.append(f"- {key}: `{json.dumps(verdict[key], sort_keys=True)}`")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the summary of the verdict file (writing an error verdict when it is missing)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("verdict", type=Path)
    parser.add_argument("--outcome", default="unknown", help="The retrain step's outcome (steps.<id>.outcome).")
    args = parser.parse_args(argv)
    sys.stdout.write(to_markdown(load_or_write_error(args.verdict, outcome=args.outcome)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
