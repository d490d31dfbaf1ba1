"""`dlbench sweep`: the grid as child runs of one sweep run, on a process pool and on Ray."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlbench import Experiment, Param
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


CURVE_PLUGIN = '''
import os
import time

from dlbench import Experiment, Metric, Param, hookimpl


def curve(ctx):
    """loss = level / step: a trial with a higher level is worse at every step."""
    if ctx.params["crash"]:
        os._exit(3)  # what a segfault or the OOM killer does to a worker
    for step in range(1, ctx.params["steps"] + 1):
        time.sleep(ctx.params["pause"])
        ctx.log_metric("loss", ctx.params["level"] / step, step=step)


@hookimpl
def dlbench_experiments():
    return [Experiment(name="curve", summary="A falling loss curve.", run=curve, tensorflow=False,
                       params=(Param("level", float, 1.0, "height", low=0.0),
                               Param("steps", int, 9, "steps", low=1),
                               Param("pause", float, 0.0, "seconds per step", low=0.0),
                               Param("crash", bool, False, "kill the worker process")),
                       logs=(Metric("loss", "min", "level / step"),))]
'''


@pytest.fixture
def toy_env(toy_env):
    """The toy plugin (conftest) plus one whose trials fail on demand, and falling curves."""
    root = toy_env["PYTHONPATH"].split(os.pathsep)[0]
    fake_distribution(Path(root), "flaky_plugin", FLAKY_PLUGIN)
    fake_distribution(Path(root), "curve_plugin", CURVE_PLUGIN)
    return {**toy_env, "DLBENCH_LOAD_PLUGINS": "toy_plugin_dist,flaky_plugin,curve_plugin"}



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


def test_the_pruner_stops_the_trial_that_is_worse_at_every_step(toy_env, store_uri):
    # Grid order: 3, 2, 1, 10. ASHA keeps the best third at steps 1, 3, 9; each of the first
    # three is the best so far wherever it arrives, the last is the worst everywhere.
    out = run_cli(["sweep", "curve", "-p", "level=3,2,1,10", "--prune", "asha", "--json"],
                  tracking_uri=store_uri, env=toy_env)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    states = {t["sweep_params"]["level"]: (t["state"], t["pruned_at_step"]) for t in summary["trials"]}
    assert states == {"1": ("finished", None), "2": ("finished", None), "3": ("finished", None),
                      "10": ("pruned", 1)}
    assert [t["sweep_params"]["level"] for t in summary["trials"]] == ["1", "2", "3", "10"]
    assert summary["status"] == "FINISHED" and summary["best"]["sweep_params"] == {"level": "1"}
    assert "trial 3 pruned at step 1 (4/4)" in out.stderr
    store = client(store_uri)
    pruned = store.get_run(summary["trials"][-1]["run_id"])
    assert pruned.info.status == "KILLED" and "dlbench.error" not in pruned.data.tags
    assert pruned.data.tags["dlbench.pruned"] == "true"
    assert pruned.data.tags["dlbench.pruned_at_step"] == "1"
    history = store.get_metric_history(pruned.info.run_id, "loss")  # kept up to the stop
    assert [(m.step, m.value) for m in history] == [(1, 10.0)]
    parent = store.get_run(summary["run_id"])
    assert parent.data.params["best.level"] == "1" and parent.data.tags["dlbench.sweep.pruned"] == "1"
    pictures = {a.path for a in store.list_artifacts(summary["run_id"], "sweep")}
    assert {"sweep/trials.csv", "sweep/optimization_history.png",
            "sweep/intermediate_values.png"} <= pictures


@pytest.mark.slow  # what it checks is in the default suite in parts: axes, samplers, workers
def test_a_search_samples_ranges(toy_env, store_uri):
    out = run_cli(["sweep", "curve", "-p", "level=loguniform(0.5,8)", "-p", "steps=int(2,4)",
                   "--search", "random", "--trials", "3", "--workers", "2", "--seed", "5",
                   "--json"], tracking_uri=store_uri, env=toy_env)
    assert out.returncode == 0, out.stderr
    trials = json.loads(out.stdout)["trials"]
    points = {(t["sweep_params"]["level"], t["sweep_params"]["steps"]) for t in trials}
    assert len(points) == 3
    assert all(0.5 <= float(level) <= 8 and steps in ("2", "3", "4") for level, steps in points)
    assert all(t["state"] == "finished" and t["pruned_at_step"] is None and t["seed"] == 5
               and t["params"]["level"] == t["sweep_params"]["level"] for t in trials)


@pytest.mark.parametrize("search", ["random", "tpe"])
def test_the_same_seed_asks_the_same_points(tmp_path, search):
    from dlbench.axes import parse_space
    from dlbench.study import as_text, create_study, distributions

    experiment = Experiment(name="x", summary="x", run=print, params=(
        Param("lr", float, 0.1, "step", low=0.0, high=1.0), Param("n", int, 1, "n", low=1)))
    space = distributions(parse_space(["lr=loguniform(1e-3,0.5)", "n=int(1,64,log)"], experiment))

    def asked(seed, name):
        study = create_study(str(tmp_path / f"{name}.journal"), name, mode="min", search=search,
                             seed=seed, trials=8, prune="none", plan={})
        points = []
        for _ in range(6):
            trial = study.ask(space)
            points.append(as_text(trial.params))
            study.tell(trial, trial.params["lr"] * trial.params["n"])
        return points

    first = asked(3, "a")
    assert asked(3, "b") == first and asked(4, "c") != first and len({str(p) for p in first}) == 6


def test_a_crashed_trial_fails_alone_and_its_worker_is_replaced(toy_env, store_uri):
    out = run_cli(["sweep", "curve", "-p", "crash=true,false", "--json"],
                  tracking_uri=store_uri, env=toy_env)
    assert out.returncode == 1
    crashed, finished = sorted(json.loads(out.stdout)["trials"], key=lambda t: t["index"])
    assert crashed["state"] == "failed" and finished["state"] == "finished"
    assert "worker process died (exit code 3)" in crashed["error"]
    store = client(store_uri)
    run = store.get_run(crashed["run_id"])  # closed at once, not left RUNNING for the repair
    assert run.info.status == "FAILED" and "worker process died" in run.data.tags["dlbench.error"]
    pids = {store.get_run(t["run_id"]).data.tags["dlbench.pid"] for t in (crashed, finished)}
    assert len(pids) == 2  # the one worker died; a fresh one ran the next trial


def test_sigkilled_sweep_resumes_with_exactly_its_trials(toy_env, store_uri):
    env = {**os.environ, **toy_env, "MLFLOW_TRACKING_URI": store_uri}
    proc = subprocess.Popen([sys.executable, "-m", "dlbench", "sweep", "curve", "-p",
                             "level=1,2,3,4", "-p", "steps=3", "-p", "pause=0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    parent_id, finished = None, 0
    while finished < 2:  # the sweep prints its run id, then a line as each trial ends
        line = proc.stderr.readline()
        assert line, proc.communicate()
        if line.startswith("sweep "):
            parent_id = line.split()[1].rstrip(":")
        finished += line.startswith("trial ") and " finished " in line
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    time.sleep(1.5)  # the worker notices its sweep is gone and exits
    out = run_cli(["sweep", "curve", "--resume", parent_id, "--json"], tracking_uri=store_uri,
                  env=toy_env)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["run_id"] == parent_id and summary["status"] == "FINISHED"
    trials = summary["trials"]
    assert sorted(t["sweep_params"]["level"] for t in trials) == ["1", "2", "3", "4"]
    assert len({t["index"] for t in trials}) == 4 and len({t["run_id"] for t in trials}) == 4
    assert all(t["status"] == "FINISHED" for t in trials)
    store = client(store_uri)
    assert store.get_run(parent_id).info.status == "FINISHED"
    children = store.search_runs([summary["experiment_id"]],
                                 f"tags.`mlflow.parentRunId` = '{parent_id}'")
    superseded = [r for r in children if r.info.run_id not in {t["run_id"] for t in trials}]
    assert all(r.info.status == "FAILED" and r.data.tags["dlbench.sweep.superseded"] == "true"
               and "orphaned" in r.data.tags["dlbench.error"] for r in superseded)
    assert len(children) == 4 + len(superseded)
    again = run_cli(["sweep", "curve", "--resume", parent_id], tracking_uri=store_uri, env=toy_env)
    assert again.returncode == 2 and "already FINISHED; nothing to continue" in again.stderr


def test_step_observers_see_log_metric_and_keras_epochs_alike(run_ctx):
    from dlbench.errors import Pruned

    ctx = run_ctx({})
    seen = []
    ctx.observe_steps(lambda key, value, step: seen.append((key, value, step)))
    ctx.log_metric("loss", 0.5, step=3)
    ctx.log_metric("final", 1.0)  # no step: nothing to prune on
    callback = ctx.keras_callback(prefix="child/")
    callback.on_epoch_end(0, {"val_loss": 0.25, "nan": float("nan")})
    callback.record(0, {"val_loss": 0.1})  # a checkpoint recording the same epoch: once
    assert seen == [("loss", 0.5, 3), ("child/val_loss", 0.25, 1)]

    def stop(key, value, step):
        raise Pruned(step)

    ctx.observe_steps(stop)
    with pytest.raises(Pruned):
        callback.on_epoch_end(1, {"val_loss": 0.2})


KERAS_PLUGIN = '''
from dlbench import Experiment, Metric, Param, hookimpl


def fit(ctx):
    import keras
    import numpy as np

    x = np.random.normal(size=(128, 8)).astype("float32")
    y = (x @ np.arange(8, dtype="float32") > 0).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.3), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, validation_split=0.25,
              callbacks=[ctx.keras_callback()])


@hookimpl
def dlbench_experiments():
    return [Experiment(name="tiny_keras", summary="A tiny Keras model.", run=fit,
                       params=(Param("label", str, "a", "changes nothing"),),
                       logs=(Metric("val_loss", "min"),))]
'''


@pytest.mark.slow  # TensorFlow in a fresh worker: ~20 s
def test_a_warm_worker_gives_each_trial_a_clean_keras(tmp_path, store_uri):
    site = fake_distribution(tmp_path / "keras-site", "keras_plugin", KERAS_PLUGIN)
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "DLBENCH_LOAD_PLUGINS": "keras_plugin"}
    out = run_cli(["sweep", "tiny_keras", "-p", "label=a,b,c", "--workers", "1", "--json"],
                  tracking_uri=store_uri, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    trials = json.loads(out.stdout)["trials"]
    store = client(store_uri)
    assert len({store.get_run(t["run_id"]).data.tags["dlbench.pid"] for t in trials}) == 1
    first, *later = sorted(trials, key=lambda t: t["index"])  # the first in a fresh process
    assert all(t["metrics"] == first["metrics"] for t in later) and "val_loss" in first["metrics"]


@pytest.mark.slow  # a Ray runtime and four fresh worker processes: ~40 s
def test_ray_backend_shares_the_study_and_prunes(toy_env, store_uri):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'dlbench[ray]')")
    out = run_cli(["sweep", "curve", "-p", "level=3,2,1,10", "--prune", "asha", "--backend", "ray",
                   "--json"], tracking_uri=store_uri, env=toy_env, timeout=900)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert [(t["sweep_params"]["level"], t["state"], t["pruned_at_step"])
            for t in summary["trials"]] == [("1", "finished", None), ("2", "finished", None),
                                            ("3", "finished", None), ("10", "pruned", 1)]
    store = client(store_uri)
    pids = {store.get_run(t["run_id"]).data.tags["dlbench.pid"] for t in summary["trials"]}
    assert len(pids) == 4  # Ray tasks: a fresh process each, all reporting to one study
    assert store.get_run(summary["trials"][-1]["run_id"]).data.tags["dlbench.pruned"] == "true"
