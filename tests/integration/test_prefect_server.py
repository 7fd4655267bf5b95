"""The deployments for real: `prefect server` on 127.0.0.1, a process work pool, `prefect deploy`, a worker.

Runs the `nightly` deployment on a small demo lake through `prefect worker start --run-once`, then checks the
lake, the run report and the artifact through the server's API, and that the ingest's
`mmcrs.dialogues.ingested` event made the server's trigger schedule a `retrain-on-dialogues` run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import polars as pl
import pytest

import features

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real Prefect server (SQLite) in a private home; yields the environment that points at it."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MMCRS_HOME": str(REPO),
        "PYTHONPATH": str(REPO),
    }
    log = (home / "server.log").open("w")
    proc = subprocess.Popen(
        [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start: {(home / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _cli(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run([*PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _api(env: dict[str, str], method: str, path: str, body: dict | None = None) -> object:
    response = httpx.request(method, env["PREFECT_API_URL"] + path, json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def _runs_of(env: dict[str, str], deployment_id: str) -> list[dict]:
    body = {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_DESC"}
    runs = _api(env, "POST", "/flow_runs/filter", body)
    assert isinstance(runs, list)
    return runs


def _deployment(env: dict[str, str], name: str) -> dict:
    found = _api(env, "GET", f"/deployments/name/{name}")
    assert isinstance(found, dict)
    return found


def test_nightly_deployment_runs_through_a_worker(server: dict[str, str], tmp_path: Path) -> None:
    from tasks.demo.server import serve_directory
    from tasks.demo.stage import DemoConfig, build_demo_inputs

    env = server
    _cli(env, "work-pool", "create", "mmcrs-process", "--type", "process")
    _cli(env, "--no-prompt", "deploy", "--all")
    nightly = _deployment(env, "nightly/nightly")
    assert nightly["concurrency_limit"] == 1 or nightly.get("global_concurrency_limit", {}).get("limit") == 1
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["0 2 * * *"]
    retrain = _deployment(env, "nightly/retrain-on-dialogues")
    automations = _api(env, "POST", "/automations/filter", {})
    assert isinstance(automations, list)
    assert any(a["trigger"].get("expect") == ["mmcrs.dialogues.ingested"] for a in automations)

    lake, artifacts = tmp_path / "lake", tmp_path / "artifacts"
    with serve_directory(tmp_path / "demo" / "posters", port=_free_port()) as base_url:
        inputs = build_demo_inputs(
            workdir=tmp_path / "demo",
            config=DemoConfig(items=30, synthetic_dialogues=8, use_redial=False, poster_base_url=base_url),
        )
        settings = {
            "crawl": {"allow_hosts": ["127.0.0.1"]},
            "embed": {"clip_model": "random:mmcrs-tiny@0"},
            "train": {"config": {"lm_kind": "random", "epochs": 1, "max_context_tokens": 16, "batch_size": 16}},
        }
        params = {
            "lake": str(lake),
            "dialogues": inputs["dialogues"],
            "catalog": inputs["catalog"],
            "catalog_source": "movielens",
            "stages": ["ingest", "crawl", "embed", "graphs", "train"],
            "settings": settings,
            "artifacts_root": str(artifacts),
            "report_dir": str(tmp_path / "report"),
        }
        _cli(env, "deployment", "run", "nightly/nightly", "--params", json.dumps(params))
        _cli(env, "worker", "start", "--pool", "mmcrs-process", "--run-once", timeout=900)

    runs = [r for r in _runs_of(env, nightly["id"]) if r["parameters"].get("lake") == str(lake)]
    assert len(runs) == 1 and runs[0]["state_type"] == "COMPLETED", runs[0]["state"]
    # the lake: every stage wrote its tables
    assert features.read("items", lake=lake).filter(pl.col("source") == "movielens").collect().height == 30
    assert features.read("item_graph_edges", lake=lake).select("graph").unique().collect().height >= 3
    stages = features.read("pipeline_runs", lake=lake).filter(pl.col("flow_run_id") == runs[0]["id"]).collect()
    dag = stages.filter(~pl.col("stage").str.contains(":"))  # "graphs:<name>": the graph stage's per-graph rows
    assert set(dag["stage"]) == {"ingest", "crawl", "embed", "graphs", "train"}
    assert set(stages["status"]) == {"ok"}
    # the run's markdown artifact, read back through the API
    artifacts_found = _api(
        env, "POST", "/artifacts/filter", {"artifacts": {"key": {"any_": ["nightly-run"]}}, "sort": "CREATED_DESC"}
    )
    assert isinstance(artifacts_found, list) and artifacts_found
    body = artifacts_found[0]["data"]
    assert "| train | ok |" in body and "| embed | ok |" in body and "No model is registered yet" not in body
    # the run report the worker wrote, with its plots
    report = tmp_path / "report"
    assert str(report / "report.md") in body
    text = (report / "report.md").read_text()
    assert all(stage in text for stage in ("ingest", "crawl", "embed", "graphs", "train"))
    assert {p.name for p in report.glob("*.png")} >= {"item_embeddings_map.png", "graph_degrees.png", "recall_at_k.png"}
    # the ingest emitted mmcrs.dialogues.ingested; the server's trigger scheduled retrain-on-dialogues
    deadline = time.monotonic() + 90
    while not (triggered := _runs_of(env, retrain["id"])) and time.monotonic() < deadline:
        time.sleep(2)
    assert triggered, "the mmcrs.dialogues.ingested event did not trigger retrain-on-dialogues"
    assert triggered[0]["parameters"]["lake"] == str(lake.resolve())
