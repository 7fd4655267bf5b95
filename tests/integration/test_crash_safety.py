"""Crash safety with real processes: kill -9 during embedding, kill -9 inside a Delta commit, two nightly runs
at once, and a failed run re-run without redoing finished stages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import features
from features import CommitInfo
from features.lock import LakeBusyError, lake_lock
from features.retention import vacuum_lake
from features.store import open_table

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _items(n: int, prefix: str = "i", text_len: int = 40) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item_id": [f"{prefix}{i}" for i in range(n)],
            "source": "test",
            "title": [f"Movie {i}" for i in range(n)],
            "text": [f"Movie {i}: " + "a story " * (text_len // 8) for i in range(n)],
            "content_hash": [f"{prefix}{i}" for i in range(n)],
            "ingested_at": datetime.now(UTC),
        }
    )


def _spawn(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=ENV,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill(proc: subprocess.Popen[bytes]) -> bool:
    """SIGKILL ``proc`` and reap it; True when the signal ended it, False when it had already exited cleanly
    (a process that finished first is a zombie until reaped: the signal is then a no-op, never an error)."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    if proc.returncode == -signal.SIGKILL:
        return True
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else proc.returncode
    return False


def _uncommitted_files(table_dir: Path, lake: Path, table: str) -> set[str]:
    """Parquet files in the table folder that no committed version names (a writer died before its commit)."""
    on_disk = {p.name for p in table_dir.rglob("*.parquet")}
    dt = open_table(table, lake)
    committed = {Path(u).name for u in dt.file_uris()} if dt is not None else set()
    return on_disk - committed


EMBED = """
    from tasks.embed.config import EmbedConfig
    from tasks.embed.stage import embed
    embed(lake={lake!r}, config=EmbedConfig(modalities=("clip_text",), clip_model="random:mmcrs-tiny@0",
                                            batch_size=8, shard_size=25, num_workers=0))
"""


def test_kill_9_during_embedding_then_rerun_completes_without_duplicates(tmp_path: Path) -> None:
    lake, n = tmp_path / "lake", 400
    features.upsert("items", _items(n), commit=CommitInfo(stage="test"), lake=lake)
    proc = _spawn(EMBED.format(lake=str(lake)))
    deadline = time.monotonic() + 300
    while (features.table_version("item_embeddings", lake=lake) or -1) < 1:  # at least one shard committed
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        assert time.monotonic() < deadline, "no shard committed in time"
        time.sleep(0.05)
    assert _kill(proc), "the embedding run finished before it could be killed"
    done_before = features.read("item_embeddings", lake=lake).collect().height
    assert 0 < done_before < n  # killed half-way, and what was committed is readable

    rerun = _spawn(EMBED.format(lake=str(lake)))
    assert rerun.wait(timeout=600) == 0, rerun.stderr.read().decode()[-2000:] if rerun.stderr else ""
    rows = features.read("item_embeddings", lake=lake).collect()
    assert rows.height == n  # nothing missing
    assert rows.select("item_id", "modality", "model_id").is_duplicated().sum() == 0  # nothing twice
    assert set(rows["item_id"]) == {f"i{i}" for i in range(n)}


WRITER = """
    from datetime import UTC, datetime
    from pathlib import Path
    import polars as pl
    import features
    from features import CommitInfo
    for batch in {batches}:
        rows = pl.DataFrame({{
            "item_id": [f"b{{batch}}-{{i}}" for i in range({rows})], "source": "crash",
            "title": [f"t{{i}}" for i in range({rows})], "text": ["x" * 400] * {rows},
            "content_hash": [f"b{{batch}}-{{i}}" for i in range({rows})], "ingested_at": datetime.now(UTC)}})
        Path({marks!r}, f"begin-{{batch}}").touch()
        features.upsert("items", rows, commit=CommitInfo(stage="crash-writer"), lake={lake!r})
        Path({marks!r}, f"end-{{batch}}").touch()
"""


