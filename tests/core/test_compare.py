"""``dlbench compare``: real runs in a real SQLite store, read back through the CLI."""

import json
import os
import types

import pytest

from dlbench.registry import load_registry
from dlbench.runner import RunRequest, execute
from dlbench.testing import run_cli
from toy_plugin import TOY_PLUGIN

CHILDREN_PLUGIN = '''
from dlbench import Experiment, hookimpl


def with_child(ctx):
    ctx.log_metric("score", 1.0)
    with ctx.child("variant") as child:
        child.log_metric("score", 5.0)


@hookimpl
def dlbench_experiments():
    return [Experiment(name="toy_children", summary="A parent run with one child.",
                       run=with_child, tensorflow=False)]
'''


def _module(name, source):
    module = types.ModuleType(name)
    exec(source, module.__dict__)
    return module


@pytest.fixture(scope="module")
def registry():
    return load_registry(extra_plugins=[("toy", _module("toy", TOY_PLUGIN)),
                                        ("kids", _module("kids", CHILDREN_PLUGIN))])


def _run(registry, uri, experiment="toy_fit", **params):
    result = execute(RunRequest(experiment=experiment, tracking_uri=uri,
                                params={k: str(v) for k, v in params.items()},
                                run_name="-".join(f"{k}{v}" for k, v in params.items()) or None),
                     registry)
    assert result.status == "FINISHED", result.error
    return result


@pytest.fixture(scope="module")
def three_runs(registry, tmp_path_factory):
    """Three toy_fit runs that differ in lr and epochs (slope and mode stay the same)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('compare') / 'mlflow.db'}"
    results = [_run(registry, uri, lr=0.01, epochs=5), _run(registry, uri, lr=0.1, epochs=5),
               _run(registry, uri, lr=0.3, epochs=8)]
    return uri, results


def test_json_lists_every_run_sorted_by_first_metric(three_runs):
    uri, results = three_runs
    out = run_cli(["compare", "toy_fit", "--metric", "slope_error", "--metric", "loss", "--json"],
                  tracking_uri=uri)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert {r["run_id"] for r in rows} == {r.run_id for r in results}
    errors = [r["metrics"]["slope_error"] for r in rows]
    assert errors == sorted(errors) and len(set(errors)) == 3
    # Final metrics are the last logged values, the same the run summary reported.
    by_id = {r.run_id: r for r in results}
    for row in rows:
        assert set(row["metrics"]) == {"slope_error", "loss"}
        assert row["metrics"]["loss"] == by_id[row["run_id"]].metrics["loss"]
        assert row["status"] == "FINISHED" and row["params"]["slope"] == "2.0"
    assert rows[0]["run_name"] == "lr0.3-epochs8"  # the largest step size fits best

    descending = json.loads(run_cli(["compare", "toy_fit", "-m", "slope_error", "--descending",
                                     "--json"], tracking_uri=uri).stdout)
    assert [r["run_id"] for r in descending] == [r["run_id"] for r in reversed(rows)]


def test_table_shows_only_params_that_differ(three_runs):
    uri, _ = three_runs
    out = run_cli(["compare", "toy_fit", "-m", "slope_error"], tracking_uri=uri)
    assert out.returncode == 0, out.stderr
    header, *lines = out.stdout.strip().splitlines()
    assert header.split() == ["run_name", "start_time", "status", "epochs", "lr", "slope_error"]
    assert len(lines) == 3 and lines[0].startswith("lr0.3-epochs8")


def test_last_keeps_the_newest_runs(three_runs):
    uri, results = three_runs
    rows = json.loads(run_cli(["compare", "toy_fit", "--last", "2", "--json"], tracking_uri=uri).stdout)
    assert {r["run_id"] for r in rows} == {results[1].run_id, results[2].run_id}
    # Without --metric, all metrics of the runs are shown, newest run first.
    assert rows[0]["run_id"] == results[2].run_id and set(rows[0]["metrics"]) == {"loss", "slope_error"}


def test_plot_overlays_one_curve_per_run(three_runs, tmp_path):
    uri, _ = three_runs
    png = tmp_path / "curves" / "loss.png"
    out = run_cli(["compare", "toy_fit", "-m", "loss", "--plot", str(png)], tracking_uri=uri)
    assert out.returncode == 0, out.stderr
    assert "plotted 3 curve(s)" in out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


@pytest.mark.parametrize("args, message", [
    (["compare", "nothing_here"], "no runs of experiment 'nothing_here'"),
    (["compare", "toy_fit", "-m", "slope_eror"], "did you mean 'slope_error'?"),
    (["compare", "toy_fit", "--plot", "x.png"], "--plot needs at least one --metric"),
    (["compare", "toy_fit", "--last", "0"], "0 is not in the range x>=1"),
    (["compare", "it's"], "is not an experiment name"),
])
def test_usage_errors_exit_2(three_runs, args, message):
    out = run_cli(args, tracking_uri=three_runs[0])
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_missing_store_is_not_created(tmp_path):
    db = tmp_path / "typo.db"
    out = run_cli(["compare", "toy_fit"], tracking_uri=f"sqlite:///{db}")
    assert out.returncode == 1 and "no tracking store at" in out.stderr
    assert not db.exists()


def test_children_only_on_request(registry, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = _run(registry, uri, experiment="toy_children")
    rows = json.loads(run_cli(["compare", "toy_children", "--json"], tracking_uri=uri).stdout)
    assert [r["run_id"] for r in rows] == [parent.run_id]
    rows = json.loads(run_cli(["compare", "toy_children", "--children", "-m", "score", "--json"],
                              tracking_uri=uri).stdout)
    assert [(r["run_name"], r["metrics"]["score"]) for r in rows] == [
        (rows[0]["run_name"], 1.0), ("variant", 5.0)]
    assert rows[1]["parent_run_id"] == parent.run_id


def test_default_store_and_runs_under_another_experiment_name(registry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = execute(RunRequest(experiment="toy_fit", experiment_name="elsewhere",
                                params={"epochs": "2"}), registry)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out = run_cli(["compare", "toy_fit", "--json"], cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert [r["run_id"] for r in json.loads(out.stdout)] == [result.run_id]
