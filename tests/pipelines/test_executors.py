"""Executors: the same pipeline run as tasks on a Dask cluster."""

from __future__ import annotations

import os

import pytest

from pipeline_testing import outputs_of, pipeline_runs, steps_of, workbench, write


@pytest.fixture(autouse=True)
def kernel():
    from workbench.notebooks import ensure_kernel

    ensure_kernel()


@pytest.mark.slow
def test_dask_executor_runs_steps_on_a_local_cluster(home, tmp_path):
    from distributed import Client, LocalCluster

    path = write(tmp_path, """\
        name: spread
        steps:
          a:
            notebook: FIXTURES/emit.ipynb
            parameters: {number: 3}
          b:
            notebook: FIXTURES/emit.ipynb
            parameters: {number: 4}
            gpu: true
          c:
            notebook: FIXTURES/double.ipynb
            needs: [a, b]
            parameters: {value: "${steps.b.outputs.number}"}
        """)
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                      resources={"GPU": 1}) as cluster, Client(cluster) as dask:
        workers = set(dask.run(os.getpid).values())
        result = workbench("pipeline", "run", str(path), "--executor", "dask", "--address", cluster.scheduler_address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Dask cluster" in result.stdout and "(2 workers)" in result.stdout
    (parent,) = pipeline_runs(home)
    steps = steps_of(home, parent)
    assert all(r.info.status == "FINISHED" for r in steps.values())
    assert {outputs_of(home, steps[s])["runner_pid"] for s in ("a", "b")} <= workers, "steps ran in Dask workers"
    assert outputs_of(home, steps["c"])["doubled"] == 8
