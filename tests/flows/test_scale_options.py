"""The scale-out switch without a cluster: option checks, the runner it builds, and ``submit_jobs``."""

from __future__ import annotations

import pytest
from prefect import flow, task
from typer.testing import CliRunner

import flows.nightly  # noqa: F401  (import prefect now: its log handlers must bind the real stderr)
from flows.cli import app
from tasks.settings import check_task_runner
from tasks.task import dask_task_runner, submit_jobs

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task-runner", "ray"], "unknown task runner 'ray'"),
        (["--dask-address", "tcp://127.0.0.1:8786"], "dask_address needs task_runner='dask'"),
        (["--task-runner", "dask", "--dask-workers", "0"], "dask_workers must be at least 1"),
    ],
)
@pytest.mark.parametrize("command", ["embed", "summarize"])
def test_bad_runner_options_exit_2(command: str, args: list[str], message: str, tmp_path: object) -> None:
    result = runner.invoke(app, [command, *args, "--lake", str(tmp_path)])
    assert result.exit_code == 2 and message in " ".join(result.output.split())


def test_check_task_runner_accepts_the_default_and_dask() -> None:
    check_task_runner("default", None, 2)
    check_task_runner("dask", "tcp://10.0.0.5:8786", 4)
    with pytest.raises(ValueError, match="unknown"):
        check_task_runner("threads", None, 2)


@pytest.mark.usefixtures("prefect_harness")
def test_dask_runner_is_an_address_or_a_loopback_local_cluster() -> None:
    remote = dask_task_runner("tcp://10.0.0.5:8786", 2)
    assert remote.address == "tcp://10.0.0.5:8786" and not remote.cluster_kwargs
    local = dask_task_runner(None, 2)
    kwargs = local.cluster_kwargs
    assert (kwargs["n_workers"], kwargs["threads_per_worker"], kwargs["processes"], kwargs["host"]) == (
        2,
        1,
        True,
        "127.0.0.1",
    )
    assert kwargs["env"]["PREFECT_API_URL"].startswith("http://127.0.0.1")  # workers report to this API
    assert int(kwargs["env"]["OMP_NUM_THREADS"]) >= 1


@task
def _double(x: int) -> int:
    if x == 2:
        raise ValueError("bad job")
    return 2 * x


@pytest.mark.usefixtures("prefect_harness")
def test_submit_jobs_yields_every_good_result_before_raising_the_failure() -> None:
    seen: list[int] = []

    @flow
    def run() -> None:
        for value in submit_jobs(_double, range(5), lambda x: {"x": x}, max_in_flight=2):
            seen.append(value)

    with pytest.raises(ValueError, match="bad job"):
        run()
    assert sorted(seen) == [0, 2, 6, 8]  # every job but the failed one came back (and would be committed)
