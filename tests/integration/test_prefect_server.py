"""The deployments for real: `prefect server` on 127.0.0.1, a process work pool, `prefect deploy`, a worker.

The server's own scheduler (loop shortened to seconds) creates the `nightly` deployment's scheduled runs from
its cron; one of them, moved to now with demo parameters through the API, is executed by
`prefect worker start --run-once`. Then the lake, the run report, the artifact and the lake's concurrency
limit are checked through the server's API; the nightly's own ingest announced nothing, and an ingest-only
run (`mmcrs run ingest`) made the server's trigger schedule `retrain-on-dialogues` on that lake, while an
event for another lake did not.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
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
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",  # the scheduler looks every 2 s, not every 60 s
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


def _cli(env: dict[str, str], *args: str, timeout: float = 300, program: list[str] = PREFECT) -> str:
    done = subprocess.run([*program, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _api(env: dict[str, str], method: str, path: str, body: dict | None = None) -> object:
    response = httpx.request(method, env["PREFECT_API_URL"] + path, json=body, timeout=30)
    response.raise_for_status()
    return response.json() if response.content else None


def _runs_of(env: dict[str, str], deployment_id: str, *states: str) -> list[dict]:
    body: dict = {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
    if states:
        body["flow_runs"] = {"state": {"type": {"any_": list(states)}}}
    runs = _api(env, "POST", "/flow_runs/filter", body)
    assert isinstance(runs, list)
    return runs


def _wait_for(what: str, probe: Callable[[], list[dict]], timeout: float = 90) -> list[dict]:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)
    return found


def _deployment(env: dict[str, str], name: str) -> dict:
    found = _api(env, "GET", f"/deployments/name/{name}")
    assert isinstance(found, dict)
    return found


def test_the_scheduler_creates_nightly_runs_a_worker_runs_one_and_ingest_triggers_a_retrain(
    server: dict[str, str], tmp_path: Path
) -> None:
    from flows.lake_limit import lake_limit_name

    env, lake = server, (tmp_path / "lake").resolve()
    started = datetime.now(UTC).isoformat()
    _cli(env, "work-pool", "create", "mmcrs-process", "--type", "process")
    # the trigger listens to this lake; MMCRS_HOME is deliberately wrong at deploy time: the worker reads its own
    deploying = {**env, "MMCRS_LAKE": str(lake), "MMCRS_HOME": str(tmp_path / "not-the-repository")}
    _cli(deploying, "--no-prompt", "deploy", "--all")
    nightly = _deployment(env, "nightly/nightly")
    assert nightly["concurrency_limit"] == 1 or nightly.get("global_concurrency_limit", {}).get("limit") == 1
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["0 2 * * *"]
    retrain = _deployment(env, "nightly/retrain-on-dialogues")
    automations = _api(env, "POST", "/automations/filter", {})
    assert isinstance(automations, list)
    (trigger,) = [a["trigger"] for a in automations if a["trigger"].get("expect") == ["mmcrs.dialogues.ingested"]]
    assert trigger["match"] == {"prefect.resource.id": f"mmcrs.lake.{lake}"}

    # the server's scheduler (not `deployment run`) creates the cron's runs: auto-scheduled, at 02:00 UTC
    scheduled = _wait_for("scheduled nightly runs", lambda: _runs_of(env, nightly["id"], "SCHEDULED"), timeout=60)
    assert all(r["auto_scheduled"] for r in scheduled)
    times = [datetime.fromisoformat(r["expected_start_time"]).astimezone(UTC) for r in scheduled]
    assert {(t.hour, t.minute) for t in times} == {(2, 0)} and len(set(times)) == len(times)

    run = scheduled[0]  # the scheduler's next run, moved to now with the demo's parameters
    lines = _run_now_on_demo_data(env, run["id"], lake, tmp_path)
    done = _api(env, "GET", f"/flow_runs/{run['id']}")
    assert isinstance(done, dict) and done["state_type"] == "COMPLETED", done["state"]
    assert done["auto_scheduled"] and done["parameters"]["lake"] == str(lake)
    _check_the_nightly_outputs(env, lake, tmp_path / "report", run["id"])
    limit = _api(env, "GET", f"/v2/concurrency_limits/{lake_limit_name(lake)}")  # taken by the run, released
    assert isinstance(limit, dict) and limit["limit"] == 1 and limit["active_slots"] == 0

    # the nightly ran the later stages itself: its ingest announced nothing. An event for another lake does
    # not trigger this deployment; an ingest-only run on this lake does.
    other = "s3://other/lake"
    emit = ["event", "emit", "mmcrs.dialogues.ingested", "--resource-id", f"mmcrs.lake.{other}"]
    _cli(env, *emit, "-p", json.dumps({"lake": other}))
    mmcrs = [sys.executable, "-c", "from flows.cli import main; main()"]
    _cli(env, "run", "ingest", "--dialogues", str(tmp_path / "later.jsonl"), "--lake", str(lake), program=mmcrs)
    _wait_for("the trigger's retrain-on-dialogues run", lambda: _runs_of(env, retrain["id"]))
    time.sleep(3)  # any run the other lake's event would have caused is there by now too
    triggered = _runs_of(env, retrain["id"])
    assert [r["parameters"]["lake"] for r in triggered] == [str(lake)]
    body = {"filter": {"event": {"name": ["mmcrs.dialogues.ingested"]}, "occurred": {"since": started}}, "limit": 50}
    events = _api(env, "POST", "/events/filter", body)
    assert isinstance(events, dict)
    ours = [e for e in events["events"] if e["resource"]["prefect.resource.id"] == f"mmcrs.lake.{lake}"]
    assert len(ours) == 1 and ours[0]["payload"]["new_dialogues"] == len(lines) - 8  # the ingest-only run's


def _run_now_on_demo_data(env: dict[str, str], run_id: str, lake: Path, tmp_path: Path) -> list[str]:
    """Give a scheduled run the demo's parameters, move it to now, and let one worker pass execute it; returns
    the demo's dialogue lines (the first 8 went to this run, the rest to ``later.jsonl``)."""
    from tasks.demo.server import serve_directory
    from tasks.demo.stage import DemoConfig, build_demo_inputs

    with serve_directory(tmp_path / "demo" / "posters", port=_free_port()) as base_url:
        inputs = build_demo_inputs(
            workdir=tmp_path / "demo",
            config=DemoConfig(items=30, synthetic_dialogues=12, use_redial=False, poster_base_url=base_url),
        )
        lines = Path(inputs["dialogues"]).read_text().splitlines()
        (tmp_path / "nightly.jsonl").write_text("\n".join(lines[:8]) + "\n")
        (tmp_path / "later.jsonl").write_text("\n".join(lines[8:]) + "\n")
        params = {
            "lake": str(lake),
            "dialogues": str(tmp_path / "nightly.jsonl"),
            "catalog": inputs["catalog"],
            "catalog_source": "movielens",
            "stages": ["ingest", "crawl", "embed", "graphs", "train"],
            "settings": {
                "crawl": {"allow_hosts": ["127.0.0.1"]},
                "embed": {"clip_model": "random:mmcrs-tiny@0"},
                "train": {"config": {"lm_kind": "random", "epochs": 1, "max_context_tokens": 16, "batch_size": 16}},
            },
            "artifacts_root": str(tmp_path / "artifacts"),
            "report_dir": str(tmp_path / "report"),
        }
        _api(env, "PATCH", f"/flow_runs/{run_id}", {"parameters": params})
        now = datetime.now(UTC).isoformat()
        state = {"type": "SCHEDULED", "name": "Scheduled", "state_details": {"scheduled_time": now}}
        _api(env, "POST", f"/flow_runs/{run_id}/set_state", {"state": state, "force": True})
        _cli(env, "worker", "start", "--pool", "mmcrs-process", "--run-once", timeout=900)
    return lines


