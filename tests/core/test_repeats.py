"""``dlbench run NAME --seeds``: a parent run per repeat, a child per seed, the aggregates,
paired outcomes, and a failing seed, end to end through the real CLI into a SQLite store,
read back through MLflow's own client."""

import csv
import json
import math
import os
import statistics

import pytest

from dlbench.testing import fake_distribution, run_cli
from support import client, results

FLAKY_PLUGIN = '''
from dlbench import Experiment, Metric, hookimpl
from dlbench.outcomes import log_outcomes, log_paired


def flaky(ctx):
    import numpy as np

    if ctx.seed == 1:
        raise RuntimeError("seed one is cursed")
    rng = np.random.default_rng(ctx.seed)
    truth = rng.random(200)
    outcomes = {}
    for name, skill in (("baseline", 0.5), ("better", 0.7)):
        with ctx.child(name) as child:
            correct = (truth < skill).astype(int)  # better is right wherever baseline is
            log_outcomes(child, "test", correct)
            child.log_metric("test_accuracy", correct.mean())
        outcomes[name] = correct
        ctx.log_metric(f"{name}_test_accuracy", outcomes[name].mean())
    log_paired(ctx, "gain", ("baseline", outcomes["baseline"]), ("better", outcomes["better"]))


@hookimpl
def dlbench_experiments():
    return [Experiment(name="flaky", summary="Fails on seed 1; a paired gain otherwise.",
                       run=flaky, tensorflow=False,
                       logs=(Metric("gain", "max", "better - baseline accuracy"),
                             Metric("baseline_test_accuracy", "max", "baseline")))]
'''


