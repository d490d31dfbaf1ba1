"""`dlbench sweep`: the grid as child runs of one sweep run, on a process pool and on Ray."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlbench.search import expand_grid, rank, ranking_mode, split_values, thread_budget
from support import client
from dlbench.testing import fake_distribution, run_cli

FLAKY_PLUGIN = '''
import os
import time
from pathlib import Path

from dlbench import Experiment, Metric, Param, hookimpl


def sleepy(ctx):
    open(os.path.join(os.environ["SLEEPY_DIR"], str(ctx.params["n"])), "w").close()
    time.sleep(600)


def run(ctx):
    if ctx.params["fail"]:
        raise RuntimeError("asked to fail")
    ctx.log_metric("accuracy", ctx.params["level"])


@hookimpl
def dlbench_experiments():
    return [Experiment(name="flaky", summary="Fails when told to.", run=run, tensorflow=False,
                       params=(Param("fail", bool, False, "fail?"),
                               Param("level", float, 0.5, "the accuracy to report")),
                       logs=(Metric("accuracy", "max"),)),
            Experiment(name="sleepy", summary="Waits to be interrupted.", run=sleepy,
                       tensorflow=False, params=(Param("n", int, 0, "a label"),))]
'''


@pytest.fixture
def toy_env(toy_env):
    """The toy plugin (conftest) plus one whose trials fail on demand."""
    root = toy_env["PYTHONPATH"].split(os.pathsep)[0]
    fake_distribution(Path(root), "flaky_plugin", FLAKY_PLUGIN)
    return {**toy_env, "DLBENCH_LOAD_PLUGINS": "toy_plugin_dist,flaky_plugin"}



def test_grid_helpers():
    assert split_values("lr", "1e-3, 1e-4,1e-3") == ["1e-3", "1e-4"]
    assert expand_grid({"lr": ["a", "b"], "epochs": ["1", "2", "3"]})[:4] == [
        {"lr": "a", "epochs": "1"}, {"lr": "a", "epochs": "2"}, {"lr": "a", "epochs": "3"},
        {"lr": "b", "epochs": "1"}]
    assert expand_grid({}) == [{}]
    assert thread_budget(2, cores=16) == (8, 2) and thread_budget(4, cores=2) == (1, 1)
    assert thread_budget(1, cores=2) == (2, 1)
    trials = [{"index": 0, "status": "FINISHED", "metrics": {"m": 2.0}},
              {"index": 1, "status": "FAILED", "metrics": {}},
              {"index": 2, "status": "FINISHED", "metrics": {"m": 1.0}},
              {"index": 3, "status": "FINISHED", "metrics": {}}]
    assert [t["index"] for t in rank(trials, "m", "min")] == [2, 0, 3, 1]
    assert [t["index"] for t in rank(trials, "m", "max")] == [0, 2, 3, 1]


def check_sweep(uri, summary, workers, fresh_processes=False):
    """A 4-trial toy_fit grid: ranked by loss, nested under one parent, in worker processes
    (warm local workers run several trials each; Ray starts a process per trial)."""
    trials = summary["trials"]
    assert summary["status"] == "FINISHED" and summary["metric"] == "loss" and len(trials) == 4
    losses = [t["metrics"]["loss"] for t in trials]
    assert losses == sorted(losses) and summary["best"]["run_id"] == trials[0]["run_id"]
    assert {(t["sweep_params"]["lr"], t["sweep_params"]["epochs"]) for t in trials} == {
        ("0.1", "3"), ("0.1", "5"), ("0.05", "3"), ("0.05", "5")}
    store = client(uri)
    parent = store.get_run(summary["run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["dlbench.sweep"] == "true"
    assert parent.data.params["lr"] == "0.1,0.05" and parent.data.params["workers"] == str(workers)
    assert parent.data.metrics["best_loss"] == losses[0]
    assert parent.data.tags["dlbench.sweep.best_run_id"] == trials[0]["run_id"]
    pids = set()
    for trial in trials:
        run = store.get_run(trial["run_id"])
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == summary["run_id"]
        assert run.data.params["epochs"] == trial["sweep_params"]["epochs"]
        assert run.data.params["quick"] == "true"
        assert len(store.get_metric_history(trial["run_id"], "loss")) == int(run.data.params["epochs"])
        pids.add(run.data.tags["dlbench.pid"])
        intra, inter = thread_budget(workers)
        assert run.data.tags["dlbench.threads.intra_op"] == str(intra)
    assert parent.data.tags["dlbench.pid"] not in pids  # trials run in workers
    assert len(pids) == 4 if fresh_processes else 1 <= len(pids) <= workers
    table = store.download_artifacts(summary["run_id"], "sweep/trials.csv")
    assert open(table).read().splitlines()[1].startswith(f"1,{trials[0]['run_id']},FINISHED")


def test_local_sweep_two_workers(toy_env, store_uri):
    out = run_cli(["sweep", "toy_fit", "-p", "lr=0.1,0.05", "-p", "epochs=3,5", "--workers", "2",
                   "--quick", "--json"], tracking_uri=store_uri, env=toy_env)
    assert out.returncode == 0, out.stderr
    check_sweep(store_uri, json.loads(out.stdout), workers=2)


def test_human_summary_is_best_first(toy_env, store_uri):
    out = run_cli(["sweep", "flaky", "-p", "level=0.2,0.9,0.5", "--workers", "2"],
                  tracking_uri=store_uri, env=toy_env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "accuracy, largest first" in lines[0]
    assert [line.split()[3] for line in lines[2:]] == ["0.9", "0.5", "0.2"]


def test_failed_trial_fails_the_sweep_but_not_its_siblings(toy_env, store_uri):
    out = run_cli(["sweep", "flaky", "-p", "fail=false,true", "--json"],
                  tracking_uri=store_uri, env=toy_env)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].endswith("FAILED: 1 of 2 trials did not finish")
    summary = json.loads(out.stdout)
    assert [t["status"] for t in summary["trials"]] == ["FINISHED", "FAILED"]
    failed = client(store_uri).get_run(summary["trials"][1]["run_id"])
    assert failed.data.tags["dlbench.error"] == "RuntimeError: asked to fail"
    parent = client(store_uri).get_run(summary["run_id"])
    assert parent.info.status == "FAILED" and parent.data.tags["dlbench.sweep.finished"] == "1"


def test_ray_sweep_four_trials(toy_env, store_uri):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'dlbench[ray]')")
    out = run_cli(["sweep", "toy_fit", "-p", "lr=0.1,0.05", "-p", "epochs=3,5", "--workers", "2",
                   "--backend", "ray", "--quick", "--json"], tracking_uri=store_uri, env=toy_env,
                  timeout=900)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    check_sweep(store_uri, summary, workers=2, fresh_processes=True)
    parent = client(store_uri).get_run(summary["run_id"])
    assert parent.data.tags["dlbench.sweep.backend"] == "ray"


@pytest.mark.parametrize("stop", ["ctrl_c", "sigterm"])
def test_interrupted_sweep_ends_killed_with_its_trials(toy_env, store_uri, tmp_path, stop):
    env = {**os.environ, **toy_env, "MLFLOW_TRACKING_URI": store_uri, "SLEEPY_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "dlbench", "sweep", "sleepy", "-p", "n=1,2",
                             "--workers", "2", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    while not ((tmp_path / "1").exists() and (tmp_path / "2").exists()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.2)
    if stop == "ctrl_c":
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    else:
        proc.send_signal(signal.SIGTERM)  # the sweep process only; it stops its workers
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    summary = json.loads(stdout)
    store = client(store_uri)
    assert store.get_run(summary["run_id"]).info.status == "KILLED"
    statuses = [store.get_run(t["run_id"]).info.status for t in summary["trials"]]
    assert statuses == ["KILLED", "KILLED"]
    assert len(store.search_runs([summary["experiment_id"]])) == 3  # parent + 2 trials
