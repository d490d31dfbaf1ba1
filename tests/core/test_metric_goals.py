"""Metrics declare which way is better; `sweep` ranks and `compare` sorts by that, never by
what a metric's name suggests."""

import json
import os

import pytest

from dlbench import Experiment, Metric
from dlbench.search import ranking_mode
from dlbench.errors import UsageError
from dlbench.testing import fake_distribution, run_cli

GOALS_PLUGIN = '''
from dlbench import Experiment, Metric, Param, hookimpl


def report(ctx):
    ctx.log_metrics({"accuracy_drop": ctx.params["level"], "score": ctx.params["level"],
                     "undeclared": ctx.params["level"]})


@hookimpl
def dlbench_experiments():
    return [Experiment(name="scored", summary="Reports its level.", run=report, tensorflow=False,
                       params=(Param("level", float, 0.5, "what to report"),),
                       logs=(Metric("accuracy_drop", "min", "smaller is better, whatever"
                                    " its name says"),
                             Metric("score", "max"), "undeclared"))]
'''


@pytest.fixture
def goals_site(tmp_path):
    return fake_distribution(tmp_path / "site", "goals_plugin", GOALS_PLUGIN)


def test_the_declared_goal_decides_and_an_undeclared_metric_needs_mode():
    experiment = Experiment(name="x", summary="x", run=print,
                            logs=(Metric("accuracy_drop", "min"), Metric("loss_gain", "max"), "raw"))
    assert ranking_mode(experiment, "accuracy_drop", None) == "min"
    assert ranking_mode(experiment, "loss_gain", None) == "max"
    assert ranking_mode(experiment, "raw", "max") == "max"
    with pytest.raises(UsageError, match="declares no direction for metric 'raw'.*--mode"):
        ranking_mode(experiment, "raw", None)
    assert experiment.goal("raw") is None and experiment.metric_names == [
        "accuracy_drop", "loss_gain", "raw"]


def test_a_bad_goal_is_a_declaration_problem():
    bad = Experiment(name="x", summary="x", run=print,
                     logs=(Metric("m", "up"), Metric("m", "max"), "bad name!"))
    found = " | ".join(bad.problems())
    assert "goal must be 'max' or 'min', not 'up'" in found
    assert "metric 'm' is declared twice" in found
    assert "'bad name!': name may hold letters" in found


def test_sweep_ranks_a_min_metric_smallest_first(goals_site, store_uri):
    env = {"PYTHONPATH": os.pathsep.join([str(goals_site), os.environ.get("PYTHONPATH", "")]),
           "DLBENCH_LOAD_PLUGINS": "goals_plugin"}
    out = run_cli(["sweep", "scored", "-p", "level=0.6,0.2", "--json"], tracking_uri=store_uri,
                  env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    # The first declared metric ranks; "accuracy" in its name would once have meant larger.
    assert result["metric"] == "accuracy_drop" and result["mode"] == "min"
    assert [t["metrics"]["accuracy_drop"] for t in result["trials"]] == [0.2, 0.6]
    assert result["best"]["sweep_params"] == {"level": "0.2"}


def test_compare_sorts_best_first_as_declared(goals_site, store_uri, monkeypatch):
    from click.testing import CliRunner

    from dlbench.cli import main

    monkeypatch.syspath_prepend(str(goals_site))
    monkeypatch.setenv("DLBENCH_LOAD_PLUGINS", "goals_plugin")
    for level in ("0.3", "0.1", "0.5"):
        done = CliRunner().invoke(main, ["run", "scored", "-p", f"level={level}", "--json",
                                         "--tracking-uri", store_uri])
        assert done.exit_code == 0, done.stderr

    def order(*args):
        out = CliRunner().invoke(main, ["compare", "scored", *args, "--json",
                                        "--tracking-uri", store_uri])
        assert out.exit_code == 0, out.stderr
        return [row["metrics"][args[1]] for row in json.loads(out.stdout)]

    assert order("-m", "score") == [0.5, 0.3, 0.1]  # max: largest first
    assert order("-m", "accuracy_drop") == [0.1, 0.3, 0.5]  # min: smallest first
    assert order("-m", "undeclared") == [0.1, 0.3, 0.5]  # no direction: smallest first
    assert order("-m", "score", "--ascending") == [0.1, 0.3, 0.5]
    assert order("-m", "accuracy_drop", "--descending") == [0.5, 0.3, 0.1]
