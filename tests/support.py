"""Helpers the tests share that are not fixtures: where the shared data is, an MLflow client
for a store, a free port, and a server process that can be stopped as a whole."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DLBENCH_TEST_DATA", REPO.parent / "shared" / "data"))
COURSE = DATA / "course"


def client(uri: str):
    """An MlflowClient on ``uri``, for reading runs back as a user of MLflow would."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def results(metrics: dict) -> dict:
    """A run's metrics but the system metrics MLflow's monitor samples into every run."""
    return {k: v for k, v in metrics.items() if not k.startswith("system/")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """A process group serving HTTP on 127.0.0.1:port; stop() kills the whole group."""

    def __init__(self, command, *, port, cwd, log: Path, env=None):
        self.port, self.log = port, log
        self.url = f"http://127.0.0.1:{port}"
        with open(log, "w") as out:
            self.proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, **(env or {})}, start_new_session=True)

    def wait_healthy(self, timeout=180.0) -> "MlflowServer":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"server not up after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        # Workers left behind by a parent that died first are in the same group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def get(self, route: str, **query) -> bytes:
        url = f"{self.url}{route}?{urllib.parse.urlencode(query)}" if query else self.url + route
        with urllib.request.urlopen(url, timeout=60) as reply:
            return reply.read()

    def api(self, endpoint: str, **query) -> dict:
        return json.loads(self.get(f"/api/2.0/mlflow/{endpoint}", **query))

    def artifact_files(self, run_id: str, path: str = "") -> list[str]:
        listing = self.api("artifacts/list", run_id=run_id, path=path)
        files = []
        for item in listing.get("files", []):
            if item["is_dir"]:
                files += self.artifact_files(run_id, item["path"])
            else:
                files.append(item["path"])
        return files


def check_classifiers(client, children: dict, primary: str) -> None:
    """Each child logged its classifier as a Keras-flavour MLflow model: pyfunc on uint8
    images and Keras on the same images as floats give the same class probabilities; the
    experiment's answer is marked as the one `--register` registers."""
    import mlflow.keras
    import mlflow.pyfunc
    import numpy as np

    from dlbench.models import using_store

    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    for name, child in children.items():
        (output,) = child.outputs.model_outputs
        logged = client.get_logged_model(output.model_id)
        assert logged.name == "model" and logged.tags["dlbench.primary"] == str(name == primary).lower()
    with using_store(client.tracking_uri):
        uri = f"runs:/{children[primary].info.run_id}/model"
        probabilities = mlflow.pyfunc.load_model(uri).predict(images)
        as_floats = mlflow.keras.load_model(uri).predict(images.astype("float32"), verbose=0)
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(as_floats, probabilities, atol=1e-6)


# -- bad input as a table -----------------------------------------------------------------------

PROBE_PLUGIN = '''
from dlbench import Experiment, hookimpl


def probe(name):
    def run(ctx):
        ctx.data(name)
        ctx.log_metric("loaded", 1.0)
    return run


@hookimpl
def dlbench_experiments():
    return [Experiment(name="probe_speech", summary="Loads the speech dataset.",
                       run=probe("speech"), datasets=("speech",), tensorflow=False),
            Experiment(name="probe_cifar", summary="Loads the cifar10 dataset.",
                       run=probe("cifar10"), datasets=("cifar10",), tensorflow=False)]
'''
"""Loads a dataset through the real datasets of the built-in plugins, without TensorFlow."""


@dataclass
class Case:
    """One mistake a user can make, and the one `error:` line it must give."""

    id: str
    args: list[str]
    exit: int
    message: str
    setup: Callable[[Path], dict] = field(default=lambda tmp: {})  # -> extra env or {"args"}
    writes_run: bool = False  # True when the mistake is only found once the run exists


def data_case(id, experiment, make, message) -> Case:
    """``dlbench run EXPERIMENT --quick --data <what make(folder) left there>``: found once the
    run exists, so it must end FAILED with the message."""
    def setup(tmp):
        return {"args": ["--data", str(make(tmp / "data"))]}

    return Case(id, ["run", experiment, "--quick"], 1, message, setup, writes_run=True)


def check_bad_input(case: Case, site: Path, tmp_path: Path, plugins: str, monkeypatch) -> None:
    """Run ``case`` and check the contract: its exit code, exactly one ``error:`` line naming
    the problem, no traceback, and a consistent store (no run left RUNNING; none at all unless
    the mistake could only be found once the run existed).

    A case that starts a run goes through a real subprocess; the others (found before any run
    starts) through the CLI in this process.
    """
    from dlbench.testing import run_cli

    store = tmp_path / "mlflow.db"
    env = {"DLBENCH_LOAD_PLUGINS": plugins, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    extra = case.setup(tmp_path) or {}
    args = case.args + extra.pop("args", [])
    env.update(extra)
    if case.writes_run:
        env["PYTHONPATH"] = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
        out = run_cli(args, cwd=tmp_path, env=env, timeout=300)
        code, stdout, stderr = out.returncode, out.stdout, out.stderr
    else:
        from click.testing import CliRunner

        from dlbench.cli import main

        monkeypatch.syspath_prepend(str(site))
        monkeypatch.chdir(tmp_path)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        out = CliRunner().invoke(main, args)
        code, stdout, stderr = out.exit_code, out.stdout, out.stderr

    assert code == case.exit, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert case.message in errors[0], errors[0]
    assert "Traceback" not in stderr and "Traceback" not in stdout
    if not store.exists():
        assert not case.writes_run, "the run should have been recorded FAILED"
        return
    mlflow = client(f"sqlite:///{store}")
    ids = [e.experiment_id for e in mlflow.search_experiments()]
    runs = mlflow.search_runs(ids) if ids else []
    assert all(r.info.status != "RUNNING" for r in runs)
    if case.writes_run:
        (run,) = runs
        assert run.info.status == "FAILED" and case.message in run.data.tags["dlbench.error"]
    else:
        assert runs == []
