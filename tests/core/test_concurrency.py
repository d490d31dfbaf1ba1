"""Several `dlbench run`s at once into one store: the default SQLite file and a real server."""

import json
import os
import subprocess
import sys
import uuid

import pytest

from support import client


@pytest.fixture
def toy_env(toy_env):
    """The toy plugin, and no tracking URI from outside: the default store is under test."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {**env, **toy_env}


@pytest.fixture
def experiment_name():
    return f"concurrency-{uuid.uuid4().hex[:8]}"


def start_runs(count, env, cwd, experiment_name, extra=()):
    """Start ``count`` runs at the same moment; each logs 30 steps, one write per step."""
    command = [sys.executable, "-m", "dlbench", "run", "toy_fit", "--quick", "-p", "epochs=30",
               "--experiment-name", experiment_name, "--json", *extra]
    return [subprocess.Popen(command + ["--seed", str(i)], cwd=cwd, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for i in range(count)]


def finish(procs, timeout=300):
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
        results.append(json.loads(stdout))
    return results


def check_store(uri, results, experiment_name):
    mlflow = client(uri)
    assert len({r["run_id"] for r in results}) == len(results)
    for result in results:
        run = mlflow.get_run(result["run_id"])
        assert run.info.status == "FINISHED"
        history = mlflow.get_metric_history(result["run_id"], "loss")
        assert [m.step for m in history] == list(range(1, 31))
    experiment = mlflow.get_experiment_by_name(experiment_name)
    assert len(mlflow.search_runs([experiment.experiment_id])) == len(results)


def test_four_runs_at_once_share_the_default_sqlite_store(toy_env, tmp_path, experiment_name):
    results = finish(start_runs(4, toy_env, tmp_path, experiment_name))
    db = tmp_path / "mlruns" / "mlflow.db"
    check_store(f"sqlite:///{db}", results, experiment_name)
    import sqlite3

    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


@pytest.mark.xdist_group("mlflow-server")  # the worker that has the server started
def test_four_runs_at_once_through_an_mlflow_server(toy_env, tmp_path, mlflow_server,
                                                    experiment_name):
    work = tmp_path / "work"
    work.mkdir()
    results = finish(start_runs(4, toy_env, work, experiment_name,
                                ["--tracking-uri", mlflow_server.url]))
    check_store(mlflow_server.url, results, experiment_name)
    assert all(r["artifact_uri"].startswith("mlflow-artifacts:") for r in results)
    assert not (work / "mlruns").exists()  # nothing went to a local store by mistake