def test_kill_9_inside_a_delta_commit_leaves_the_table_consistent(tmp_path: Path) -> None:
    lake, marks, rows = tmp_path / "lake", tmp_path / "marks", 200_000
    marks.mkdir()
    features.upsert("items", _items(10), commit=CommitInfo(stage="test"), lake=lake)
    delays = (0.0, 0.1, 0.25, 0.5)
    for batch, delay in enumerate(delays):  # each trial: one new batch, killed inside its upsert call
        proc = _spawn(WRITER.format(batches=[batch], rows=rows, lake=str(lake), marks=str(marks)))
        deadline = time.monotonic() + 300
        while not (marks / f"begin-{batch}").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
        time.sleep(delay)
        killed = _kill(proc)
        assert killed or (marks / f"end-{batch}").exists()  # exited on its own only after finishing its commit
        if (marks / f"end-{batch}").exists():
            continue  # the commit finished before the signal: not a mid-commit kill, nothing to check here
        table = features.read("items", lake=lake).collect()  # readable after every kill
        crash = table.filter(pl.col("source") == "crash")
        per_batch = crash.group_by(pl.col("item_id").str.extract(r"^b(\d+)-").alias("b")).len()
        assert (per_batch["len"] == rows).all(), per_batch  # whole batches or nothing, never a part of one
        assert table["item_id"].is_duplicated().sum() == 0
    killed_inside = [b for b in range(len(delays)) if not (marks / f"end-{b}").exists()]
    assert killed_inside, "every write finished before its kill: the test never hit a commit in flight"

    every = list(range(len(delays)))
    rerun = _spawn(WRITER.format(batches=every, rows=rows, lake=str(lake), marks=str(marks)))
    assert rerun.wait(timeout=600) == 0, rerun.stderr.read().decode()[-2000:] if rerun.stderr else ""
    table = features.read("items", lake=lake).collect()
    assert table.height == 10 + len(delays) * rows and table["item_id"].is_duplicated().sum() == 0

    vacuum_lake(lake, retain_hours=0, tables=["items"])  # files a killed writer left behind, never committed
    assert not _uncommitted_files(lake / "items", lake, "items")
    assert features.read("items", lake=lake).collect().height == 10 + len(delays) * rows


