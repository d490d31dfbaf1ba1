"""Shared fixtures: the real data beside the repo, throwaway stores and data roots, the toy
plugin as an installed distribution, the CLI in-process, and a real `mlflow server`."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from dlbench.testing import fake_distribution
from support import DATA, MlflowServer, free_port
from toy_plugin import TOY_PLUGIN

# A suite started in the background by a non-interactive shell (`pytest &` in a script) inherits
# SIGINT ignored, and so would every dlbench it starts: the Ctrl-C tests would wait for an exit
# that never comes. Children inherit a Python handler as the default action, so take it back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _shared(sub: str, what: str) -> Path:
    path = DATA / sub
    if not path.is_dir():
        pytest.skip(f"{what} not found at {path}; set DLBENCH_TEST_DATA to the shared data folder")
    return path


@pytest.fixture
def shared_data() -> Path:
    return _shared("", "shared test data")


@pytest.fixture
def course_dir() -> Path:
    return _shared("course", "shared course speech data")


@pytest.fixture
def cifar_dir() -> Path:
    return _shared("cifar-10-batches-py", "shared CIFAR-10 subset")


@pytest.fixture
def store_uri(tmp_path) -> str:
    """A fresh SQLite MLflow store for one test (created on first use, so a test can check
    that nothing was written)."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(autouse=True)
def _isolated_data_root(tmp_path_factory, monkeypatch):
    """Caches and synthesized data go to a per-session temp dir, never the user's cache."""
    if "DLBENCH_DATA" not in os.environ:
        base = tmp_path_factory.getbasetemp()
        # Under pytest-xdist each worker has its own base (popen-gwN); they share the one
        # above it, so the synthesized speech and the feature caches are made once per session
        # (the cache is content-keyed and written atomically, so workers can share it).
        shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
        monkeypatch.setenv("DLBENCH_DATA", str(shared / "dlbench-data"))


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    """A data root of this test's own (empty, not created) and a Keras cache beside it: no
    cached entry and no dataset from elsewhere can leak in."""
    root = tmp_path / "root"
    monkeypatch.setenv("DLBENCH_DATA", str(root))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("DLBENCH_OFFLINE", "1")
    return root


@pytest.fixture
def toy_site(tmp_path) -> Path:
    """A folder where the toy plugin (tests/toy_plugin.py) is installed as distribution
    ``toy_plugin_dist``; more fake distributions can be added beside it."""
    return fake_distribution(tmp_path / "site", "toy_plugin_dist", TOY_PLUGIN)


@pytest.fixture
def toy_env(toy_site) -> dict[str, str]:
    """Environment for `dlbench` subprocesses that see the toy plugin only.

    The allow-list keeps these tests independent of whatever else is installed.
    """
    return {"PYTHONPATH": os.pathsep.join([str(toy_site), os.environ.get("PYTHONPATH", "")]),
            "DLBENCH_LOAD_PLUGINS": "toy_plugin_dist"}


@pytest.fixture
def cli(toy_site, monkeypatch):
    """``cli(args)``: the real `dlbench` command in this process (click's CliRunner), seeing
    the toy plugin only; for mistakes found before any run starts, which need no fresh
    interpreter. Returns click's Result (exit_code, stdout, stderr)."""
    from click.testing import CliRunner

    from dlbench.cli import main

    monkeypatch.syspath_prepend(str(toy_site))
    monkeypatch.setenv("DLBENCH_LOAD_PLUGINS", "toy_plugin_dist")

    def invoke(args, env=None):
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def run_ctx(tmp_path):
    """``run_ctx(params)``: a real ctx on a fresh run in a SQLite store, for code that takes a
    ctx; what it logs can be read back with ``support.client(ctx.client.tracking_uri)``."""
    from dlbench.context import RunContext
    from dlbench.declarations import Experiment
    from dlbench.lifecycle import start_run
    from dlbench.store import Store, experiment_id, open_store

    store = Store(f"sqlite:///{tmp_path / 'ctx.db'}", artifact_root=tmp_path / "ctx-artifacts")
    mlflow = open_store(store)
    exp_id = experiment_id(mlflow, "ctx_test", store)
    experiment = Experiment(name="ctx_test", summary="code under test, given a real ctx", run=print)

    def make(params, seed=0):
        return RunContext(client=mlflow, run_id=start_run(mlflow, exp_id), experiment_id=exp_id,
                          experiment=experiment, params=params, seed=seed, quick=False,
                          data_path=None, scratch=tmp_path / "ctx-scratch", registry=None)

    return make


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on loopback (SQLite behind it, artifacts proxied by the server),
    shared by the tests of a session that talk to one; each uses experiments of its own."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server",
               "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
               "--artifacts-destination", (root / "artifacts").as_uri(),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    # The job runner (GenAI evaluation jobs) forks more processes; runs need none of them.
    server = MlflowServer(command, port=port, cwd=root, log=root / "server.log",
                          env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    try:
        yield server.wait_healthy()
    finally:
        server.stop()
