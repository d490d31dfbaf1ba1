"""Several `dlbench run`s at once into one store: the default SQLite file and a real server."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from dlbench.testing import fake_distribution
from toy_plugin import TOY_PLUGIN


@pytest.fixture
def toy_env(tmp_path):
    root = fake_distribution(tmp_path / "site", "toy_plugin_dist", TOY_PLUGIN)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
               DLBENCH_LOAD_PLUGINS="toy_plugin_dist", TF_CPP_MIN_LOG_LEVEL="2")
    return env


def start_runs(count, env, cwd, extra=()):
    """Start ``count`` runs at the same moment; each logs 30 steps, one write per step."""
    command = [sys.executable, "-m", "dlbench", "run", "toy_fit", "--quick", "-p", "epochs=30",
               "--json", *extra]
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


def check_store(uri, results):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    assert len({r["run_id"] for r in results}) == len(results)
    for result in results:
        run = client.get_run(result["run_id"])
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(result["run_id"], "loss")
        assert [m.step for m in history] == list(range(1, 31))
    experiment = client.get_experiment_by_name("toy_fit")
    assert len(client.search_runs([experiment.experiment_id])) == len(results)


def test_four_runs_at_once_share_the_default_sqlite_store(toy_env, tmp_path):
    results = finish(start_runs(4, toy_env, tmp_path))
    db = tmp_path / "mlruns" / "mlflow.db"
    check_store(f"sqlite:///{db}", results)
    import sqlite3

    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on loopback, SQLite behind it, artifacts proxied by the server."""
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", (tmp_path / "server-artifacts").as_uri(), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail("mlflow server did not start:\n" + (tmp_path / "server.log").read_text())
        time.sleep(0.5)
    yield url
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    log.close()


def test_four_runs_at_once_through_an_mlflow_server(toy_env, tmp_path, mlflow_server):
    work = tmp_path / "work"
    work.mkdir()
    results = finish(start_runs(4, toy_env, work, ["--tracking-uri", mlflow_server]))
    check_store(mlflow_server, results)
    assert all(r["artifact_uri"].startswith("mlflow-artifacts:") for r in results)
    assert not (work / "mlruns").exists()  # nothing went to a local store by mistake