def _check_the_nightly_outputs(env: dict[str, str], lake: Path, report: Path, run_id: str) -> None:
    """Every stage wrote its tables under the run's id; the artifact and the report on disk show them."""
    assert features.read("items", lake=lake).filter(pl.col("source") == "movielens").collect().height == 30
    assert features.read("item_graph_edges", lake=lake).select("graph").unique().collect().height >= 3
    stages = features.read("pipeline_runs", lake=lake).filter(pl.col("flow_run_id") == run_id).collect()
    dag = stages.filter(~pl.col("stage").str.contains(":"))  # "graphs:<name>": the graph stage's per-graph rows
    assert set(dag["stage"]) == {"ingest", "crawl", "embed", "graphs", "train"}
    assert set(stages["status"]) == {"ok"}
    artifacts_found = _api(
        env, "POST", "/artifacts/filter", {"artifacts": {"key": {"any_": ["nightly-run"]}}, "sort": "CREATED_DESC"}
    )
    assert isinstance(artifacts_found, list) and artifacts_found
    body = artifacts_found[0]["data"]
    assert "| train | ok |" in body and "| embed | ok |" in body and "No model is registered yet" not in body
    assert str(report / "report.md") in body
    text = (report / "report.md").read_text()
    assert all(stage in text for stage in ("ingest", "crawl", "embed", "graphs", "train"))
    assert {p.name for p in report.glob("*.png")} >= {"item_embeddings_map.png", "graph_degrees.png", "recall_at_k.png"}