def test_lake_lock_refuses_or_waits_and_is_released_by_kill_9(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    holder = _spawn(f"""
        import time
        from features.lock import lake_lock
        with lake_lock({str(lake)!r}):
            open({str(tmp_path / "held")!r}, 'w').close()
            time.sleep(600)
    """)
    while not (tmp_path / "held").exists():
        assert holder.poll() is None
        time.sleep(0.05)
    with pytest.raises(LakeBusyError, match="lake is busy"), lake_lock(lake):
        pass
    started = time.monotonic()
    with pytest.raises(LakeBusyError), lake_lock(lake, wait_s=1.0, poll_s=0.1):
        pass
    assert time.monotonic() - started >= 1.0  # it waited before refusing
    assert _kill(holder)  # the kernel drops the lock with the process: no stale lock after a crash
    with lake_lock(lake) as held:
        assert held


def _nightly_script(lake: Path, inputs: dict[str, str], out: Path, settings: dict) -> str:
    return f"""
        import json
        from flows import env; env.configure()
        from features.lock import LakeBusyError
        from flows.nightly import nightly_flow
        try:
            result = nightly_flow(lake={str(lake)!r}, dialogues={inputs["dialogues"]!r},
                                  catalog={inputs["catalog"]!r}, catalog_source="movielens",
                                  stages=["ingest", "embed", "graphs"], settings={settings!r}, lock_wait_s=0)
            outcome = {{"status": "ok", "stages": {{k: v["status"] for k, v in result.stages.items()}}}}
        except LakeBusyError as exc:
            outcome = {{"status": "busy", "error": str(exc)}}
        open({str(out)!r}, "w").write(json.dumps(outcome))
    """


def test_two_nightly_runs_at_once_one_is_refused_and_nothing_is_corrupted(tmp_path: Path) -> None:
    from tasks.demo.stage import DemoConfig, build_demo_inputs

    lake = tmp_path / "lake"
    inputs = build_demo_inputs(
        workdir=tmp_path / "demo", config=DemoConfig(items=40, synthetic_dialogues=10, use_redial=False)
    )
    settings = {"embed": {"clip_model": "random:mmcrs-tiny@0", "modalities": ["clip_text", "text"]}}
    home = {"PREFECT_HOME": str(tmp_path / "ph-{}")}
    procs = []
    for k in range(2):
        env = {**ENV, "PREFECT_HOME": home["PREFECT_HOME"].format(k), "PREFECT_API_URL": ""}
        env.pop("PREFECT_API_URL")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    textwrap.dedent(_nightly_script(lake, inputs, tmp_path / f"out{k}.json", settings)),
                ],
                env=env,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
    for proc in procs:
        assert proc.wait(timeout=900) == 0, proc.stderr.read().decode()[-3000:] if proc.stderr else ""
    outcomes = sorted(
        (json.loads((tmp_path / f"out{k}.json").read_text()) for k in range(2)), key=lambda o: o["status"]
    )
    statuses = [o["status"] for o in outcomes]
    # either one run held the lake while the other arrived (refused), or they did not overlap at all and the
    # second found nothing to do; never two writers at once
    if statuses == ["busy", "ok"]:
        assert "lake is busy" in outcomes[0]["error"]
    else:
        assert statuses == ["ok", "ok"]
        assert sorted(o["stages"]["embed"] for o in outcomes) == ["ok", "skipped"]
    turns = features.read("turns", lake=lake).collect()
    assert turns.select("dialogue_id", "turn_idx").is_duplicated().sum() == 0
    vectors = features.read("item_embeddings", lake=lake).collect()
    assert vectors.select("item_id", "modality", "model_id").is_duplicated().sum() == 0
    n_items = features.read("items", lake=lake).collect().height
    assert vectors.filter(pl.col("modality") == "text").height == n_items


@pytest.mark.usefixtures("prefect_harness")
def test_a_failed_run_rerun_does_not_redo_finished_stages(tmp_path: Path) -> None:
    from flows.nightly import nightly_flow
    from tasks.demo.stage import DemoConfig, build_demo_inputs

    lake = tmp_path / "lake"
    inputs = build_demo_inputs(
        workdir=tmp_path / "demo", config=DemoConfig(items=30, synthetic_dialogues=8, use_redial=False)
    )
    good = {"embed": {"clip_model": "random:mmcrs-tiny@0", "modalities": ["clip_text", "text"]}}
    kwargs = {
        "lake": str(lake),
        "dialogues": inputs["dialogues"],
        "catalog": inputs["catalog"],
        "catalog_source": "movielens",
        "stages": ["ingest", "embed", "graphs"],
    }
    with pytest.raises(ValueError, match="no-such-backend"):  # a bad setting fails before anything runs
        nightly_flow(**kwargs, settings=good | {"graphs": {"backend": "no-such-backend"}})
    assert not (lake / "pipeline_runs").exists() and not (lake / "items").exists()

    missing = {"embed": good["embed"] | {"text_model": f"local:{tmp_path / 'no-such-model'}"}}
    with pytest.raises(Exception, match="no-such-model"):  # a model that is not there: permanent, never retried
        nightly_flow(**kwargs, settings=missing, retries=3)
    runs = features.read("pipeline_runs", lake=lake).collect()
    failed = runs.filter(pl.col("stage") == "embed").row(0, named=True)
    assert failed["status"] == "failed" and json.loads(failed["counts"])["attempts"] == 1  # not retried
    ingested = features.table_versions(["items", "dialogues", "turns"], lake=lake)

    again = nightly_flow(**kwargs, settings=good)
    assert {k: v["status"] for k, v in again.stages.items()} == {"ingest": "skipped", "embed": "ok", "graphs": "ok"}
    assert features.table_versions(["items", "dialogues", "turns"], lake=lake) == ingested  # nothing re-ingested
    assert features.read("item_graph_edges", lake=lake).collect().height > 0