def _children(mlflow, parent):
    found = mlflow.search_runs([parent.info.experiment_id],
                               f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    return sorted(found, key=lambda r: int(r.data.params["seed"]))


def _table(mlflow, run_id, path):
    text = mlflow.download_artifacts(run_id, path, str(_table.tmp))
    with open(text, newline="") as handle:
        return list(csv.DictReader(handle))


def _t_interval(values):
    from scipy import stats

    mean, sd = statistics.mean(values), statistics.stdev(values)
    half = stats.t.ppf(0.975, len(values) - 1) * sd / math.sqrt(len(values))
    return mean, sd, mean - half, mean + half


def test_seeds_make_a_parent_with_one_child_per_seed_and_its_intervals(tmp_path, toy_env, store_uri):
    out = run_cli(["run", "toy_fit", "--seeds", "0-2", "--quick", "--json", "--no-system-metrics"],
                  tracking_uri=store_uri, cwd=tmp_path, env=toy_env)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["seeds"] == [0, 1, 2] and summary["status"] == "FINISHED"
    assert [r["params"]["seed"] for r in summary["runs"]] == ["0", "1", "2"]

    mlflow = client(store_uri)
    parent = mlflow.get_run(summary["run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["dlbench.repeats"] == "0,1,2"
    assert parent.data.params["seeds"] == "0,1,2" and parent.data.params["epochs"] == "3"
    children = _children(mlflow, parent)
    assert [c.data.params["seed"] for c in children] == ["0", "1", "2"]
    assert [c.info.run_id for c in children] == [r["run_id"] for r in summary["runs"]]
    for seed, child in enumerate(children):
        assert child.info.status == "FINISHED" and child.info.run_name == f"seed-{seed}"
        assert child.data.tags["dlbench.repeat_of"] == parent.info.run_id
        assert child.data.tags["dlbench.repeat_seed"] == str(seed)
    # Different seeds, different data: the interval has a width.
    values = [c.data.metrics["slope_error"] for c in children]
    assert len(set(values)) == 3
    mean, sd, low, high = _t_interval(values)
    metrics = results(parent.data.metrics)
    assert metrics["slope_error_mean"] == pytest.approx(mean)
    assert metrics["slope_error_std"] == pytest.approx(sd)
    assert metrics["slope_error_n"] == 3
    assert (metrics["slope_error_ci95_low"], metrics["slope_error_ci95_high"]) == pytest.approx((low, high))
    assert summary["metrics"] == metrics  # --json carries what the store holds
    assert summary["summary"]["slope_error"] == pytest.approx(
        {"mean": mean, "std": sd, "n": 3, "ci95_low": low, "ci95_high": high, "goal": "min"})
    assert summary["summary"]["loss"]["goal"] == "min"

    _table.tmp = tmp_path
    rows = _table(mlflow, parent.info.run_id, "repeats/seeds.csv")
    assert [(r["seed"], r["run_id"], r["status"]) for r in rows] == [
        (str(s), c.info.run_id, "FINISHED") for s, c in enumerate(children)]
    assert [float(r["slope_error"]) for r in rows] == pytest.approx(values)
    table = {r["metric"]: r for r in _table(mlflow, parent.info.run_id, "repeats/summary.csv")}
    assert set(table) == {"loss", "slope_error"}
    assert float(table["slope_error"]["ci95_high"]) == pytest.approx(high)

    # Each seed is an ordinary run: the same as `dlbench run toy_fit --seed 2 --quick`.
    alone = run_cli(["run", "toy_fit", "--seed", "2", "--quick", "--json"],
                    tracking_uri=store_uri, cwd=tmp_path, env=toy_env)
    assert json.loads(alone.stdout)["metrics"]["slope_error"] == values[2]

    # The text summary shows the interval of each metric.
    text = run_cli(["run", "toy_fit", "--seeds", "3,5", "--quick", "--no-system-metrics"],
                   tracking_uri=store_uri, cwd=tmp_path, env=toy_env)
    assert text.returncode == 0, text.stderr
    assert "2 of 2 seed(s) run" in text.stdout and "(n=2)" in text.stdout


def test_a_failing_seed_fails_the_parent_and_keeps_the_others(tmp_path, toy_site, store_uri):
    from dlbench.outcomes import read_outcomes

    fake_distribution(toy_site, "flaky_plugin_dist", FLAKY_PLUGIN)
    env = {"PYTHONPATH": os.pathsep.join([str(toy_site), os.environ.get("PYTHONPATH", "")]),
           "DLBENCH_LOAD_PLUGINS": "flaky_plugin_dist", "DLBENCH_NO_SYSTEM_METRICS": "1"}
    out = run_cli(["run", "flaky", "--seeds", "0,1,2", "--json"], tracking_uri=store_uri,
                  cwd=tmp_path, env=env)
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "seed 1: RuntimeError: seed one is cursed" in errors[0], out.stderr
    summary = json.loads(out.stdout)
    assert summary["status"] == "FAILED" and "seed 1" in summary["error"]
    assert [r["status"] for r in summary["runs"]] == ["FINISHED", "FAILED", "FINISHED"]

    mlflow = client(store_uri)
    parent = mlflow.get_run(summary["run_id"])
    assert parent.info.status == "FAILED"
    assert parent.data.tags["dlbench.error"] == "seed 1: RuntimeError: seed one is cursed"
    seeds = _children(mlflow, parent)
    assert [(c.data.params["seed"], c.info.status) for c in seeds] == [
        ("0", "FINISHED"), ("1", "FAILED"), ("2", "FINISHED")]
    assert "seed one is cursed" in seeds[1].data.tags["dlbench.error"]
    # The aggregates cover the two seeds that finished.
    gains = [seeds[0].data.metrics["gain"], seeds[2].data.metrics["gain"]]
    mean, sd, low, high = _t_interval(gains)
    metrics = parent.data.metrics
    assert metrics["gain_n"] == 2 and metrics["gain_mean"] == pytest.approx(mean)
    assert (metrics["gain_ci95_low"], metrics["gain_ci95_high"]) == pytest.approx((low, high))
    assert summary["summary"]["gain"]["goal"] == "max"

    # Per seed: the paired test on the same 200 examples, and the outcomes it came from.
    for seed in (seeds[0], seeds[2]):
        variants = {c.info.run_name: c for c in _children(mlflow, seed)}
        base = read_outcomes(mlflow, variants["baseline"].info.run_id, "test")
        better = read_outcomes(mlflow, variants["better"].info.run_id, "test")
        assert len(base) == len(better) == 200
        only_better = sum(1 for a, b in zip(base, better) if b and not a)
        assert seed.data.metrics["gain_better_only"] == only_better > 0
        assert seed.data.metrics["gain_baseline_only"] == 0
        assert seed.data.metrics["gain_mcnemar_p"] == pytest.approx(2 * 0.5 ** only_better)
        assert seed.data.metrics["gain"] == pytest.approx(only_better / 200)
        assert metrics["gain_mcnemar_p_n"] == 2
    _table.tmp = tmp_path
    rows = _table(mlflow, parent.info.run_id, "repeats/seeds.csv")
    assert [r["status"] for r in rows] == ["FINISHED", "FAILED", "FINISHED"]
    assert "seed one is cursed" in rows[1]["error"]


@pytest.mark.parametrize("args, message", [
    (["--seeds", "4-0"], "range 4-0 runs backwards"),
    (["--seeds", "0,3,3"], "seed 3 is listed twice"),
    (["--seeds", "a"], "'a' is not a seed or a range"),
    (["--seeds", "0,"], "'' is not a seed or a range"),
    (["--seeds", "0-5000"], "more than 1000 seeds"),
    (["--seeds", "0-1", "--seed", "3"], "--seed runs one seed, --seeds several"),
    (["--seeds", "0-1", "--resume", "abc"], "--seeds starts new runs"),
    (["--seeds", "0-1", "--register", "m"], "--register needs one"),
    (["--seeds", "0-1", "-p", "epochs=zero"], "param 'epochs': expected int"),
])
def test_bad_seeds_are_one_line_usage_errors_and_write_nothing(cli, tmp_path, args, message):
    store = tmp_path / "mlflow.db"
    out = cli(["run", "toy_fit", *args], env={"MLFLOW_TRACKING_URI": f"sqlite:///{store}"})
    assert out.exit_code == 2, out.output
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], out.stderr
    assert not store.exists()


def test_parse_seeds():
    from dlbench.repeats import parse_seeds

    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds(" 2 - 3 , 9") == [2, 3, 9]
    assert parse_seeds("5") == [5]


def test_rerun_takes_a_seed_run_and_refuses_the_parent(tmp_path, toy_env, store_uri):
    out = run_cli(["run", "toy_fit", "--seeds", "4,6", "--quick", "--json"],
                  tracking_uri=store_uri, cwd=tmp_path, env=toy_env)
    summary = json.loads(out.stdout)
    parent = run_cli(["rerun", summary["run_id"]], tracking_uri=store_uri, cwd=tmp_path, env=toy_env)
    assert parent.returncode == 2
    assert "is the parent of seeds 4,6" in parent.stderr and "--seeds 4,6" in parent.stderr
    seed = run_cli(["rerun", summary["runs"][1]["run_id"], "--json"], tracking_uri=store_uri,
                   cwd=tmp_path, env=toy_env)
    assert seed.returncode == 0, seed.stderr
    again = json.loads(seed.stdout)
    assert again["reproduced"] is True
    assert client(store_uri).get_run(again["run_id"]).data.params["seed"] == "6"


def test_ctrl_c_ends_the_seed_and_the_parent_killed_and_runs_no_more_seeds(toy_env, store_uri, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    marker = tmp_path / "started"
    env = {**os.environ, **toy_env, "MLFLOW_TRACKING_URI": store_uri, "TOY_MARKER": str(marker),
           "DLBENCH_NO_SYSTEM_METRICS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dlbench", "run", "toy_wait", "--seeds", "0-2",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    summary = json.loads(stdout)
    mlflow = client(store_uri)
    parent = mlflow.get_run(summary["run_id"])
    assert parent.info.status == "KILLED"
    assert parent.data.tags["dlbench.error"] == "seed 0: interrupted by SIGINT"
    seeds = _children(mlflow, parent)
    assert [(c.data.params["seed"], c.info.status) for c in seeds] == [("0", "KILLED")]
