"""A SIGTERM or SIGINT during a command leaves no Prefect server behind (real processes, real signals)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]

# A command that starts Prefect's ephemeral API server (a flow run) and sleeps inside it, run through the
# real console entry point (``flows.cli.main``), as ``mmcrs`` runs it.
SLEEPER = """
    import sys, time
    from pathlib import Path
    from prefect import flow
    from flows.cli import main
    from flows.cli.app import app

    @flow
    def sleeper() -> None:
        Path({marker!r}).touch()
        time.sleep(600)

    @app.command("sleep-for-test")
    def sleep_for_test() -> None:
        sleeper()

    main(["sleep-for-test"])
"""


def _server_children(proc: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in proc.children(recursive=True):
        try:
            if "uvicorn" in " ".join(child.cmdline()) or "prefect" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_a_command_leaves_no_prefect_server(tmp_path: Path, signum: int, code: int) -> None:
    marker = tmp_path / "inside-the-flow"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # no test harness: ephemeral mode
    env |= {"PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp_path / "prefect-home")}
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SLEEPER.format(marker=str(marker)))],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "the flow never started"
            time.sleep(0.1)
        servers = _server_children(psutil.Process(proc.pid))
        assert servers, "the command started no ephemeral Prefect server: nothing to check"
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == code
        _gone, alive = psutil.wait_procs(servers, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
